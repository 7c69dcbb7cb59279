"""Plain message types that travel between the Kafka transport and the rest of the bridge (no client objects)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


class OutboundMessage(NamedTuple):
    """One message to write: topic, key, value and headers, already encoded."""

    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class InboundRecord(NamedTuple):
    """One consumed message with its position: what the bridge reads of a record.

    The group consumer hands kafka-python's `ConsumerRecord`s through under this type, unconverted
    (no copy per record): they have these attributes under these names, and the bridge reads
    records only by name, never by position (`ConsumerRecord` orders its fields differently).
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


class TopicPartition(NamedTuple):
    """A topic and one of its partitions."""

    topic: str
    partition: int


# One partition's records from a poll: kafka-python's own TopicPartition (a `(topic, partition)`
# tuple, as `TopicPartition` is) and its records.
Polled = tuple[tuple[str, int], list[InboundRecord]]
