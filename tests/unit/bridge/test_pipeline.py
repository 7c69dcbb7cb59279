"""The bridge without Kafka: sorting and counting messages, dead letters, checkpoints and their restore,
and the consumer loop driven by a scripted group member (rebalances, dedupe replay, DLQ retries)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from aifinops.bridge.checkpoint import (
    Checkpoint,
    CheckpointStore,
    Continuation,
    CounterFamily,
    ScrapeCheckpoint,
    StateError,
)
from aifinops.bridge.consumer import BridgeConsumer
from aifinops.bridge.metrics import BridgeCollector, BridgeStats
from aifinops.bridge.pipeline import MessageProcessor
from aifinops.bridge.records import InboundRecord, TopicPartition
from aifinops.bridge.transport import LogEnd, SendResult, TransportError
from aifinops.exporters.config import LLMConfig, TopicsConfig
from aifinops.exporters.events import GPU_SAMPLE_TYPE, USAGE_TYPE, encode, make_event
from aifinops.exporters.gpu import GPUAggregator
from aifinops.exporters.llm import DedupeWindow, LLMCollector, UsageIngest
from aifinops.exporters.runtime.exposition import RowsMetricFamily

TOPICS = TopicsConfig()
USAGE, GPU = TOPICS.usage.name, TOPICS.gpu.name
WHEN = datetime.now(UTC) - timedelta(minutes=1)


def usage(n: int, cost: float = 0.5, **data) -> bytes:
    body = {
        "provider": "openai",
        "model": "gpt-4o",
        "team": "ml",
        "app": "chat",
        "input_tokens": 10,
        "output_tokens": 1,
        "cost_usd": cost,
        **data,
    }
    return encode(make_event(USAGE_TYPE, "gw", body, event_id=f"e{n}", time=WHEN))


def gpu(n: int) -> bytes:
    data = {
        "node": "n1",
        "gpu": 0,
        "uuid": "GPU-1",
        "model": "H100",
        "utilization_ratio": 0.5,
        "memory_used_bytes": 1,
        "memory_total_bytes": 2,
        "power_watts": 100,
        "hourly_cost_usd": 3.6,
        "interval_seconds": 10,
    }
    return encode(make_event(GPU_SAMPLE_TYPE, "gpu", data, event_id=f"g{n}", time=WHEN))


def processor() -> MessageProcessor:
    return MessageProcessor(
        UsageIngest.from_config(LLMConfig(), sources=("kafka",)),
        GPUAggregator(),
        DedupeWindow(),
        TOPICS,
        "here",
        1024 * 64,
    )


def test_messages_are_sorted_counted_and_deduplicated():
    p = processor()
    records = [
        InboundRecord(USAGE, 0, 0, b"k", usage(1), []),
        InboundRecord(USAGE, 0, 1, b"k", usage(1), []),  # the same event again
        InboundRecord(USAGE, 0, 2, b"k", usage(2), [("aifinops-counted-in", b"here")]),
        InboundRecord(USAGE, 0, 3, b"k", usage(3), [("aifinops-counted-in", b"elsewhere")]),
        InboundRecord(USAGE, 0, 4, b"k", b"{", []),
        InboundRecord(USAGE, 0, 5, b"k", usage(4, input_tokens=-1), []),
        InboundRecord(USAGE, 0, 6, b"k", None, []),
        InboundRecord(USAGE, 0, 7, b"k", b"x" * 70_000, []),
        InboundRecord(GPU, 1, 0, b"n1/GPU-1", gpu(1), []),
        InboundRecord(GPU, 1, 1, b"n1/GPU-1", usage(9), []),  # a usage event on the GPU topic
    ]
    batch = p.process(records)
    counts = p.apply(batch)
    assert counts == {
        (USAGE, "applied"): 2,
        (USAGE, "duplicate"): 1,
        (USAGE, "invalid"): 4,
        (USAGE, "skipped"): 1,
        (GPU, "applied"): 1,
        (GPU, "duplicate"): 0,
        (GPU, "invalid"): 1,
    }
    reasons = [reason for _, reason in batch.invalid]
    assert reasons[0].startswith("value: not valid JSON")
    assert "data.input_tokens" in reasons[1]
    assert reasons[2] == "value: empty (a tombstone)"
    assert "over bridge.max_message_bytes" in reasons[3]
    assert "type: must be one of io.aifinops.gpu.sample.v1" in reasons[4]
    snap = p.usage.aggregator.snapshot()
    assert sum(snap.requests.values()) == 2
    assert sum(snap.cost.values()) == 1
    assert snap.ingest[("kafka", "rejected")] == 4


def test_an_integer_too_long_to_convert_is_dead_lettered_naming_its_field():
    # Python converts integers of at most 4,300 digits: the reason names the field, as the token
    # exporter's 400 does, on either topic.
    digits = b"9" * 4301
    long_tokens = usage(1).replace(b'"input_tokens":10', b'"input_tokens":' + digits)
    long_power = gpu(1).replace(b'"power_watts":100', b'"power_watts":-' + digits)
    assert long_tokens != usage(1) and long_power != gpu(1)
    p = processor()
    batch = p.process(
        [
            InboundRecord(USAGE, 0, 0, b"k", long_tokens, []),
            InboundRecord(GPU, 0, 0, b"n1/GPU-1", long_power, []),
            InboundRecord(GPU, 0, 1, b"n1/GPU-1", b'{"a": 1', []),
        ]
    )
    reasons = [reason for _, reason in batch.invalid]
    assert reasons[0].startswith("data.input_tokens: Exceeds the limit (4300 digits)")
    assert reasons[1].startswith("data.power_watts: Exceeds the limit (4300 digits)")
    assert reasons[2].startswith("value: not valid JSON")
    assert p.apply(batch)[(USAGE, "invalid")] == 1
    (letter, *_) = p.dead_letters(batch.invalid, max_bytes=1 << 20)
    assert dict(letter.headers)["aifinops-dlq-reason"].startswith(b"data.input_tokens: ")


def test_dead_letters_keep_key_value_headers_and_say_why_and_where_from():
    p = processor()
    record = InboundRecord(USAGE, 3, 42, b"team/app", b"y" * 100, [("trace", b"t")])
    (letter,) = p.dead_letters([(record, "value: broken")], max_bytes=10)
    assert letter.topic == TOPICS.usage_dlq.name
    assert letter.key == b"team/app"
    assert letter.value == b"y" * 10
    assert dict(letter.headers) == {
        "trace": b"t",
        "aifinops-dlq-reason": b"value: broken",
        "aifinops-dlq-origin": f"{USAGE}/3/42".encode(),
        "aifinops-dlq-truncated": b"100",
    }


def test_a_replayed_record_is_only_remembered():
    p = processor()
    batch = p.process([InboundRecord(USAGE, 0, 5, b"k", usage(1), [])], {(USAGE, 0): 6})
    assert p.apply(batch) == {}
    again = p.process([InboundRecord(USAGE, 0, 6, b"k", usage(1), [])], {(USAGE, 0): 6})
    assert p.apply(again) == {(USAGE, "applied"): 0, (USAGE, "duplicate"): 1}


def test_continuation_adds_the_checkpoint_and_keeps_series_only_it_has():
    base = {
        "c": __import__("aifinops.bridge.checkpoint", fromlist=["CounterFamily"]).CounterFamily(
            "c", "help", ("team",), {("ml",): 10.0, ("gone",): 3.0}
        )
    }
    live = RowsMetricFamily("c", "help", "counter", ("team",), [(("ml",), 1.0), (("new",), 2.0)])
    gauge = GaugeMetricFamily("g", "gauge", value=7)
    plain = CounterMetricFamily("p", "plain", labels=["x"])
    plain.add_metric(["a"], 4)
    out = {f.name: f for f in Continuation(base).continue_families([live, gauge, plain])}
    assert sorted(out["c"].rows) == [(("gone",), 3.0), (("ml",), 11.0), (("new",), 2.0)]
    assert out["g"] is gauge
    assert out["p"].rows == [(("a",), 4.0)]


def test_expiring_families_drop_series_only_the_checkpoint_has_after_retention():
    from aifinops.bridge.checkpoint import CounterFamily

    now = [0.0]
    base = {"m": CounterFamily("m", "h", ("pod",), {("old",): 1.0, ("live",): 2.0})}
    cont = Continuation(base, expiring=["m"], retention_seconds=10, clock=lambda: now[0])
    live = [RowsMetricFamily("m", "h", "counter", ("pod",), [(("live",), 1.0)])]
    assert sorted(cont.continue_families(live)[0].rows) == [(("live",), 3.0), (("old",), 1.0)]
    now[0] = 11
    assert cont.continue_families(live)[0].rows == [(("live",), 3.0)]


def test_a_checkpoint_round_trips_and_its_directory_is_locked(tmp_path):
    from aifinops.bridge.checkpoint import CounterFamily

    store = CheckpointStore(tmp_path)
    assert store.open() is None
    checkpoint = Checkpoint(
        {TopicPartition("t", 0): 12, TopicPartition("t", 3): 7},
        {"c": CounterFamily("c", "h", ("a", "b"), {("x", "y"): 0.1 + 0.2})},
        123.0,
    )
    store.save(checkpoint)
    with pytest.raises(StateError, match="in use by another process"):
        CheckpointStore(tmp_path).open()
    store.close()
    again = CheckpointStore(tmp_path)
    assert again.open() == checkpoint
    again.close()
    (tmp_path / "checkpoint.json").write_text("{broken")
    with pytest.raises(StateError, match="unreadable"):
        CheckpointStore(tmp_path).open()


class Member:
    """A scripted group member: partitions, committed offsets, queued poll results."""

    def __init__(self, records: dict[TopicPartition, list[InboundRecord]], committed=None) -> None:
        self.records = records
        self.committed_offsets = dict(committed or {})
        self.positions = {tp: self.committed_offsets.get(tp, 0) for tp in records}
        self.commits: list[dict] = []
        self.assigned = False
        self.revoked: list = []
        self.on_revoked = self.on_assigned = None
        self.closed = False
        self.batch = 3
        self.cluster_id: str | None = "cluster-a"
        self.topic_ids: dict[str, str] = {}

    def factory(self, on_revoked, on_assigned, on_lost):
        self.on_revoked, self.on_assigned = on_revoked, on_assigned
        return self

    def poll(self, timeout, max_records=None):
        if not self.assigned:
            self.assigned = True
            self.on_assigned(list(self.records))
        out = []
        for tp, recs in self.records.items():
            part = [r for r in recs if r.offset >= self.positions[tp]][: self.batch]
            if part:
                self.positions[tp] = part[-1].offset + 1
                out.append((tp, part))
        return out

    def commit(self, offsets):
        self.commits.append(dict(offsets))
        self.committed_offsets.update(offsets)

    def committed(self, tp):
        return self.committed_offsets.get(tp)

    def seek(self, tp, offset):
        self.positions[tp] = offset

    def highwater(self, tp):
        return LogEnd(len(self.records[tp]), "the log")

    def position(self, tp):
        return self.positions[tp]

    def assignment(self):
        return set(self.records) if self.assigned else set()

    def identity(self, topics):
        return self.cluster_id, dict(self.topic_ids)

    def beginning(self, partitions):
        return dict.fromkeys(partitions, 0)

    def close(self):
        self.closed = True


class DLQ:
    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.sent: list = []

    def send_batch(self, messages):
        if self.fail:
            self.fail -= 1
            return [SendResult(False, "KafkaTimeoutError: down")] * len(messages)
        self.sent.extend(messages)
        return [SendResult(True)] * len(messages)

    def close(self, timeout=5.0):
        pass


def run_until(consumer: BridgeConsumer, predicate, timeout=10.0):
    import time

    consumer.start()
    deadline = time.monotonic() + timeout
    try:
        while not predicate():
            assert time.monotonic() < deadline, "condition not reached"
            time.sleep(0.01)
    finally:
        consumer.stop()


def bridge(member, restored=None, dlq=None, replay=0, store=None, continuation=None):
    """A consumer over `member`; with a `store` or a `continuation`, its scrape checkpoint too."""
    p = processor()
    stats = BridgeStats(p.topics)
    dlq = dlq or DLQ()
    collectors = [LLMCollector(p.usage.aggregator), BridgeCollector(stats)]
    checkpoint = None
    if store is not None or continuation is not None:

        def checkpoint(counted):
            return ScrapeCheckpoint(counted, collectors, continuation or Continuation(), store)

    consumer = BridgeConsumer(
        member.factory,
        p,
        lambda: dlq,
        stats,
        restored=restored,
        dedupe_replay_messages=replay,
        retry_seconds=0.01,
        checkpoint=checkpoint,
    )
    return consumer, p, stats, collectors


def test_a_restored_partition_resumes_at_its_checkpoint_and_replays_over_several_polls():
    tp = TopicPartition(USAGE, 0)
    records = {tp: [InboundRecord(USAGE, 0, i, b"k", usage(i % 8), []) for i in range(20)]}
    # Counted before the crash: 0..11 (12 events, of which e0..e7 once and e0..e3 again).
    restored = Checkpoint({tp: 12})
    member = Member(records, committed={tp: 9})
    consumer, _p, stats, _ = bridge(member, restored, replay=10)
    run_until(consumer, lambda: consumer.positions().get(tp) == 20 and not consumer._replay_until)
    # 12..19 are e4..e7, e0..e3: all seen within the replay, so duplicates, none applied.
    messages, _ = stats.snapshot()
    assert messages[(USAGE, "applied")] == 0
    assert messages[(USAGE, "duplicate")] == 8
    assert member.commits[-1] == {} or member.commits[-1].get(tp, 20) <= 20


def test_scrapes_are_checkpointed_before_they_are_served_and_then_committed(tmp_path):
    tp = TopicPartition(USAGE, 0)
    member = Member({tp: [InboundRecord(USAGE, 0, i, b"k", usage(i), []) for i in range(6)]})
    store = CheckpointStore(tmp_path)
    store.open()
    consumer, _p, _stats, _collectors = bridge(member, store=store)
    registry = CollectorRegistry()
    registry.register(consumer.checkpoint)

    def served_and_committed() -> bool:
        value = registry.get_sample_value(
            "aifinops_llm_requests_total",
            {"provider": "openai", "model": "gpt-4o", "team": "ml", "app": "chat", "status": "ok"},
        )
        return value == 6 and bool(member.commits) and member.commits[-1].get(tp) == 6

    run_until(consumer, served_and_committed)
    saved = json.loads((tmp_path / "checkpoint.json").read_text())
    assert saved["positions"] == [[USAGE, 0, 6]]
    rows = {c["name"]: c["rows"] for c in saved["counters"]}
    assert rows["aifinops_llm_requests"] == [[["openai", "gpt-4o", "ml", "chat", "ok"], 6.0]]
    assert member.closed  # stop leaves the group


def test_a_checkpoint_that_cannot_be_written_fails_the_scrape_and_commits_nothing(tmp_path):
    class FullDisk(CheckpointStore):
        def save(self, checkpoint):
            raise OSError("No space left on device")

    tp = TopicPartition(USAGE, 0)
    member = Member({tp: [InboundRecord(USAGE, 0, i, b"k", usage(i), []) for i in range(3)]})
    consumer, _p, _stats, _collectors = bridge(member, store=FullDisk(tmp_path))
    run_until(consumer, lambda: consumer.positions().get(tp) == 3)
    with pytest.raises(OSError, match="No space"):
        list(consumer.checkpoint.collect())
    # Lock, write, commit: the write failed, so no offset was handed to the group, even on stop.
    assert all(tp not in offsets for offsets in member.commits)
    consumer.start()
    consumer.stop()
    assert all(tp not in offsets for offsets in member.commits)


def test_a_failed_dead_letter_is_retried_before_anything_of_its_batch_counts():
    tp = TopicPartition(USAGE, 0)
    member = Member(
        {
            tp: [
                InboundRecord(USAGE, 0, 0, b"k", usage(0), []),
                InboundRecord(USAGE, 0, 1, b"k", b"bad", []),
            ]
        }
    )
    dlq = DLQ(fail=2)
    consumer, _p, stats, _ = bridge(member, dlq=dlq)
    run_until(consumer, lambda: stats.snapshot()[0][(USAGE, "invalid")] == 1)
    messages, _ = stats.snapshot()
    assert messages[(USAGE, "applied")] == 1  # counted once, after the DLQ took the bad one
    assert [m.value for m in dlq.sent] == [b"bad"]


def test_revoked_partitions_are_checkpointed_and_committed_where_they_got_to(tmp_path):
    tp = TopicPartition(USAGE, 0)
    member = Member({tp: [InboundRecord(USAGE, 0, i, b"k", usage(i), []) for i in range(4)]})
    store = CheckpointStore(tmp_path)
    store.open()
    consumer, _p, _stats, _collectors = bridge(member, store=store)
    run_until(consumer, lambda: consumer.positions().get(tp) == 4)
    assert not (tmp_path / "checkpoint.json").exists()  # no scrape yet
    assert consumer._on_revoked([tp]) == {tp: 4}  # the transport commits these
    saved = json.loads((tmp_path / "checkpoint.json").read_text())
    assert saved["positions"] == [[USAGE, 0, 4]]
    assert tp not in consumer.positions()
    store.close()


def test_an_unreachable_broker_marks_the_consumer_failing():
    from aifinops.exporters.runtime.selfmetrics import CollectorHealth

    health = CollectorHealth()

    def factory(revoked, assigned, lost):
        raise TransportError("no broker")

    p = processor()
    consumer = BridgeConsumer(factory, p, DLQ, BridgeStats(), health=health, retry_seconds=0.01)
    run_until(consumer, lambda: "kafka_consumer" in health.snapshot())
    assert health.snapshot()["kafka_consumer"].success is False


def test_a_checkpoint_of_another_cluster_or_topic_is_set_aside_and_not_trusted(tmp_path):
    tp = TopicPartition(USAGE, 0)
    member = Member({tp: [InboundRecord(USAGE, 0, i, b"k", usage(i), []) for i in range(6)]})
    member.topic_ids = {USAGE: "new-id"}
    store = CheckpointStore(tmp_path)
    store.open()
    family = CounterFamily(
        "aifinops_llm_requests",
        "calls",
        ("provider", "model", "team", "app", "status"),
        {("openai", "gpt-4o", "ml", "chat", "ok"): 1000.0},
    )
    old = Checkpoint({tp: 500}, {family.name: family}, 1.0, "cluster-a", {USAGE: "old-id"})
    store.save(old)
    store.close()
    restored = store.open()
    assert restored is not None and restored.topic_ids == {USAGE: "old-id"}
    consumer, _p, _stats, _collectors = bridge(
        member, restored, store=store, continuation=Continuation(restored.counters)
    )
    registry = CollectorRegistry()
    registry.register(consumer.checkpoint)
    labels = {"provider": "openai", "model": "gpt-4o", "team": "ml", "app": "chat"}
    # Before the member joins, the restored values are served.
    assert (
        registry.get_sample_value("aifinops_llm_requests_total", {**labels, "status": "ok"}) == 1000
    )
    run_until(consumer, lambda: consumer.positions().get(tp) == 6)
    # Read from the start of the new log, counted from zero: the old 1000 are gone.
    assert registry.get_sample_value("aifinops_llm_requests_total", {**labels, "status": "ok"}) == 6
    assert (
        registry.get_sample_value(
            "aifinops_bridge_checkpoint_set_aside_total", {"reason": "topic_id"}
        )
        == 1
    )
    assert len(list(tmp_path.glob("checkpoint.json.set-aside-*"))) == 1
    # The new checkpoint is bound to the new topic.
    store.close()
    assert CheckpointStore(tmp_path).open().topic_ids == {USAGE: "new-id"}


def test_lag_is_unknown_not_zero_while_the_position_lies_beyond_the_log():
    tp = TopicPartition(USAGE, 0)
    member = Member({tp: [InboundRecord(USAGE, 0, i, b"k", usage(i), []) for i in range(6)]})
    consumer, _p, stats, _ = bridge(member)
    run_until(consumer, lambda: consumer.positions().get(tp) == 6)
    assert stats.snapshot()[1] == {tp: 0}
    # The log is recreated shorter under the member (a broker restart): no sample, not 0.
    member.records[tp] = member.records[tp][:2]
    consumer._update_lag(member)
    assert stats.snapshot()[1] == {}


def usage_log(first: int, n: int) -> list[InboundRecord]:
    """A usage partition's log of `n` events with ids e<first>..."""
    return [InboundRecord(USAGE, 0, i, b"k", usage(first + i), []) for i in range(n)]


def replaced(registry: CollectorRegistry, reason: str) -> float | None:
    return registry.get_sample_value("aifinops_bridge_log_replaced_total", {"reason": reason})


def test_a_topic_recreated_under_the_running_member_is_read_from_its_start(tmp_path, caplog):
    tp = TopicPartition(USAGE, 0)
    member = Member({tp: usage_log(0, 6)})
    member.topic_ids = {USAGE: "id-1"}
    store = CheckpointStore(tmp_path)
    store.open()
    consumer, _p, stats, _collectors = bridge(member, store=store)
    registry = CollectorRegistry()
    registry.register(consumer.checkpoint)
    run_until(consumer, lambda: consumer.positions().get(tp) == 6)
    # The topic is deleted and created again while the member runs; its new log already holds
    # more than the member's position, which kafka-python keeps (no error tells it otherwise).
    member.records[tp] = usage_log(100, 10)
    member.topic_ids = {USAGE: "id-2"}
    run_until(consumer, lambda: stats.snapshot()[0][(USAGE, "applied")] == 16)
    messages, _ = stats.snapshot()
    # The old log's 6 stay counted and the new log's 10 are counted once each, none skipped:
    # the batch fetched at the old position was dropped before it was counted.
    assert (messages[(USAGE, "applied")], messages[(USAGE, "duplicate")]) == (16, 0)
    assert consumer.positions()[tp] == 10
    assert replaced(registry, "topic_id") == 1
    assert replaced(registry, "cluster_id") == 0
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any(
        "is not the log its position belongs to" in m and "id-1 is now id-2" in m and "6 -> 0" in m
        for m in errors
    ), errors
    # The next checkpoint is bound to the new topic, with the new log's offset.
    saved = json.loads((tmp_path / "checkpoint.json").read_text())
    assert (saved["topic_ids"], saved["positions"]) == ({USAGE: "id-2"}, [[USAGE, 0, 10]])
    store.close()


def test_new_log_events_read_at_the_old_position_before_the_ids_changed_count_once():
    tp = TopicPartition(USAGE, 0)
    member = Member({tp: usage_log(0, 6)})
    member.topic_ids = {USAGE: "id-1"}
    consumer, _p, stats, collectors = bridge(member)
    run_until(consumer, lambda: consumer.positions().get(tp) == 6)
    # The metadata still names the old topic id: the member reads the new log at offset 6.
    member.records[tp] = usage_log(100, 10)
    run_until(consumer, lambda: consumer.positions().get(tp) == 10)
    assert stats.snapshot()[0][(USAGE, "applied")] == 10  # e106..e109: e100..e105 skipped so far
    member.topic_ids = {USAGE: "id-2"}  # the next metadata refresh
    run_until(consumer, lambda: consumer.positions().get(tp) == 10 and member.positions[tp] == 10)
    messages, _ = stats.snapshot()
    # Read again from 0: e100..e105 counted, e106..e109 known already and dropped as duplicates.
    assert (messages[(USAGE, "applied")], messages[(USAGE, "duplicate")]) == (16, 4)
    registry = CollectorRegistry()
    registry.register(collectors[1])
    assert replaced(registry, "topic_id") == 1


def test_another_cluster_behind_the_address_reads_every_held_partition_again():
    usage_tp, gpu_tp = TopicPartition(USAGE, 0), TopicPartition(GPU, 0)
    member = Member(
        {
            usage_tp: usage_log(0, 4),
            gpu_tp: [InboundRecord(GPU, 0, i, b"k", gpu(i), []) for i in range(4)],
        }
    )
    consumer, _p, stats, collectors = bridge(member)
    run_until(consumer, lambda: consumer.positions() == {usage_tp: 4, gpu_tp: 4})
    member.records[usage_tp] = usage_log(100, 7)
    member.records[gpu_tp] = [InboundRecord(GPU, 0, i, b"k", gpu(100 + i), []) for i in range(7)]
    member.cluster_id = "cluster-b"  # the broker gives no topic ids: the cluster id tells
    run_until(consumer, lambda: consumer.positions() == {usage_tp: 7, gpu_tp: 7})
    messages, _ = stats.snapshot()
    assert messages[(USAGE, "applied")] == 11 and messages[(GPU, "applied")] == 11
    registry = CollectorRegistry()
    registry.register(collectors[1])
    assert replaced(registry, "cluster_id") == 2  # one per partition held
    assert consumer.binding() == ("cluster-b", {})


def test_without_ids_a_log_ending_before_the_position_is_read_from_its_start():
    tp = TopicPartition(USAGE, 0)
    member = Member({tp: usage_log(0, 6)})
    member.cluster_id = None  # a broker that gives no ids at all
    consumer, _p, stats, collectors = bridge(member)
    run_until(consumer, lambda: consumer.positions().get(tp) == 6)
    member.records[tp] = usage_log(100, 3)
    run_until(consumer, lambda: stats.snapshot()[0][(USAGE, "applied")] == 9)
    registry = CollectorRegistry()
    registry.register(collectors[1])
    assert replaced(registry, "offset_beyond_end") == 1
    assert consumer.positions()[tp] == 3


def test_a_topic_id_learnt_after_joining_is_bound_not_taken_for_a_replaced_log():
    tp = TopicPartition(USAGE, 0)
    member = Member({tp: usage_log(0, 6)})
    consumer, _p, stats, collectors = bridge(member)
    run_until(consumer, lambda: consumer.positions().get(tp) == 6)
    member.topic_ids = {USAGE: "id-1"}  # the topic was auto-created on produce meanwhile
    member.records[tp] = usage_log(0, 8)
    run_until(consumer, lambda: consumer.positions().get(tp) == 8)
    assert consumer.binding() == ("cluster-a", {USAGE: "id-1"})
    assert stats.snapshot()[0][(USAGE, "applied")] == 8
    registry = CollectorRegistry()
    registry.register(collectors[1])
    assert all(replaced(registry, r) == 0 for r in ("topic_id", "cluster_id", "offset_beyond_end"))


def test_the_group_member_is_configured_by_the_bridge_section_alone():
    from aifinops.bridge.transport import ConsumerSettings
    from aifinops.exporters.config import BridgeConfig

    section = BridgeConfig(
        group_id="g1",
        auto_offset_reset="latest",
        max_poll_records=7,
        max_poll_interval_ms=2000,
        session_timeout_ms=9000,
        heartbeat_interval_ms=1000,
    )
    settings = ConsumerSettings.from_config(section, (USAGE, GPU))
    assert settings == ConsumerSettings("g1", (USAGE, GPU), "latest", 7, 2000, 9000, 1000)
