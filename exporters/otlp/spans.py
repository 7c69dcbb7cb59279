"""Turns OTLP GenAI spans into `io.aifinops.llm.usage.v1` CloudEvents: the attribute mapping and the cached-token table.

Each span that carries GenAI usage (`gen_ai.usage.input_tokens` or `gen_ai.usage.output_tokens`,
or the older `prompt_tokens`/`completion_tokens`) becomes one decoded CloudEvent, which the caller
validates, prices, dedupes and counts through `UsageIngest` like any event of `POST /v1/events`.
Everything else is ignored (and counted by the caller). Nothing is validated here: a wrong value
travels into the event as it is, and the one definition of a valid event words the problem;
`SpanEvent.fields` maps the event's fields back to the span attributes they came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from ..events.envelope import MAX_ID_LENGTH, SPECVERSION, USAGE_TYPE

# Attribute names, newest convention first; the older names are what instrumentations written
# before the GenAI conventions settled still send.
PROVIDER = ("gen_ai.provider.name", "gen_ai.system")
MODEL = ("gen_ai.response.model", "gen_ai.request.model")
RESPONSE_ID = "gen_ai.response.id"
TOKENS: Mapping[str, tuple[str, ...]] = {
    "input_tokens": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
    "output_tokens": ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"),
    "cache_read_tokens": (
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_read_input_tokens",
    ),
    "cache_write_tokens": (
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.cache_creation_input_tokens",
    ),
    "reasoning_tokens": ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens"),
}
# Event data field -> the attributes it is read from, the first one set winning.
_MAPPED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("provider", PROVIDER),
    ("model", MODEL),
    *TOKENS.items(),
)
USAGE_ATTRIBUTES = frozenset((*TOKENS["input_tokens"], *TOKENS["output_tokens"]))
_USAGE = tuple(USAGE_ATTRIBUTES)
NAMESPACE = "k8s.namespace.name"
SDK_NAME = "telemetry.sdk.name"
STATUS_CODE_ERROR = 2

# The GenAI conventions say `gen_ai.usage.input_tokens` counts ALL input tokens, cached ones
# included, as OpenAI's `prompt_tokens` do. Instrumentations that copy Anthropic's (or Bedrock's)
# own `input_tokens`, which exclude cache reads and writes, break that rule: for them the cache
# tokens are added back. Keys: an instrumentation scope name prefix or a `telemetry.sdk.name`;
# values: the providers (OpenTelemetry names) whose spans they report that way. docs/otlp.md
# says which instrumentations were checked and how.
INPUT_EXCLUDES_CACHE: Mapping[str, frozenset[str]] = {
    # OpenLIT's Anthropic instrumentation sets input_tokens from the response's input_tokens.
    "openlit": frozenset(("anthropic",)),
}
ANY_PROVIDER = frozenset(("*",))

SOURCE_RESPONSE = "otlp/gen_ai.response.id"
SOURCE_SPAN = "otlp/span"


@dataclass(frozen=True)
class SpanSettings:
    """Where team and app come from (`tokens.otlp`), and the namespace-to-team mapping."""

    team_attributes: tuple[str, ...] = ("aifinops.team", "team")
    app_attributes: tuple[str, ...] = ("service.name",)
    namespace_teams: Mapping[str, str] = field(default_factory=dict)
    # Scope names or SDK names whose input tokens exclude cached ones for every provider.
    input_excludes_cache: tuple[str, ...] = ()

    def wanted(self) -> frozenset[str]:
        """Every span attribute name the mapping reads."""
        return frozenset(
            (
                *PROVIDER,
                *MODEL,
                RESPONSE_ID,
                *(name for names in TOKENS.values() for name in names),
                *self.team_attributes,
                *self.app_attributes,
                NAMESPACE,
            )
        )


class SpanEvent(NamedTuple):
    """One span's usage event, and what `attribute_of` needs to name a problem's attribute."""

    event: dict[str, Any]
    span: Any
    attrs: Mapping[str, Any]
    resource: Mapping[str, Any]

    @property
    def ref(self) -> str:
        """`trace <hex>/span <hex>`: how a problem names the span."""
        return f"trace {self.span.trace_id.hex() or '-'}/span {self.span.span_id.hex() or '-'}"


class SpanBatch(NamedTuple):
    """The usage events of a request, how many spans had no GenAI usage, and the resources
    (`resource_key`) that sent usage."""

    events: list[SpanEvent]
    ignored: int
    resources: set[tuple[str, str, str]]


def any_value(value: AnyValue) -> Any:
    """The Python value of an OTLP `AnyValue` (arrays and maps as lists and dicts)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def attributes(pairs: Iterable[KeyValue], wanted: frozenset[str] | None = None) -> dict[str, Any]:
    """The attributes whose names are `wanted` (all when None) as a dict."""
    if wanted is None:
        return {kv.key: any_value(kv.value) for kv in pairs}
    out: dict[str, Any] = {}
    scalars = _SCALARS
    for kv in pairs:
        key = kv.key
        if key in wanted:
            value = kv.value
            kind = value.WhichOneof("value")
            out[key] = getattr(value, kind) if kind in scalars else any_value(value)
    return out


_SCALARS = frozenset(("string_value", "int_value", "double_value", "bool_value", "bytes_value"))


def resource_key(resource: Mapping[str, Any]) -> tuple[str, str, str]:
    """What identifies one instrumented process: service namespace, name and instance id."""
    return (
        str(resource.get("service.namespace", "")),
        str(resource.get("service.name", "")),
        str(resource.get("service.instance.id", "")),
    )


def spans_to_events(request: ExportTraceServiceRequest, settings: SpanSettings) -> SpanBatch:
    """One usage event per span with GenAI usage, in request order."""
    wanted = settings.wanted()
    events: list[SpanEvent] = []
    ignored = 0
    resources: set[tuple[str, str, str]] = set()
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        sdk = str(resource.get(SDK_NAME, ""))
        sent = False
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            excludes = _excludes_cache(settings, scope, sdk)
            for span in scope_spans.spans:
                attrs = attributes(span.attributes, wanted)
                if not any(name in attrs for name in _USAGE):
                    ignored += 1
                    continue
                sent = True
                events.append(_event(span, attrs, resource, excludes, settings))
        if sent:
            resources.add(resource_key(resource))
    return SpanBatch(events, ignored, resources)


def _excludes_cache(settings: SpanSettings, scope: str, sdk: str) -> frozenset[str]:
    for name in settings.input_excludes_cache:
        if scope.startswith(name) or sdk == name:
            return ANY_PROVIDER
    for name, providers in INPUT_EXCLUDES_CACHE.items():
        if scope.startswith(name) or sdk == name:
            return providers
    return frozenset()


def _first(attrs: Mapping[str, Any], names: Iterable[str]) -> tuple[str, Any] | None:
    for name in names:
        if name in attrs:
            return name, attrs[name]
    return None


def _event(
    span: Any,
    attrs: Mapping[str, Any],
    resource: Mapping[str, Any],
    excludes: frozenset[str],
    settings: SpanSettings,
) -> SpanEvent:
    data: dict[str, Any] = {}
    for key, names in _MAPPED:
        for name in names:
            if name in attrs:
                data[key] = attrs[name]
                break
    if excludes:
        provider = data.get("provider")
        if isinstance(provider, str) and (
            excludes is ANY_PROVIDER or provider.strip().lower() in excludes
        ):
            cached = [data.get(k, 0) for k in ("cache_read_tokens", "cache_write_tokens")]
            if type(data.get("input_tokens")) is int and all(type(c) is int for c in cached):
                data["input_tokens"] += sum(cached)
    team = _attribution(attrs, resource, settings.team_attributes)
    if team is None and settings.namespace_teams:
        namespace = attrs.get(NAMESPACE, resource.get(NAMESPACE))
        if isinstance(namespace, str) and namespace in settings.namespace_teams:
            team = (NAMESPACE, settings.namespace_teams[namespace])
    if team is not None:
        data["team"] = team[1]
    app = _attribution(attrs, resource, settings.app_attributes)
    if app is not None:
        data["app"] = app[1]
    if span.status.code == STATUS_CODE_ERROR:
        data["status"] = "error"
    response_id = attrs.get(RESPONSE_ID)
    if type(response_id) is str and 0 < len(response_id) <= MAX_ID_LENGTH:
        source, event_id = SOURCE_RESPONSE, response_id
    else:
        trace_id, span_id = span.trace_id, span.span_id
        # An id without both halves would make distinct spans one: the envelope refuses "".
        event_id = f"{trace_id.hex()}/{span_id.hex()}" if trace_id and span_id else ""
        source = SOURCE_SPAN
    event: dict[str, Any] = {
        "specversion": SPECVERSION,
        "id": event_id,
        "source": source,
        "type": USAGE_TYPE,
        "data": data,
    }
    nanos = span.end_time_unix_nano or span.start_time_unix_nano
    if nanos:
        event["time"] = rfc3339(nanos)
    return SpanEvent(event, span, attrs, resource)


def attribute_of(field: str, span_event: SpanEvent, settings: SpanSettings) -> str:
    """The span attribute an event field (`data.input_tokens`) was read from, for messages."""
    attrs = span_event.attrs
    key = field.removeprefix("data.")
    for mapped, names in _MAPPED:
        if mapped == key:
            return next((name for name in names if name in attrs), names[0])
    if key in ("team", "app"):
        names = settings.team_attributes if key == "team" else settings.app_attributes
        found = _attribution(attrs, span_event.resource, names)
        return found[0] if found is not None else NAMESPACE if key == "team" else names[0]
    if field == "id":
        return RESPONSE_ID if span_event.event["source"] == SOURCE_RESPONSE else "traceId/spanId"
    if field == "time":
        return "endTimeUnixNano"
    return field


def _attribution(
    attrs: Mapping[str, Any], resource: Mapping[str, Any], names: tuple[str, ...]
) -> tuple[str, Any] | None:
    """The first of `names` set on the span, else on the resource."""
    for scope in (attrs, resource):
        found = _first(scope, names)
        if found is not None:
            return found
    return None


def rfc3339(nanos: int) -> str:
    """Unix nanoseconds as an RFC 3339 UTC timestamp (microseconds)."""
    seconds, rest = divmod(nanos, 1_000_000_000)
    global _last_second
    if seconds != _last_second[0]:
        try:
            moment = datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return f"unix nanoseconds {nanos} out of range"
        # The spans of a request mostly end within the same second: format it once.
        _last_second = (seconds, f"{moment:%Y-%m-%dT%H:%M:%S}")
    return f"{_last_second[1]}.{rest // 1000:06d}Z"


_last_second: tuple[int, str] = (-1, "")
