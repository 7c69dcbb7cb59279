"""KafkaEventSink's queue/spool logic against a scripted client: order, outages, overflow, stop, drops.

The real broker tests are in tests/integration/bridge/test_producer.py; these drive the state machine
through the client interface so each transition can be forced.
"""

from __future__ import annotations

import dataclasses
import threading
import time

from prometheus_client import CollectorRegistry

from aifinops.bridge.producer import KafkaEventSink
from aifinops.bridge.transport import BrokerUnavailableError, SendResult
from aifinops.exporters.config import KafkaConfig, ProducerConfig
from aifinops.exporters.events import USAGE_TYPE, make_event

SETTINGS = ProducerConfig(retry_backoff_ms=10, retry_backoff_max_ms=50, stop_timeout_seconds=2)


class Broker:
    """What the scripted clients write to; `up` decides whether sends and connections work."""

    def __init__(self) -> None:
        self.up = True
        self.log: list[tuple[str, bytes | None, bytes]] = []
        self.lock = threading.Lock()
        self.delay = 0.0
        self.reject: set[bytes] = set()

    def client(self) -> Client:
        if not self.up:
            raise BrokerUnavailableError("no broker")
        return Client(self)

    def values(self) -> list[int]:
        with self.lock:
            import json

            return [json.loads(v)["data"]["n"] for _, _, v in self.log]


class Client:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def send_batch(self, messages):
        time.sleep(self.broker.delay)
        out = []
        for m in messages:
            if not self.broker.up:
                out.append(SendResult(False, "KafkaTimeoutError: down"))
            elif m.value in self.broker.reject:
                out.append(SendResult(False, "MessageSizeTooLargeError: big", permanent=True))
            else:
                with self.broker.lock:
                    self.broker.log.append((m.topic, m.key, m.value))
                out.append(SendResult(True))
        return out

    def close(self, timeout: float = 5.0) -> None:
        pass


def event(n: int) -> dict:
    return make_event(USAGE_TYPE, "test", {"n": n}, event_id=f"e{n}")


def sink(tmp_path, broker: Broker, **overrides) -> KafkaEventSink:
    settings = dataclasses.replace(SETTINGS, **overrides)
    return KafkaEventSink(
        KafkaConfig(), settings, tmp_path / "spool", client_factory=broker.client, topics=["t"]
    )


def wait(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def sample(s: KafkaEventSink, name: str, **labels) -> float | None:
    registry = CollectorRegistry()
    registry.register(s.collector())
    return registry.get_sample_value(name, labels)


def test_events_are_sent_in_order_with_key_and_headers(tmp_path):
    broker = Broker()
    s = sink(tmp_path, broker)
    s.start()
    for n in range(500):
        s.publish("t", "team/app", event(n), {"aifinops-counted-in": b"c1"})
    assert s.wait_delivered(10)
    s.stop()
    assert broker.values() == list(range(500))
    assert {key for _, key, _ in broker.log} == {b"team/app"}
    assert sample(s, "aifinops_bridge_produced_total", topic="t") == 500
    assert sample(s, "aifinops_bridge_spooled_messages") == 0


def test_an_outage_spools_everything_and_replays_it_in_order(tmp_path):
    broker = Broker()
    s = sink(tmp_path, broker)
    s.start()
    for n in range(10):
        s.publish("t", "k", event(n), {})
    assert s.wait_delivered(10)
    broker.up = False
    for n in range(10, 300):
        s.publish("t", "k", event(n), {})
    wait(lambda: s.spool.count == 290)
    assert sample(s, "aifinops_bridge_spooled_messages") == 290
    assert sample(s, "aifinops_bridge_produce_errors_total", topic="t") >= 1
    for n in range(300, 400):  # still down: they queue behind the spooled ones
        s.publish("t", "k", event(n), {})
    broker.up = True
    assert s.wait_delivered(10)
    s.stop()
    assert broker.values() == list(range(400))


def test_a_full_memory_queue_overflows_to_the_spool_without_reordering(tmp_path):
    broker = Broker()
    broker.delay = 0.05
    s = sink(tmp_path, broker, queue_size=20)
    s.start()
    for n in range(1000):
        s.publish("t", "k", event(n), {})
    assert s.spool.count > 0  # the publisher outran the sender
    assert s.wait_delivered(20)
    s.stop()
    assert broker.values() == list(range(1000))


def test_stop_during_an_outage_keeps_everything_for_the_next_start(tmp_path):
    broker = Broker()
    broker.up = False
    s = sink(tmp_path, broker)
    s.start()
    for n in range(50):
        s.publish("t", "k", event(n), {})
    s.stop()
    assert broker.log == []

    broker.up = True
    again = sink(tmp_path, broker)
    again.start()
    assert sample(again, "aifinops_bridge_spooled_messages") in (50, 0)
    again.publish("t", "k", event(50), {})
    assert again.wait_delivered(10)
    again.stop()
    assert broker.values() == list(range(51))


def test_stop_sends_what_is_in_memory_when_kafka_is_up(tmp_path):
    broker = Broker()
    broker.delay = 0.02
    s = sink(tmp_path, broker)
    s.start()
    for n in range(300):
        s.publish("t", "k", event(n), {})
    s.stop()
    assert broker.values() == list(range(300))
    assert s.spool.count == 0


def test_a_message_kafka_refuses_for_good_is_dropped_counted_and_does_not_block(tmp_path):
    broker = Broker()
    bad = event(1)
    broker.reject.add(__import__("aifinops.exporters.events", fromlist=["encode"]).encode(bad))
    s = sink(tmp_path, broker)
    s.start()
    s.publish("t", "k", event(0), {})
    s.publish("t", "k", bad, {})
    s.publish("t", "k", event(2), {})
    assert s.wait_delivered(10)
    s.stop()
    assert broker.values() == [0, 2]
    assert sample(s, "aifinops_bridge_dropped_messages_total", topic="t", reason="too_large") == 1


def test_publish_never_raises_and_counts_what_it_cannot_encode(tmp_path):
    s = sink(tmp_path, Broker())
    s.start()
    s.publish("t", "k", {"data": object()}, {})
    s.stop()
    assert sample(s, "aifinops_bridge_dropped_messages_total", topic="t", reason="unencodable") == 1
    s.publish("t", "k", event(1), {})  # after stop: counted, not raised
    assert sample(s, "aifinops_bridge_dropped_messages_total", topic="t", reason="stopped") == 1


def test_a_full_spool_drops_the_newest_and_counts_them(tmp_path):
    broker = Broker()
    broker.up = False
    s = sink(tmp_path, broker, spool_max_bytes=1 << 20, queue_size=1)
    s.start()
    big = make_event(USAGE_TYPE, "test", {"pad": "x" * 300_000})
    for _ in range(5):
        s.publish("t", "k", big, {})
    wait(
        lambda: (
            (
                sample(s, "aifinops_bridge_dropped_messages_total", topic="t", reason="spool_full")
                or 0
            )
            >= 2
        )
    )
    assert s.spool.count == 3
    s.stop()


def test_known_topics_are_exposed_at_zero(tmp_path):
    s = sink(tmp_path, Broker())
    assert sample(s, "aifinops_bridge_produced_total", topic="t") == 0
    assert sample(s, "aifinops_bridge_produce_errors_total", topic="t") == 0


def test_publish_many_keeps_the_order_through_memory_overflow_and_spool(tmp_path):
    broker = Broker()
    broker.delay = 0.2  # slow acknowledgements: the memory queue fills and spills
    s = sink(tmp_path, broker, queue_size=50)
    s.start()
    # The sender holds at most one batch in flight: by the third the queue has overflowed.
    for start in (0, 40, 80):
        s.publish_many("t", [("k", event(n), {}) for n in range(start, start + 40)])
    assert s.spool.count > 0
    unencodable = make_event(USAGE_TYPE, "test", {"n": object()})
    s.publish_many("t", [("k", event(120), {}), ("k", unencodable, {}), ("k", event(121), {})])
    assert s.wait_delivered(20)
    s.stop()
    assert broker.values() == list(range(122))
    assert sample(s, "aifinops_bridge_dropped_messages_total", topic="t", reason="unencodable") == 1
    assert sample(s, "aifinops_bridge_produced_total", topic="t") == 122


def test_a_reservation_is_all_or_nothing_and_what_it_queues_is_never_dropped(tmp_path):
    broker = Broker()
    broker.up = False
    s = sink(tmp_path, broker, spool_max_bytes=1 << 20, queue_size=20)
    s.start()
    try:
        reserved = 0
        refused = None
        for n in range(0, 100_000, 100):
            items = [("k", event(i), {}) for i in range(n, n + 100)]
            r = s.reserve("t", items)
            if r is None:
                refused = n
                break
            # Every other event counted (the rest "duplicates"): only those are queued.
            r.commit(range(0, 100, 2))
            reserved += 50
        assert refused is not None, "a 1 MiB spool never filled"
        # The memory queue and the spool together never dropped anything reserved.
        assert s.stats.snapshot()[2] == {}
        assert s.stats.refused_total() == {"t": 100}
        registry = CollectorRegistry()
        registry.register(s.collector())
        assert (
            registry.get_sample_value("aifinops_bridge_refused_messages_total", {"topic": "t"})
            == 100
        )
        # A cancelled reservation gives its room back.
        broker.up = True
        wait(lambda: s.queued == 0)
        r = s.reserve("t", [("k", event(-1), {})])
        assert r is not None
        r.cancel()
    finally:
        s.stop()
    values = broker.values()
    assert len(values) == reserved == len(set(values))
    assert all(v % 2 == 0 for v in values)
