"""`POST /v1/traces` and `POST /v1/metrics`: OTLP/HTTP decoding (protobuf, JSON, gzip), the answers, and the hand-off to `/v1/events`' pipeline.

Every usage event goes through `EventsAPI.commit` (credential's team, Kafka spool reservation,
dedupe, counting, publishing), the same code as `POST /v1/events`. Answers follow the OTLP/HTTP
specification: 200 with `partial_success` naming rejected spans; 400 for a body that does not
decode; 401, 413 and 415 like `/v1/events`; 429 and 503 with `Retry-After`, which the Collector
retries. Error bodies are a `google.rpc.Status` in the request's encoding.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from ..config import OTLPConfig
from ..events.codec import EventError, Problem
from ..llm.ingest import PricedEvent, UsageIngest
from ..runtime.http import Request, Response, Route
from ..tokens.api import RETRY_AFTER_SECONDS, Credential, EventsAPI
from .metrics import MetricStreams, metrics_to_events
from .spans import SpanEvent, SpanSettings, attribute_of, spans_to_events

log = logging.getLogger(__name__)

TRACES_PATH = "/v1/traces"
METRICS_PATH = "/v1/metrics"
TRACES_SOURCE = "otlp_traces"
METRICS_SOURCE = "otlp_metrics"
SOURCES = (TRACES_SOURCE, METRICS_SOURCE)
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# How many problems a partial_success message lists before "and N more".
MAX_LISTED = 5
_ID_KEYS = frozenset(("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"))
# google.rpc.Code values for the Status body of an error answer.
_RPC_CODES = {400: 3, 401: 16, 413: 8, 415: 3, 429: 8, 503: 14}
_CACHE_HINT = (
    " (if this instrumentation reports input tokens without cached ones, add its scope name "
    "to tokens.otlp.input_excludes_cache)"
)

M = TypeVar("M", bound=Message)


class SpanResources:
    """Resources (service namespace, name, instance) that sent GenAI spans recently: their
    metrics are not counted again. Bounded; entries expire after `ttl` seconds."""

    def __init__(self, ttl: float, max_entries: int) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._seen: OrderedDict[tuple[str, str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, keys: Iterable[tuple[str, str, str]]) -> None:
        """Note that these resources sent GenAI spans now."""
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._seen.pop(key, None)
                self._seen[key] = now
            while len(self._seen) > self.max_entries:
                self._seen.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            seen = self._seen.get(key)  # type: ignore[call-overload]
        return seen is not None and time.monotonic() - seen < self.ttl


class OTLPAPI:
    """The OTLP/HTTP routes of the token exporter; `routes()` gives them to the HTTP server."""

    def __init__(
        self,
        events: EventsAPI,
        ingest: UsageIngest,
        config: OTLPConfig,
        namespace_teams: Mapping[str, str] | None = None,
    ) -> None:
        self._events = events
        self._ingest = ingest
        self._config = config
        self._settings = SpanSettings(
            team_attributes=config.team_attributes,
            app_attributes=config.app_attributes,
            namespace_teams=dict(namespace_teams or {}) if config.namespace_teams else {},
            input_excludes_cache=config.input_excludes_cache,
        )
        self.streams = MetricStreams(config.max_streams)
        self.span_resources = SpanResources(config.span_resource_ttl_seconds, config.max_streams)

    def routes(self) -> list[Route]:
        """The enabled routes; they check bearer tokens before reading the body, like
        `/v1/events`."""
        authorize = self._events.route().authorize
        limit = self._config.max_body_bytes
        routes = []
        if self._config.traces:
            routes.append(Route("POST", TRACES_PATH, self.handle_traces, limit, authorize))
        if self._config.metrics:
            routes.append(Route("POST", METRICS_PATH, self.handle_metrics, limit, authorize))
        return routes

    def handle_traces(self, request: Request) -> Response:
        """Count the GenAI usage of the spans of an `ExportTraceServiceRequest`."""
        credential = self._events.credential(request)
        decoded = self._decode(request, ExportTraceServiceRequest(), TRACES_SOURCE)
        if isinstance(decoded, Response):
            return decoded
        message, as_json = decoded
        batch = spans_to_events(message, self._settings)
        refusal = self._throttle(request, credential, len(batch.events), as_json)
        if refusal is not None:
            return refusal
        now = datetime.now(UTC)
        prepared: list[PricedEvent] = []
        problems: list[str] = []
        for span_event in batch.events:
            try:
                prepared.append(self._ingest.prepare(span_event.event, now=now))
            except EventError as exc:
                problems.append(_describe(span_event, exc.problems, self._settings))
        if prepared and self._events.commit(prepared, credential, TRACES_SOURCE) is None:
            return _error(503, _SPOOL_FULL, as_json, {"Retry-After": str(RETRY_AFTER_SECONDS)})
        self._ingest.reject(TRACES_SOURCE, len(problems))
        self._ingest.aggregator.count_ingest(TRACES_SOURCE, "ignored", batch.ignored)
        if batch.resources:
            self.span_resources.add(batch.resources)
        response = ExportTraceServiceResponse()
        if problems:
            response.partial_success.rejected_spans = len(problems)
            response.partial_success.error_message = _summary(
                problems, len(batch.events), "GenAI spans"
            )
        return _encode(response, as_json)

    def handle_metrics(self, request: Request) -> Response:
        """Count the token increases of the GenAI metrics of an `ExportMetricsServiceRequest`."""
        credential = self._events.credential(request)
        decoded = self._decode(request, ExportMetricsServiceRequest(), METRICS_SOURCE)
        if isinstance(decoded, Response):
            return decoded
        message, as_json = decoded
        points = sum(
            len(getattr(metric, metric.WhichOneof("data") or "gauge").data_points)
            for resource_metrics in message.resource_metrics
            for scope_metrics in resource_metrics.scope_metrics
            for metric in scope_metrics.metrics
        )
        refusal = self._throttle(request, credential, points, as_json)
        if refusal is not None:
            return refusal
        batch = metrics_to_events(message, self.streams, self._settings, self.span_resources)
        now = datetime.now(UTC)
        prepared: list[PricedEvent] = []
        problems: list[str] = []
        for event in batch.events:
            try:
                prepared.append(self._ingest.prepare(event, now=now))
            except EventError as exc:
                data = event["data"]
                ref = f"{data['provider'] or '-'}/{data['model'] or '-'}"
                problems.append(
                    f"{ref}: " + "; ".join(f"{p.field}: {p.reason}" for p in exc.problems)
                )
        if prepared and self._events.commit(prepared, credential, METRICS_SOURCE) is None:
            # The streams stay where they were: the retry finds the same increases.
            return _error(503, _SPOOL_FULL, as_json, {"Retry-After": str(RETRY_AFTER_SECONDS)})
        self.streams.remember(batch.pending)
        self._ingest.reject(METRICS_SOURCE, len(problems))
        self._ingest.aggregator.count_ingest(
            METRICS_SOURCE, "ignored", batch.ignored + batch.from_span_resources
        )
        response = ExportMetricsServiceResponse()
        if problems:
            response.partial_success.rejected_data_points = len(problems)
            response.partial_success.error_message = _summary(
                problems, len(batch.events), "metric usage groups"
            )
        return _encode(response, as_json)

    def _throttle(
        self, request: Request, credential: Credential | None, n: int, as_json: bool
    ) -> Response | None:
        if n == 0:
            return None
        refusal = self._events.throttle(request, credential, n)
        if refusal is None:
            return None
        return _error(
            429,
            "rate limit of this credential exceeded (tokens.rate_limit)",
            as_json,
            refusal.headers,
        )

    def _decode(self, request: Request, message: M, source: str) -> tuple[M, bool] | Response:
        """The request's message and whether it came as JSON, or the error answer."""
        raw_type = request.headers.get("content-type", "")
        media_type = raw_type.split(";")[0].strip().lower()
        if media_type not in (PROTOBUF, JSON):
            return Response.json(
                415,
                {"error": f"unsupported content type {raw_type!r}", "supported": [PROTOBUF, JSON]},
            )
        as_json = media_type == JSON
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        body = request.body
        if encoding == "gzip":
            inflated = _gunzip(body, self._config.max_body_bytes)
            if isinstance(inflated, str):
                self._ingest.reject(source)
                return _error(400, inflated, as_json)
            if inflated is None:
                return _error(
                    413,
                    f"decompressed body exceeds the limit of {self._config.max_body_bytes} bytes "
                    "(tokens.otlp.max_body_bytes)",
                    as_json,
                )
            body = inflated
        elif encoding not in ("identity", ""):
            return Response.json(
                415, {"error": f"unsupported content encoding {encoding!r}", "supported": ["gzip"]}
            )
        try:
            if as_json:
                json_format.ParseDict(
                    _hex_ids(orjson.loads(body)), message, ignore_unknown_fields=True
                )
            else:
                message.ParseFromString(body)
        except (DecodeError, json_format.ParseError, orjson.JSONDecodeError, RecursionError) as exc:
            self._ingest.reject(source)
            kind = "OTLP JSON" if as_json else "OTLP protobuf"
            return _error(
                400, f"body is not a valid {kind} {type(message).__name__}: {exc}", as_json
            )
        except (ValueError, TypeError) as exc:
            self._ingest.reject(source)
            return _error(
                400, f"body is not a valid OTLP JSON {type(message).__name__}: {exc}", as_json
            )
        return message, as_json


_SPOOL_FULL = "the Kafka spool has no room for these events; retry later"


def _gunzip(body: bytes, limit: int) -> bytes | str | None:
    """The inflated body, None when it exceeds `limit`, or the reason it is not gzip."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        return f"body is not valid gzip (Content-Encoding: gzip): {exc}"
    if len(out) > limit:
        return None
    if not inflater.eof:
        return "body is not valid gzip (Content-Encoding: gzip): truncated"
    return out


def _hex_ids(value: Any) -> Any:
    """OTLP JSON writes trace and span ids as hex; protobuf's JSON mapping reads bytes as
    base64: convert them in place before parsing."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in _ID_KEYS and isinstance(item, str):
                try:
                    value[key] = base64.b64encode(bytes.fromhex(item)).decode()
                except ValueError:
                    raise ValueError(f"{key} {item[:80]!r} is not hex") from None
            elif isinstance(item, (dict, list)):
                _hex_ids(item)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)):
                _hex_ids(item)
    return value


def _describe(span_event: SpanEvent, problems: list[Problem], settings: SpanSettings) -> str:
    parts = []
    for problem in problems:
        name = attribute_of(problem.field, span_event, settings)
        hint = _CACHE_HINT if problem.field == "data.cache_read_tokens" else ""
        parts.append(f"{name}: {problem.reason}{hint}")
    return f"{span_event.ref}: " + "; ".join(parts)


def _summary(problems: list[str], total: int, what: str) -> str:
    listed = "; ".join(p[:500] for p in problems[:MAX_LISTED])
    more = f"; and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    return f"{len(problems)} of {total} {what} rejected: {listed}{more}"


def _encode(message: Message, as_json: bool) -> Response:
    if as_json:
        return Response(200, orjson.dumps(json_format.MessageToDict(message)), JSON)
    return Response(200, message.SerializeToString(), PROTOBUF)


def _error(
    status: int, message: str, as_json: bool, headers: Mapping[str, str] | None = None
) -> Response:
    """An error answer whose body is a `google.rpc.Status` in the request's encoding."""
    code = _RPC_CODES.get(status, 2)
    if as_json:
        return Response(
            status, orjson.dumps({"code": code, "message": message}), JSON, dict(headers or {})
        )
    text = message.encode()
    # Status{code = 1 (varint), message = 2 (bytes)}, written by hand: no dependency for two fields.
    body = b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text
    return Response(status, body, PROTOBUF, dict(headers or {}))


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
