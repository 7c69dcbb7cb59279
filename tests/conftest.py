"""Fixtures that start real services on free loopback ports and keep their logs for failing tests.

- `kafka`: one Tansu broker for the session (or the cluster `KAFKA_BOOTSTRAP_SERVERS` names); tests
  use their own topic names. `kafka_broker` is a broker of the test's own, to stop and start.
- `prometheus_factory`, `alertmanager_factory`: real servers built from the test's config.
- `webhook`: an HTTP receiver recording what Alertmanager (or anything) posts.
A failing test gets the tail of every log of the services it used in its report.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aifinops.cli.demo.stack import Alertmanager, KafkaBroker, Process, Prometheus
from support.webhook import WebhookReceiver

REPO = Path(__file__).resolve().parent.parent

_processes_key = pytest.StashKey[list[Process]]()


def _track(request: pytest.FixtureRequest, process: Process | None) -> None:
    if process is None:
        return
    node = request.node
    node.stash.setdefault(_processes_key, []).append(process)


def pytest_sessionstart(session: pytest.Session) -> None:
    # A SIGTERM (a CI timeout, a killed run) becomes an interrupt, so fixtures tear down and stop
    # the services they started instead of leaving them running in their own sessions.
    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _interrupt)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    if report.failed:
        for process in item.stash.get(_processes_key, []):
            report.sections.append(
                (f"{process.name} log ({process.log_path})", process.log_tail(60))
            )
    return report


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A broker shared by the session: Tansu on a free port, or `KAFKA_BOOTSTRAP_SERVERS`."""
    broker = KafkaBroker(
        tmp_path_factory.mktemp("kafka"), external=os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    )
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def kafka_session_logs(request: pytest.FixtureRequest, kafka: KafkaBroker) -> KafkaBroker:
    """The session broker, with its log attached to this test's report on failure."""
    _track(request, kafka.process)
    return kafka


@pytest.fixture
def kafka_broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KafkaBroker]:
    """A broker of this test's own, which the test may stop and start (memory storage: a restart
    loses topics and messages). Skipped against an external cluster, which tests cannot restart."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        pytest.skip("needs a broker the test can stop and start; KAFKA_BOOTSTRAP_SERVERS is set")
    broker = KafkaBroker(tmp_path / "kafka")
    broker.start()
    _track(request, broker.process)
    yield broker
    broker.stop()


@pytest.fixture
def topic_name() -> Callable[[str], str]:
    """Unique topic names, so tests sharing the session broker never see each other's data."""
    return lambda base: f"{base}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def prometheus_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., Prometheus]]:
    """Build and start a real Prometheus: `factory(scrape_configs=[...], rule_files=[...], ...)`."""
    started: list[Prometheus] = []

    def factory(**kwargs: Any) -> Prometheus:
        server = Prometheus(tmp_path / f"prometheus-{len(started)}", **kwargs)
        _track(request, server.process)
        server.start()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture
def alertmanager_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[dict[str, Any] | str], Alertmanager]]:
    """Build and start a real Alertmanager from a config mapping or YAML text."""
    started: list[Alertmanager] = []

    def factory(config: dict[str, Any] | str) -> Alertmanager:
        server = Alertmanager(tmp_path / f"alertmanager-{len(started)}", config)
        _track(request, server.process)
        server.start()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    """A started webhook receiver."""
    receiver = WebhookReceiver()
    receiver.start()
    yield receiver
    receiver.stop()
