"""The token exporter publishing to a real Kafka-protocol broker: exactly once, keyed, and nothing lost
while the broker is away or the exporter is killed."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aifinops.cli.demo.stack import KafkaBroker, wait_until
from aifinops.exporters.events import USAGE_TYPE, make_event
from support.kafka_helpers import Record, consume
from support.token_daemon import TokenDaemon

pytestmark = pytest.mark.integration

CLUSTER = "it-cluster"
TEAM_TOKEN = "billing-token"
GATEWAY_TOKEN = "gateway-token"


def config(bootstrap: str, topic: str, spool: Path) -> str:
    team = hashlib.sha256(TEAM_TOKEN.encode()).hexdigest()
    gateway = hashlib.sha256(GATEWAY_TOKEN.encode()).hexdigest()
    return f"""
cluster: {CLUSTER}
kafka:
  bootstrap_servers: [{bootstrap}]
  topics:
    usage: {{name: {topic}}}
producer:
  spool_dir: {spool}
  delivery_timeout_ms: 2000
  retry_backoff_max_ms: 1000
tokens:
  auth:
    enabled: true
    tokens:
      - {{sha256: {team}, team: billing}}
      - {{sha256: {gateway}, team: gateway, gateway: true}}
"""


def events(prefix: str, n: int) -> list[dict]:
    return [
        make_event(
            USAGE_TYPE,
            "it-gateway",
            {
                "provider": "openai",
                "model": "gpt-4o",
                "team": f"team-{i % 3}",
                "app": f"app-{i % 2}",
                "input_tokens": 100 + i,
                "output_tokens": 10,
            },
            event_id=f"{prefix}-{i}",
        )
        for i in range(n)
    ]


def post_all(daemon: TokenDaemon, batch: list[dict], token: str = GATEWAY_TOKEN) -> None:
    for i in range(0, len(batch), 25):
        start = time.monotonic()
        status, body = daemon.post(batch[i : i + 25], token=token)
        # Publishing never holds ingest up, whatever the broker's state.
        assert time.monotonic() - start < 5
        assert status == 202, body


def read_all(bootstrap: str, topic: str, expected: int) -> list[Record]:
    """Everything on `topic` once `expected` messages are there, read again after a pause so a
    late extra message (a duplicate) would be seen too."""
    first = consume(bootstrap, topic, expected, timeout=60)
    assert len(first) == expected, f"{len(first)} of {expected} arrived"
    return consume(bootstrap, topic, expected + 1, timeout=5)


def ids(records: list[Record]) -> list[str]:
    return [json.loads(r.value)["id"] for r in records]


def spooled(daemon: TokenDaemon) -> float:
    return daemon.sample("aifinops_bridge_spooled_messages") or 0


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[Callable[[str, str], TokenDaemon]]:
    """Builds the exporter for a broker and topic; its log is printed (shown when a test fails)."""
    made: list[TokenDaemon] = []

    def make(bootstrap: str, topic: str) -> TokenDaemon:
        daemon = TokenDaemon(tmp_path / "exporter", config(bootstrap, topic, tmp_path / "spool"))
        made.append(daemon)
        return daemon

    yield make
    for daemon in made:
        daemon.stop()
        print(f"--- token exporter log ---\n{daemon.process.log_tail(80)}")


def test_posted_events_arrive_exactly_once_with_key_and_header(
    kafka_session_logs: KafkaBroker, topic_name, exporter
):
    topic = topic_name("ai-api-costs")
    daemon = exporter(kafka_session_logs.bootstrap, topic)
    daemon.start()
    try:
        batch = events("once", 60)
        post_all(daemon, batch)
        post_all(daemon, batch)  # a retried batch: duplicates, not published again
        claimed = make_event(USAGE_TYPE, "it-gateway", {**batch[0]["data"]}, event_id="billing-1")
        claimed["data"]["team"] = "someone-else"
        status, _ = daemon.post([claimed], token=TEAM_TOKEN)
        assert status == 202
        records = read_all(kafka_session_logs.bootstrap, topic, 61)
    finally:
        daemon.stop()
    assert sorted(ids(records)) == sorted([e["id"] for e in batch] + ["billing-1"])
    by_id = {json.loads(r.value)["id"]: r for r in records}
    for event in batch:
        record = by_id[event["id"]]
        assert record.key == f"{event['data']['team']}/{event['data']['app']}".encode()
        assert ("aifinops-counted-in", CLUSTER.encode()) in record.headers
        published = json.loads(record.value)
        assert published["type"] == USAGE_TYPE and published["data"] == event["data"]
    # A team token's events are published for its team, as they were counted.
    assert by_id["billing-1"].key == b"billing/app-0"
    assert json.loads(by_id["billing-1"].value)["data"]["team"] == "billing"


def test_events_posted_while_the_broker_is_down_all_arrive_once_it_is_back(
    kafka_broker: KafkaBroker, topic_name, exporter
):
    topic = topic_name("ai-api-costs")
    daemon = exporter(kafka_broker.bootstrap, topic)
    daemon.start()
    try:
        kafka_broker.stop()
        batch = events("down", 150)
        post_all(daemon, batch)
        assert daemon.sample("aifinops_llm_requests_total", team="team-0") == 50
        # With the broker away, the events go to the disk spool.
        wait_until(lambda: spooled(daemon) > 0, 30, "events to be spooled")
        kafka_broker.start()
        # Tansu keeps nothing across a restart: whatever the topic holds came after it.
        records = read_all(kafka_broker.bootstrap, topic, 150)
        wait_until(lambda: spooled(daemon) == 0, 30, "the spool to drain")
    finally:
        daemon.stop()
    assert sorted(ids(records)) == sorted(e["id"] for e in batch)
    _assert_ordered_per_key(records)


def test_events_spooled_by_a_killed_exporter_arrive_after_its_restart(
    kafka_broker: KafkaBroker, topic_name, exporter
):
    topic = topic_name("ai-api-costs")
    daemon = exporter(kafka_broker.bootstrap, topic)
    kafka_broker.stop()
    daemon.start()
    batch = events("killed", 120)
    post_all(daemon, batch)
    wait_until(lambda: spooled(daemon) == len(batch), 30, "every event to be spooled")
    daemon.process.kill()  # SIGKILL: no chance to flush anything
    kafka_broker.start()
    daemon.start()
    try:
        records = read_all(kafka_broker.bootstrap, topic, 120)
        wait_until(lambda: spooled(daemon) == 0, 30, "the spool to drain")
    finally:
        daemon.stop()
    assert sorted(ids(records)) == sorted(e["id"] for e in batch)
    _assert_ordered_per_key(records)


def _assert_ordered_per_key(records: list[Record]) -> None:
    """Within a key (one partition), events arrive in the order they were posted."""
    by_key: dict[bytes | None, list[int]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_key.setdefault(record.key, []).append(int(json.loads(record.value)["id"].split("-")[-1]))
    for key, order in by_key.items():
        assert order == sorted(order), key
