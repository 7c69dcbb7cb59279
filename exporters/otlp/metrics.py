"""Turns OTLP GenAI token metrics into usage events: cumulative-to-delta per stream, resets, base-rate chunks.

Metrics carry no per-call detail, so their usage is approximate by nature: one event per
(provider, model, team, app) and request holds the token increases of its streams, split into
chunks of at most `BASE_RATE_CHUNK` input tokens so that no long-context tier applies (the
lowest tier start in the catalogue is 32,000 input tokens): every token is priced at the base
rate. `aifinops_llm_requests_total` counts those chunks, not calls.

Read: `gen_ai.client.token.usage` (histogram or sum, `gen_ai.token.type` = `input` or `output`)
and the sums named `gen_ai.client.inference.usage.<kind>` (`TYPE_BY_SUFFIX`).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, NamedTuple

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from ..events.envelope import SPECVERSION, USAGE_TYPE
from .spans import (
    MODEL,
    NAMESPACE,
    PROVIDER,
    SpanSettings,
    attributes,
    resource_key,
    rfc3339,
)

TOKEN_USAGE = "gen_ai.client.token.usage"
TOKEN_TYPE = "gen_ai.token.type"
INFERENCE_PREFIX = "gen_ai.client.inference.usage."
TYPE_BY_TOKEN_TYPE: Mapping[str, str] = {"input": "input_tokens", "output": "output_tokens"}
TYPE_BY_SUFFIX: Mapping[str, str] = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "cache_read.input_tokens": "cache_read_tokens",
    "cache_creation.input_tokens": "cache_write_tokens",
    "reasoning.output_tokens": "reasoning_tokens",
}
BASE_RATE_CHUNK = 32_000
SOURCE = "otlp/metrics"
TEMPORALITY_DELTA = 1
TEMPORALITY_CUMULATIVE = 2


# Stream -> (start time, cumulative value) of its latest point in a request.
Pending = dict[tuple[Any, ...], tuple[int, float]]


class MetricBatch(NamedTuple):
    """The usage events of a metrics request and how many data points were not usage."""

    events: list[dict[str, Any]]
    ignored: int
    # Data points skipped because their resource also sends GenAI spans.
    from_span_resources: int
    # The cumulative points to `MetricStreams.remember` once the events are counted.
    pending: Pending


class MetricStreams:
    """Last cumulative value per stream, to turn cumulative points into increases.

    A stream is (resource, scope, metric, attributes). Bounded: past `max_streams` the least
    recently updated is forgotten (a forgotten stream seen again starts from its next point).
    A point whose start time moved, or whose value fell, starts a new series (a reset): all of
    its value is the increase. The first point of a stream counts whole only when the stream
    started after this process did; otherwise it only sets the baseline (its earlier usage was
    counted before a restart, or predates aifinops)."""

    def __init__(self, max_streams: int = 10_000, started_ns: int | None = None) -> None:
        self.max_streams = max_streams
        self.started_ns = time.time_ns() if started_ns is None else started_ns
        self._last: OrderedDict[tuple[Any, ...], tuple[int, float]] = OrderedDict()
        self._lock = threading.Lock()
        self.evicted = 0

    def increase(
        self, stream: tuple[Any, ...], start_ns: int, value: float, pending: Pending
    ) -> float:
        """The increase of a cumulative stream since its last point. The new point goes to
        `pending`, which `remember` stores once the request's usage is counted: a request
        refused for a retry (a full spool) leaves the streams as they were."""
        last = pending.get(stream)
        if last is None:
            with self._lock:
                last = self._last.get(stream)
        pending[stream] = (start_ns, value)
        if last is None:
            return value if start_ns and start_ns >= self.started_ns else 0.0
        last_start, last_value = last
        if start_ns != last_start or value < last_value:
            return value
        return value - last_value

    def remember(self, pending: Pending) -> None:
        """Store the points of a request whose usage was counted."""
        with self._lock:
            for stream, point in pending.items():
                self._last.pop(stream, None)
                self._last[stream] = point
            while len(self._last) > self.max_streams:
                self._last.popitem(last=False)
                self.evicted += 1

    def __len__(self) -> int:
        return len(self._last)


def metrics_to_events(
    request: ExportMetricsServiceRequest,
    streams: MetricStreams,
    settings: SpanSettings,
    span_resources: Any = (),
) -> MetricBatch:
    """Usage events for the token increases of a request; points of a resource in
    `span_resources` (it sends GenAI spans, which count already) are skipped."""
    # (provider, model, team, app) -> counts, latest point time, identities of its points
    groups: dict[tuple[str, str, str, str], tuple[dict[str, float], list[int], list[str]]] = {}
    ignored = skipped = 0
    pending: Pending = {}
    for resource_metrics in request.resource_metrics:
        resource = attributes(resource_metrics.resource.attributes)
        rkey = resource_key(resource)
        skip = rkey in span_resources
        team = _pick(resource, settings.team_attributes)
        if team is None and settings.namespace_teams:
            team = settings.namespace_teams.get(str(resource.get(NAMESPACE, "")))
        app = _pick(resource, settings.app_attributes) or ""
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_metrics.scope.name
            for metric in scope_metrics.metrics:
                points, temporality, fixed = _points(metric)
                if points is None:
                    continue
                for point in points:
                    attrs = attributes(point.attributes)
                    kind = fixed or TYPE_BY_TOKEN_TYPE.get(str(attrs.get(TOKEN_TYPE, "")))
                    value = _value(point)
                    if kind is None or value is None:
                        ignored += 1
                        continue
                    if skip:
                        skipped += 1
                        continue
                    stream = (rkey, scope, metric.name, tuple(sorted(map(str, attrs.items()))))
                    if temporality == TEMPORALITY_CUMULATIVE:
                        value = streams.increase(stream, point.start_time_unix_nano, value, pending)
                    if value <= 0:
                        continue
                    provider = _pick(attrs, PROVIDER) or ""
                    model = _pick(attrs, MODEL) or ""
                    key = (str(provider), str(model), str(team or ""), str(app))
                    counts, times, ids = groups.setdefault(key, ({}, [], []))
                    counts[kind] = counts.get(kind, 0) + value
                    times.append(point.time_unix_nano)
                    ids.append(f"{stream}|{point.start_time_unix_nano}|{point.time_unix_nano}")
    events: list[dict[str, Any]] = []
    for (provider, model, team, app), (counts, times, ids) in groups.items():
        # Stable over a retried request (its delta points have the same identities), so the
        # dedupe window counts it once; cumulative points retried have no increase left.
        digest = hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:32]
        data = {"provider": provider, "model": model, "team": team, "app": app}
        moment = max(times)
        for index, chunk in enumerate(_chunks({k: round(v) for k, v in counts.items()})):
            event: dict[str, Any] = {
                "specversion": SPECVERSION,
                "id": f"{digest}-{index}",
                "source": SOURCE,
                "type": USAGE_TYPE,
                "data": {**data, **chunk},
            }
            if moment:
                event["time"] = rfc3339(moment)
            events.append(event)
    return MetricBatch(events, ignored, skipped, pending)


def _pick(attrs: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        if name in attrs:
            return attrs[name]
    return None


def _points(metric: Any) -> tuple[Any, int, str | None]:
    """The data points of a usage metric, their temporality, and the token kind when the
    metric's name fixes it (None: from `gen_ai.token.type`); (None, 0, None) for other metrics."""
    name = metric.name
    fixed = None
    if name.startswith(INFERENCE_PREFIX):
        fixed = TYPE_BY_SUFFIX.get(name[len(INFERENCE_PREFIX) :])
        if fixed is None:
            return None, 0, None
    elif name != TOKEN_USAGE:
        return None, 0, None
    kind = metric.WhichOneof("data")
    if kind == "histogram":
        return metric.histogram.data_points, metric.histogram.aggregation_temporality, fixed
    if kind == "sum" and metric.sum.is_monotonic:
        return metric.sum.data_points, metric.sum.aggregation_temporality, fixed
    return None, 0, None


def _value(point: Any) -> float | None:
    if hasattr(point, "bucket_counts"):  # a histogram point: its sum is the tokens
        return point.sum if point.HasField("sum") and point.sum >= 0 else None
    kind = point.WhichOneof("value")
    if kind == "as_int":
        return float(point.as_int) if point.as_int >= 0 else None
    if kind == "as_double":
        return point.as_double if point.as_double >= 0 else None
    return None


def _chunks(counts: Mapping[str, int]) -> list[dict[str, int]]:
    """Counts split so that each chunk has at most `BASE_RATE_CHUNK` input tokens; cache tokens
    fill the chunks' input in order (they are part of it), so every chunk stays consistent."""
    total_in = counts.get("input_tokens", 0)
    cache_read = counts.get("cache_read_tokens", 0)
    cache_write = counts.get("cache_write_tokens", 0)
    # Cache tokens without the input they are part of: the metrics under-reported input.
    total_in = max(total_in, cache_read + cache_write)
    output = counts.get("output_tokens", 0)
    reasoning = min(counts.get("reasoning_tokens", 0), output)
    n = max(1, -(-total_in // BASE_RATE_CHUNK))
    chunks = []
    for i in range(n):
        inp = total_in * (i + 1) // n - total_in * i // n
        out = output * (i + 1) // n - output * i // n
        read = min(cache_read, inp)
        write = min(cache_write, inp - read)
        think = min(reasoning, out)
        cache_read -= read
        cache_write -= write
        reasoning -= think
        chunks.append(
            {
                "input_tokens": inp,
                "cache_read_tokens": read,
                "cache_write_tokens": write,
                "output_tokens": out,
                "reasoning_tokens": think,
            }
        )
    return chunks
