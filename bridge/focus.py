"""Reads the usage and GPU topics over a time range and counts their events into a FOCUS accumulator,
validated, priced and deduplicated the way the bridge counts them.

Each event goes through the bridge's own code: `exporters.events.loads`, `UsageIngest.prepare`
(validation and pricing, tiers and cache prices included), `parse_gpu_event`, and a `DedupeWindow`
per topic on `(source, id)`. Unlike the bridge, nothing is skipped for the `aifinops-counted-in`
header: an export wants every event once, whoever counted it in Prometheus. An event belongs to the
range by its own `time` (when the money was spent), not by when Kafka stored it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aifinops.exporters.config import Config
from aifinops.exporters.events import EventError, Problem, loads, parse_gpu_event
from aifinops.exporters.focus import FocusAccumulator
from aifinops.exporters.llm import DedupeWindow, UsageIngest

from .transport import read_since

# Messages stored this long before `start` are read too: an event stamped inside the range may
# reach Kafka a little before its own time says (clock skew between producer and broker).
DEFAULT_LOOKBACK = timedelta(minutes=15)
_MAX_REASONS = 10


@dataclass
class TopicStats:
    """What became of one topic's messages."""

    read: int = 0
    counted: int = 0
    duplicate: int = 0
    outside: int = 0
    invalid: int = 0
    # The first few invalid messages as `partition/offset: reason`.
    reasons: list[str] = field(default_factory=list)


@dataclass
class ExportStats:
    """Per topic name."""

    topics: dict[str, TopicStats] = field(default_factory=dict)


Reader = Callable[[str, int], Iterable[Any]]


def collect(
    config: Config,
    start: datetime,
    end: datetime,
    accumulator: FocusAccumulator,
    *,
    reader: Reader | None = None,
    lookback: timedelta = DEFAULT_LOOKBACK,
    idle_timeout: float = 30.0,
) -> ExportStats:
    """Count every valid, first-seen event of `config.kafka.topics.usage` and `.gpu` whose time
    is in `[start, end)` into `accumulator`. `reader(topic, since_ms)` yields records (default:
    `transport.read_since`). Raises `transport.TransportError` when Kafka fails."""
    if reader is None:

        def reader(topic: str, since_ms: int) -> Iterable[Any]:
            return read_since(config.kafka, topic, since_ms, idle_timeout=idle_timeout)

    since_ms = int((start - lookback).timestamp() * 1000)
    ingest = UsageIngest.from_config(config.llm, sources=("kafka",))
    usage_topic = config.kafka.topics.usage.name
    gpu_topic = config.kafka.topics.gpu.name
    stats = ExportStats({usage_topic: TopicStats(), gpu_topic: TopicStats()})
    window, max_entries = config.llm.dedupe_window_seconds, config.llm.dedupe_max_entries
    now = datetime.now(UTC)
    for topic in (usage_topic, gpu_topic):
        topic_stats = stats.topics[topic]
        dedupe = DedupeWindow(window, max_entries)
        for record in reader(topic, since_ms):
            topic_stats.read += 1
            try:
                if record.value is None:
                    raise EventError([Problem("value", "empty (a tombstone)")])
                try:
                    obj = loads(record.value)
                except (UnicodeDecodeError, ValueError) as exc:
                    raise EventError([Problem("value", f"not valid JSON: {exc}")]) from exc
                if topic == usage_topic:
                    priced = ingest.prepare(obj, now=now)
                    identity, time = priced.event.identity, priced.event.time
                else:
                    gpu = parse_gpu_event(obj, now=now, max_future=ingest.max_future)
                    identity, time = gpu.envelope.identity, gpu.envelope.time
            except EventError as exc:
                topic_stats.invalid += 1
                if len(topic_stats.reasons) < _MAX_REASONS:
                    topic_stats.reasons.append(f"{record.partition}/{record.offset}: {exc}")
                continue
            if not dedupe.add(identity):
                topic_stats.duplicate += 1
                continue
            if not start <= time < end:
                topic_stats.outside += 1
                continue
            if topic == usage_topic:
                accumulator.add_usage(priced)
            else:
                accumulator.add_gpu(gpu)
            topic_stats.counted += 1
    return stats
