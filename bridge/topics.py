"""Topic administration: the topics the config asks for, how the cluster differs, and creating what is missing.

`plan(kafka)` lists the topics of docs/architecture.md from the `kafka.topics` config; `differences(wanted,
found)` compares them with what the cluster describes (a pure function); `ensure(admin, wanted)`
creates the missing ones and `check(admin, wanted)` reports every difference. Partitions are never
changed on an existing topic: adding partitions moves keys to other partitions, which breaks the
per-key order consumers rely on, so that stays an operator's decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from aifinops.exporters.config import KafkaConfig, TopicConfig

from .transport import TopicDescription

RETENTION_UNREADABLE = "not readable from this broker"


class TopicAdmin(Protocol):
    """What topic administration needs of a Kafka admin client (`transport.AdminClient`)."""

    def describe(self, names: Sequence[str]) -> dict[str, TopicDescription]:
        """The topics of `names` that exist."""
        ...

    def create(self, topics: Sequence[tuple[str, int, int, Mapping[str, str]]]) -> dict[str, str]:
        """Create topics; an error text per topic that failed (`exists` if it was there)."""
        ...


@dataclass(frozen=True)
class Difference:
    """One way a topic in the cluster differs from the config."""

    topic: str
    field: str  # "exists", "partitions", "replication_factor", "retention_ms"
    wanted: str
    found: str

    def __str__(self) -> str:
        if self.field == "exists":
            return f"{self.topic}: missing (config: {self.wanted})"
        return f"{self.topic}: {self.field} is {self.found}, config says {self.wanted}"


@dataclass(frozen=True)
class TopicReport:
    """The outcome of `check` or `ensure`: differences, notes (not differences), created topics."""

    differences: tuple[Difference, ...]
    notes: tuple[str, ...] = ()
    created: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the cluster matches the config."""
        return not self.differences


def plan(kafka: KafkaConfig) -> list[TopicConfig]:
    """Every topic of the config, in docs/architecture.md order: usage, GPU, anomalies, then the DLQs."""
    t = kafka.topics
    return [t.usage, t.gpu, t.anomalies, t.usage_dlq, t.gpu_dlq]


def describe_topic(topic: TopicConfig) -> str:
    """`10 partitions, replication 1, retention 86400000 ms`."""
    plural = "s" if topic.partitions != 1 else ""
    return (
        f"{topic.partitions} partition{plural}, replication {topic.replication_factor}, "
        f"retention {topic.retention_ms} ms"
    )


def differences(
    wanted: Sequence[TopicConfig], found: Mapping[str, TopicDescription]
) -> tuple[list[Difference], list[str]]:
    """Every difference between the config and the cluster, and notes on what could not be read.

    A topic with more partitions than configured is a difference too (consumers scale to the
    partition count, and the config should say what is deployed).
    """
    diffs: list[Difference] = []
    notes: list[str] = []
    for topic in wanted:
        actual = found.get(topic.name)
        if actual is None:
            diffs.append(Difference(topic.name, "exists", describe_topic(topic), "missing"))
            continue
        if actual.partitions != topic.partitions:
            diffs.append(
                Difference(topic.name, "partitions", str(topic.partitions), str(actual.partitions))
            )
        if actual.replication_factor != topic.replication_factor:
            diffs.append(
                Difference(
                    topic.name,
                    "replication_factor",
                    str(topic.replication_factor),
                    str(actual.replication_factor),
                )
            )
        if actual.retention_ms is None:
            notes.append(f"{topic.name}: retention_ms {RETENTION_UNREADABLE}")
        elif actual.retention_ms != topic.retention_ms:
            diffs.append(
                Difference(
                    topic.name, "retention_ms", str(topic.retention_ms), str(actual.retention_ms)
                )
            )
    return diffs, notes


def check(admin: TopicAdmin, wanted: Sequence[TopicConfig]) -> TopicReport:
    """Compare the cluster with the config."""
    found = admin.describe([t.name for t in wanted])
    diffs, notes = differences(wanted, found)
    return TopicReport(tuple(diffs), tuple(notes))


class TopicCreationError(Exception):
    """The broker refused to create a topic."""


def ensure(admin: TopicAdmin, wanted: Sequence[TopicConfig]) -> TopicReport:
    """Create the missing topics (partitions, replication, retention from the config), then check.

    Idempotent: existing topics are left as they are and a second run creates nothing. Raises
    `TopicCreationError` listing every topic the broker refused.
    """
    found = admin.describe([t.name for t in wanted])
    missing = [t for t in wanted if t.name not in found]
    errors = admin.create(
        [
            (t.name, t.partitions, t.replication_factor, {"retention.ms": str(t.retention_ms)})
            for t in missing
        ]
    )
    refused = {name: error for name, error in errors.items() if error != "exists"}
    if refused:
        raise TopicCreationError(
            "; ".join(f"{name}: {error}" for name, error in sorted(refused.items()))
        )
    created = tuple(t.name for t in missing if t.name not in errors)
    report = check(admin, wanted)
    return TopicReport(report.differences, report.notes, created)
