"""What the bridge does with each consumed message: skip, validate, price, dedupe and count, or dead-letter.

No Kafka client here: `MessageProcessor.process(records)` sorts a polled batch into usage events
(validated and priced by the token exporter's `UsageIngest.prepare`, the same code as HTTP
ingest), GPU samples (`parse_gpu_event`, the GPU exporter's schema), invalid messages with their
reason, and messages already counted by an exporter of this cluster; `apply(batch)` then counts it
through the shared aggregators (`UsageIngest.apply_all`, `GPUAggregator.apply`), with duplicates by
`(source, id)` counted once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aifinops.exporters.config import TopicsConfig
from aifinops.exporters.events import EventError, GPUEvent, loads, parse_gpu_event
from aifinops.exporters.events.codec import long_integer_field
from aifinops.exporters.gpu import GPUAggregator
from aifinops.exporters.llm import DedupeWindow, PricedEvent, UsageIngest
from aifinops.exporters.sink import COUNTED_IN_HEADER

from .records import InboundRecord, OutboundMessage

REASON_HEADER = "aifinops-dlq-reason"
ORIGIN_HEADER = "aifinops-dlq-origin"  # topic/partition/offset of the original message
TRUNCATED_HEADER = "aifinops-dlq-truncated"  # original size, when the value was cut
MAX_REASON_BYTES = 4096


def _unreadable(value: bytes, exc: ValueError) -> str:
    """The dead-letter reason of a message value `loads` refused: not UTF-8 JSON, or JSON holding an
    integer too long to convert (over 4,300 digits), which names its field as the token exporter's
    400 does (`data.input_tokens: Exceeds the limit ...`)."""
    if isinstance(exc, UnicodeDecodeError | json.JSONDecodeError):
        return f"value: not valid JSON: {exc}"
    return f"{long_integer_field(value) or 'value'}: {exc}"


@dataclass
class Batch:
    """One polled batch sorted by what happens to each message."""

    usage: list[PricedEvent] = field(default_factory=list)
    gpu: list[GPUEvent] = field(default_factory=list)
    # (record, reason) of every invalid message, in order.
    invalid: list[tuple[InboundRecord, str]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    # (topic, identity) of messages read again after a restart only to remember their identity.
    remembered: list[tuple[str, tuple[str, str]]] = field(default_factory=list)


class MessageProcessor:
    """Sorts and counts messages of the usage and GPU topics for one bridge."""

    def __init__(
        self,
        usage: UsageIngest,
        gpu: GPUAggregator,
        gpu_dedupe: DedupeWindow,
        topics: TopicsConfig,
        cluster: str,
        max_message_bytes: int,
    ) -> None:
        self.usage = usage
        self.gpu = gpu
        self.gpu_dedupe = gpu_dedupe
        self.usage_topic = topics.usage.name
        self.gpu_topic = topics.gpu.name
        self.dlq_topics = {
            topics.usage.name: topics.usage_dlq.name,
            topics.gpu.name: topics.gpu_dlq.name,
        }
        self._own = cluster.encode()
        self._max_bytes = max_message_bytes
        self._max_future = usage.max_future

    @property
    def topics(self) -> tuple[str, str]:
        """The topics it reads."""
        return (self.usage_topic, self.gpu_topic)

    def process(
        self,
        records: Iterable[InboundRecord],
        replay_until: Mapping[tuple[str, int], int] | None = None,
    ) -> Batch:
        """Sort `records` (kafka-python's, or anything with the attributes of `InboundRecord`).

        A record below `replay_until[(topic, partition)]` is one read again after a restart: only
        its identity is remembered (it is already in the restored counters).
        """
        batch = Batch()
        usage_topic, gpu_topic = self.usage_topic, self.gpu_topic
        own = self._own
        max_bytes = self._max_bytes
        prepare_json = self.usage.prepare_json
        # One clock reading per batch for the "not in the future" check, not one per event.
        now = datetime.now(UTC)
        for record in records:
            topic = record.topic
            if replay_until and record.offset < replay_until.get((topic, record.partition), -1):
                self._remember(record, batch)
                continue
            headers = record.headers
            if headers and any(k == COUNTED_IN_HEADER and v == own for k, v in headers):
                batch.skipped[topic] = batch.skipped.get(topic, 0) + 1
                continue
            value = record.value
            if value is None:
                batch.invalid.append((record, "value: empty (a tombstone)"))
                continue
            if len(value) > max_bytes:
                batch.invalid.append(
                    (
                        record,
                        f"value: {len(value)} bytes, over bridge.max_message_bytes ({max_bytes})",
                    )
                )
                continue
            if topic == usage_topic:
                # Decoded and validated in one pass (msgspec), else `loads` and the listing.
                try:
                    batch.usage.append(prepare_json(value, now=now))
                except EventError as exc:
                    batch.invalid.append((record, str(exc)))
                except ValueError as exc:  # UnicodeDecodeError is one too
                    batch.invalid.append((record, _unreadable(value, exc)))
                continue
            try:
                obj = loads(value)
            except ValueError as exc:
                batch.invalid.append((record, _unreadable(value, exc)))
                continue
            try:
                if topic == gpu_topic:
                    batch.gpu.append(parse_gpu_event(obj, now=now, max_future=self._max_future))
                else:
                    batch.invalid.append((record, f"topic: {topic} is not read by the bridge"))
            except EventError as exc:
                batch.invalid.append((record, str(exc)))
        return batch

    def _remember(self, record: InboundRecord, batch: Batch) -> None:
        try:
            obj = loads(record.value or b"")
            source, event_id = obj["source"], obj["id"]
        except (TypeError, ValueError, KeyError, UnicodeDecodeError):
            return
        if isinstance(source, str) and isinstance(event_id, str):
            batch.remembered.append((record.topic, (source, event_id)))

    def apply(self, batch: Batch) -> dict[tuple[str, str], int]:
        """Count a sorted batch; returns the `(topic, result)` message counts it produced."""
        counts: dict[tuple[str, str], int] = {}
        for topic, identity in batch.remembered:
            (self.usage.dedupe if topic == self.usage_topic else self.gpu_dedupe).add(identity)
        if batch.usage:
            counted = self.usage.apply_all(batch.usage, "kafka")
            counts[(self.usage_topic, "applied")] = len(counted)
            counts[(self.usage_topic, "duplicate")] = len(batch.usage) - len(counted)
        if batch.gpu:
            applied = 0
            add, apply = self.gpu_dedupe.add, self.gpu.apply
            for envelope, sample in batch.gpu:
                if add(envelope.identity):
                    apply(sample, envelope.time.timestamp())
                    applied += 1
            counts[(self.gpu_topic, "applied")] = applied
            counts[(self.gpu_topic, "duplicate")] = len(batch.gpu) - applied
        invalid_usage = 0
        for record, _reason in batch.invalid:
            key = (record.topic, "invalid")
            counts[key] = counts.get(key, 0) + 1
            invalid_usage += record.topic == self.usage_topic
        if invalid_usage:
            self.usage.reject("kafka", invalid_usage)
        for topic, n in batch.skipped.items():
            counts[(topic, "skipped")] = n
        return counts

    def dead_letters(
        self, invalid: Sequence[tuple[InboundRecord, str]], max_bytes: int
    ) -> list[OutboundMessage]:
        """The DLQ message of each invalid one: original key, value and headers, plus the reason and
        where it came from. A value over `max_bytes` is cut (the header says its size); the
        original stays in its topic until retention."""
        out = []
        for record, reason in invalid:
            value = record.value or b""
            headers = [
                (name, data)
                for name, data in record.headers or ()
                if name not in (REASON_HEADER, ORIGIN_HEADER)
            ]
            headers.append((REASON_HEADER, reason.encode()[:MAX_REASON_BYTES]))
            headers.append(
                (ORIGIN_HEADER, f"{record.topic}/{record.partition}/{record.offset}".encode())
            )
            if len(value) > max_bytes:
                headers.append((TRUNCATED_HEADER, str(len(value)).encode()))
                value = value[:max_bytes]
            dlq = self.dlq_topics.get(record.topic, f"{record.topic}.dlq")
            out.append(OutboundMessage(dlq, record.key, value, tuple(headers)))
        return out
