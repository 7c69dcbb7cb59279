"""Topic planning and comparison: every difference listed, unreadable retention only noted."""

from __future__ import annotations

from aifinops.bridge.topics import RETENTION_UNREADABLE, differences, plan
from aifinops.bridge.transport import TopicDescription
from aifinops.exporters.config import KafkaConfig, TopicConfig

DAY = 86_400_000


def test_the_plan_is_the_five_design_topics_with_their_defaults():
    topics = {t.name: (t.partitions, t.retention_ms) for t in plan(KafkaConfig())}
    assert topics == {
        "ai-api-costs": (10, DAY),
        "gpu-utilization-events": (10, DAY),
        "cost-anomalies": (3, 7 * DAY),
        "ai-api-costs.dlq": (1, 7 * DAY),
        "gpu-utilization-events.dlq": (1, 7 * DAY),
    }


def test_every_difference_is_listed():
    wanted = [TopicConfig("a", 10, DAY), TopicConfig("b", 3, DAY, 3), TopicConfig("c", 1, DAY)]
    found = {
        "a": TopicDescription("a", 4, 1, DAY),
        "b": TopicDescription("b", 3, 1, 2 * DAY),
    }
    diffs, notes = differences(wanted, found)
    assert [str(d) for d in diffs] == [
        "a: partitions is 4, config says 10",
        "b: replication_factor is 1, config says 3",
        f"b: retention_ms is {2 * DAY}, config says {DAY}",
        f"c: missing (config: 1 partition, replication 1, retention {DAY} ms)",
    ]
    assert notes == []


def test_a_broker_that_hides_retention_gets_a_note_not_a_difference():
    wanted = [TopicConfig("a", 2, DAY)]
    diffs, notes = differences(wanted, {"a": TopicDescription("a", 2, 1, None)})
    assert diffs == []
    assert notes == [f"a: retention_ms {RETENTION_UNREADABLE}"]
