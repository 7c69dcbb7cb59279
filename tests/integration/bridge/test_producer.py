"""KafkaEventSink against a real broker: keyed ordered delivery, a broker outage, a SIGKILLed exporter."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from aifinops.bridge.producer import KafkaEventSink
from aifinops.exporters.config import KafkaConfig, ProducerConfig
from aifinops.exporters.events import USAGE_TYPE, make_event
from support.kafka_helpers import consume, create_topics

pytestmark = pytest.mark.integration

CHILD = Path(__file__).resolve().parents[2] / "support" / "producer_child.py"
FAST = ProducerConfig(delivery_timeout_ms=2000, retry_backoff_ms=100, retry_backoff_max_ms=1000)


def numbers(records) -> list[int]:
    return [json.loads(r.value)["data"]["n"] for r in records]


def assert_in_order_per_key(records) -> None:
    per_key = defaultdict(list)
    for r in records:
        per_key[r.key].append(json.loads(r.value)["data"]["n"])
    assert all(v == sorted(v) for v in per_key.values()), "order per key not kept"


def sink_for(bootstrap: str, spool: Path) -> KafkaEventSink:
    return KafkaEventSink(KafkaConfig(bootstrap_servers=(bootstrap,)), FAST, spool)


def publish(sink: KafkaEventSink, topic: str, first: int, count: int) -> None:
    for n in range(first, first + count):
        event = make_event(USAGE_TYPE, "test", {"n": n}, event_id=f"e-{n}")
        sink.publish(topic, f"team-{n % 7}/app", event, {"aifinops-counted-in": b"here"})


def test_published_events_arrive_once_keyed_in_order_with_headers(
    kafka_session_logs, topic_name, tmp_path
):
    bootstrap = kafka_session_logs.bootstrap
    topic = topic_name("produce")
    create_topics(bootstrap, {topic: 10})
    sink = sink_for(bootstrap, tmp_path / "spool")
    sink.start()
    try:
        publish(sink, topic, 0, 3000)
        assert sink.wait_delivered(60)
    finally:
        sink.stop()

    got = consume(bootstrap, topic, 3000)
    assert sorted(numbers(got)) == list(range(3000))
    assert_in_order_per_key(got)
    assert {r.key for r in got} == {f"team-{i}/app".encode() for i in range(7)}
    partitions = defaultdict(set)
    for r in got:
        partitions[r.key].add(r.partition)
    assert all(len(p) == 1 for p in partitions.values())
    assert all(r.headers == (("aifinops-counted-in", b"here"),) for r in got)
    assert len(consume(bootstrap, topic, 3001, timeout=3)) == 3000


def test_broker_stopped_while_publishing_then_restarted_everything_arrives(kafka_broker, tmp_path):
    topic = "outage"
    sink = sink_for(kafka_broker.bootstrap, tmp_path / "spool")
    sink.start()
    try:
        publish(sink, topic, 0, 10)
        assert sink.wait_delivered(30)
        kafka_broker.stop()
        # Publish steadily through the outage, as an exporter would.
        for n in range(10, 1010, 10):
            publish(sink, topic, n, 10)
            time.sleep(0.01)
        deadline = time.monotonic() + 30
        while sink.spool.count < 1000 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sink.spool.count == 1000, "the outage did not move the events to the spool"
        kafka_broker.start()  # memory storage: the broker comes back empty
        assert sink.wait_delivered(60)
    finally:
        sink.stop()

    got = consume(kafka_broker.bootstrap, topic, 1000)
    assert numbers(got) and sorted(numbers(got)) == list(range(10, 1010))
    assert_in_order_per_key(got)


def _child(bootstrap: str, spool: Path, topic: str, first: int, count: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(CHILD), bootstrap, str(spool), topic, str(first), str(count)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(CHILD.parent.parent)},
    )


def _wait_line(proc: subprocess.Popen, predicate, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline().strip()
        if predicate(line):
            return line
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"child never printed the expected line (exit {proc.poll()})")


def test_a_sigkilled_exporter_restarted_delivers_everything_it_had_spooled(kafka_broker, tmp_path):
    topic = "killed"
    spool = tmp_path / "spool"
    kafka_broker.stop()
    first = _child(kafka_broker.bootstrap, spool, topic, 0, 2000)
    try:
        _wait_line(first, lambda line: line == "spooled 2000", timeout=60)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)

    kafka_broker.start()
    second = _child(kafka_broker.bootstrap, spool, topic, 2000, 500)
    try:
        _wait_line(second, lambda line: line == "delivered", timeout=90)
    finally:
        second.terminate()
        second.wait(30)

    got = consume(kafka_broker.bootstrap, topic, 2500)
    assert sorted(numbers(got)) == list(range(2500))
    assert_in_order_per_key(got)
    # The replay came first: every spooled event precedes the new ones on each key.
    per_key = defaultdict(list)
    for r in got:
        per_key[r.key].append(json.loads(r.value)["data"]["n"])
    assert all(v == sorted(v) for v in per_key.values())
