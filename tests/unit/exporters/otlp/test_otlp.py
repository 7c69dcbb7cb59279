"""OTLP pure logic: span attributes to usage events, cumulative metric streams, base-rate chunks, bounds."""

from __future__ import annotations

import base64
import gzip

import pytest

from aifinops.exporters.events import parse_usage_event
from aifinops.exporters.otlp.api import SpanResources, _gunzip, _hex_ids
from aifinops.exporters.otlp.metrics import BASE_RATE_CHUNK, MetricStreams, _chunks
from aifinops.exporters.otlp.spans import (
    SOURCE_RESPONSE,
    SOURCE_SPAN,
    SpanSettings,
    spans_to_events,
)
from support.otlp import span, traces

CALL = {
    "gen_ai.provider.name": "anthropic",
    "gen_ai.request.model": "claude-sonnet-4-5",
    "gen_ai.usage.input_tokens": 1_000,
    "gen_ai.usage.output_tokens": 50,
}


def one(request, settings: SpanSettings | None = None) -> dict:
    batch = spans_to_events(request, settings or SpanSettings())
    assert len(batch.events) == 1
    return batch.events[0].event


def test_newest_attribute_names_win_and_the_event_is_valid():
    event = one(
        traces(
            [
                span(
                    {
                        **CALL,
                        "gen_ai.system": "openai",
                        "gen_ai.response.model": "claude-sonnet-4-5-20250929",
                        "gen_ai.usage.prompt_tokens": 7,
                        "gen_ai.response.id": "msg_01",
                    },
                    error=True,
                )
            ]
        )
    )
    assert event["data"]["provider"] == "anthropic"
    assert event["data"]["model"] == "claude-sonnet-4-5-20250929"
    assert event["data"]["input_tokens"] == 1_000
    assert event["data"]["status"] == "error"
    assert (event["source"], event["id"]) == (SOURCE_RESPONSE, "msg_01")
    usage = parse_usage_event(event).usage
    assert usage.app == "chat"
    assert usage.counts == (1_000, 0, 0, 50, 0)


def test_without_a_response_id_the_span_is_the_identity():
    request = traces([span(CALL, span_id=bytes.fromhex("00f067aa0ba902b7"))])
    event = one(request)
    trace_id = request.resource_spans[0].scope_spans[0].spans[0].trace_id.hex()
    assert (event["source"], event["id"]) == (SOURCE_SPAN, f"{trace_id}/00f067aa0ba902b7")


def test_team_from_span_then_resource_then_namespace():
    settings = SpanSettings(namespace_teams={"pay-ns": "payments"})
    resource = {"service.name": "api", "team": "from-resource", "k8s.namespace.name": "pay-ns"}
    assert (
        one(traces([span({**CALL, "aifinops.team": "s"})], resource), settings)["data"]["team"]
        == "s"
    )
    assert one(traces([span(CALL)], resource), settings)["data"]["team"] == "from-resource"
    del resource["team"]
    assert one(traces([span(CALL)], resource), settings)["data"]["team"] == "payments"
    assert "team" not in one(traces([span(CALL)], resource))["data"]
    custom = SpanSettings(team_attributes=("org.unit",), app_attributes=("app.name",))
    event = one(traces([span({**CALL, "org.unit": "u1", "app.name": "bot"})], resource), custom)
    assert (event["data"]["team"], event["data"]["app"]) == ("u1", "bot")


def test_cached_tokens_added_back_only_for_instrumentations_that_leave_them_out():
    cached = {
        **CALL,
        "gen_ai.usage.cache_read.input_tokens": 3_000,
        "gen_ai.usage.cache_creation.input_tokens": 500,
    }
    # The conventions: input tokens include cached ones.
    assert one(traces([span(cached)]))["data"]["input_tokens"] == 1_000
    openlit = {"service.name": "x", "telemetry.sdk.name": "openlit"}
    assert one(traces([span(cached)], openlit))["data"]["input_tokens"] == 4_500
    # OpenLIT's OpenAI spans follow the convention (only its Anthropic ones do not).
    openai_call = {**cached, "gen_ai.provider.name": "openai"}
    assert one(traces([span(openai_call)], openlit))["data"]["input_tokens"] == 1_000
    settings = SpanSettings(input_excludes_cache=("my.wrapper",))
    assert (
        one(traces([span(cached)], scope="my.wrapper.llm"), settings)["data"]["input_tokens"]
        == 4_500
    )


def test_spans_without_usage_are_ignored_and_resources_that_sent_usage_noted():
    request = traces(
        [span(CALL), span({"http.route": "/"}), span({"gen_ai.operation.name": "chat"})],
        {"service.name": "svc", "service.instance.id": "i-1"},
    )
    batch = spans_to_events(request, SpanSettings())
    assert (len(batch.events), batch.ignored) == (1, 2)
    assert batch.resources == {("", "svc", "i-1")}


def test_cumulative_streams_turn_into_increases_with_resets():
    streams = MetricStreams(started_ns=1_000)

    def increase(stream: tuple, start: int, value: float) -> float:
        pending: dict = {}
        result = streams.increase(stream, start, value, pending)
        streams.remember(pending)
        return result

    # Began before this process: only a baseline (counted before a restart, or before us).
    assert increase(("a",), 500, 100.0) == 0
    assert increase(("a",), 500, 160.0) == 60
    assert increase(("a",), 500, 160.0) == 0
    assert increase(("a",), 500, 40.0) == 40  # the value fell: a reset
    assert increase(("a",), 2_000, 10.0) == 10  # a new start time: a reset
    # Began after this process started: all of it is new.
    assert increase(("b",), 1_500, 70.0) == 70


def test_a_request_not_counted_leaves_the_streams_as_they_were():
    streams = MetricStreams(started_ns=0)
    pending: dict = {}
    assert streams.increase(("a",), 1, 100.0, pending) == 100
    # Two points of one stream in one request: the second counts from the first.
    assert streams.increase(("a",), 1, 130.0, pending) == 30
    # Refused (a full spool): nothing remembered, so the retry finds the same increase.
    assert streams.increase(("a",), 1, 130.0, {}) == 130
    streams.remember(pending)
    assert streams.increase(("a",), 1, 130.0, {}) == 0


def test_streams_are_bounded():
    streams = MetricStreams(max_streams=3, started_ns=0)
    for i in range(5):
        streams.remember({(i,): (1, 1.0)})
    assert len(streams) == 3
    assert streams.evicted == 2


@pytest.mark.parametrize(
    "counts",
    [
        {"input_tokens": 250_000, "cache_read_tokens": 200_000, "output_tokens": 9_999},
        {"input_tokens": 64_001, "cache_read_tokens": 1, "cache_write_tokens": 64_000},
        {"input_tokens": 10, "output_tokens": 5, "reasoning_tokens": 5},
        {"input_tokens": 0, "output_tokens": 3},
    ],
)
def test_chunks_stay_below_every_tier_and_add_up(counts: dict[str, int]):
    chunks = _chunks(counts)
    for chunk in chunks:
        assert chunk["input_tokens"] <= BASE_RATE_CHUNK
        assert chunk["cache_read_tokens"] + chunk["cache_write_tokens"] <= chunk["input_tokens"]
        assert chunk["reasoning_tokens"] <= chunk["output_tokens"]
    for key, total in counts.items():
        assert sum(c[key] for c in chunks) == total


def test_json_ids_are_hex_and_converted_for_protobuf():
    obj = {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "0af7", "spanId": "b7"}]}]}]}
    _hex_ids(obj)
    got = obj["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert base64.b64decode(got["traceId"]) == bytes.fromhex("0af7")
    with pytest.raises(ValueError, match="spanId 'xyz' is not hex"):
        _hex_ids({"spanId": "xyz"})


def test_gzip_is_inflated_within_the_limit():
    assert _gunzip(gzip.compress(b"a" * 100), 100) == b"a" * 100
    assert _gunzip(gzip.compress(b"a" * 101), 100) is None
    assert "truncated" in _gunzip(gzip.compress(b"a" * 100)[:-8], 1000)
    assert "not valid gzip" in _gunzip(b"plain", 1000)


def test_span_resources_expire_and_are_bounded():
    resources = SpanResources(ttl=60, max_entries=2)
    resources.add([("", "a", ""), ("", "b", ""), ("", "c", "")])
    assert ("", "a", "") not in resources
    assert ("", "c", "") in resources
    expired = SpanResources(ttl=0, max_entries=2)
    expired.add([("", "a", "")])
    assert ("", "a", "") not in expired
