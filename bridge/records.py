"""Plain message types that travel between the Kafka transport and the rest of the bridge (no client objects)."""

from __future__ import annotations

from typing import NamedTuple


class OutboundMessage(NamedTuple):
    """One message to write: topic, key, value and headers, already encoded."""

    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class InboundRecord(NamedTuple):
    """One consumed message with its position."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


class TopicPartition(NamedTuple):
    """A topic and one of its partitions."""

    topic: str
    partition: int
