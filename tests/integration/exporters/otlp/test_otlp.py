"""OTLP/HTTP GenAI spans and metrics into the real token exporter: same tokens and dollars as `/v1/events`."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.parser import text_string_to_metric_families

from aifinops.exporters.events import USAGE_TYPE, make_event
from support.otlp import (
    JSON,
    PROTOBUF,
    metrics,
    metrics_response,
    post,
    span,
    to_json,
    trace_response,
    traces,
)
from support.token_daemon import TokenDaemon

pytestmark = pytest.mark.integration

TEAM_TOKEN = "otlp-team-token"


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def families(daemon: TokenDaemon, family: str, team: str) -> dict[tuple[str, ...], str]:
    """`family` samples of one team as {(provider, model, token_type): exposition value}."""
    out = {}
    for fam in text_string_to_metric_families(daemon.metrics_text()):
        for s in fam.samples:
            if s.name == family and s.labels.get("team") == team:
                key = (s.labels["provider"], s.labels["model"], s.labels.get("token_type", ""))
                out[key] = repr(s.value)
    return out


def ingest(daemon: TokenDaemon, source: str, outcome: str) -> float:
    return daemon.sample("aifinops_ingest_events_total", source=source, outcome=outcome) or 0.0


@pytest.fixture
def daemon(tmp_path: Path, request: pytest.FixtureRequest) -> TokenDaemon:
    config = """
gpu:
  namespace_teams: {payments-ns: payments}
tokens:
  max_body_bytes: 4096
  otlp:
    max_body_bytes: 65536
    metrics: true
"""
    instance = TokenDaemon(tmp_path, config)
    instance.start()
    request.addfinalizer(instance.stop)
    return instance


# (provider attribute set, the same usage as /v1/events token fields); every span of a mix.
CALLS = [
    (
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.input_tokens": 12_000,
            "gen_ai.usage.cache_read.input_tokens": 8_000,
            "gen_ai.usage.output_tokens": 700,
        },
        {
            "provider": "openai",
            "model": "gpt-4o-2024-08-06",
            "input_tokens": 12_000,
            "cache_read_tokens": 8_000,
            "output_tokens": 700,
        },
    ),
    (
        # Anthropic under the current conventions: input tokens include cache reads and writes.
        {
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.usage.input_tokens": 30_000,
            "gen_ai.usage.cache_read.input_tokens": 20_000,
            "gen_ai.usage.cache_creation.input_tokens": 6_000,
            "gen_ai.usage.output_tokens": 1_500,
        },
        {
            "provider": "anthropic",
            "model": "claude-sonnet-4-5",
            "input_tokens": 30_000,
            "cache_read_tokens": 20_000,
            "cache_write_tokens": 6_000,
            "output_tokens": 1_500,
        },
    ),
    (
        # Gemini above its 200k long-context tier: priced per call, so the tier applies.
        {
            "gen_ai.provider.name": "gcp.gemini",
            "gen_ai.request.model": "gemini-2.5-pro",
            "gen_ai.usage.input_tokens": 250_000,
            "gen_ai.usage.output_tokens": 4_000,
            "gen_ai.usage.reasoning.output_tokens": 3_000,
        },
        {
            "provider": "gcp.gemini",
            "model": "gemini-2.5-pro",
            "input_tokens": 250_000,
            "output_tokens": 4_000,
            "reasoning_tokens": 3_000,
        },
    ),
    (
        {
            "gen_ai.provider.name": "aws.bedrock",
            "gen_ai.request.model": "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "gen_ai.usage.input_tokens": 5_000,
            "gen_ai.usage.output_tokens": 400,
        },
        {
            "provider": "aws.bedrock",
            "model": "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "input_tokens": 5_000,
            "output_tokens": 400,
        },
    ),
    (
        # Older conventions (OpenLLMetry's Anthropic instrumentation): gen_ai.system with a
        # capital, prompt/completion tokens, and the cache attributes before they were renamed.
        {
            "gen_ai.system": "Anthropic",
            "gen_ai.request.model": "claude-3-5-haiku-20241022",
            "gen_ai.usage.prompt_tokens": 9_000,
            "gen_ai.usage.completion_tokens": 300,
            "gen_ai.usage.cache_read_input_tokens": 4_000,
            "gen_ai.usage.cache_creation_input_tokens": 1_000,
        },
        {
            "provider": "anthropic",
            "model": "claude-3-5-haiku-20241022",
            "input_tokens": 9_000,
            "cache_read_tokens": 4_000,
            "cache_write_tokens": 1_000,
            "output_tokens": 300,
        },
    ),
]


def test_spans_cost_what_the_same_usage_costs_through_v1_events(daemon: TokenDaemon):
    spans = [span({**attrs, "aifinops.team": "via-otlp"}) for attrs, _ in CALLS]
    # Half as protobuf, half as JSON (hex ids, camelCase), one of them gzipped.
    first = traces(spans[:3], {"service.name": "chat"})
    second = traces(spans[3:], {"service.name": "chat"})
    status, headers, body = post(daemon.port, "/v1/traces", first.SerializeToString(), PROTOBUF)
    assert status == 200, body
    assert headers["content-type"] == PROTOBUF
    assert not trace_response(body).HasField("partial_success")
    status, headers, body = post(daemon.port, "/v1/traces", to_json(second), JSON, gzipped=True)
    assert status == 200, body
    assert headers["content-type"] == JSON
    assert trace_response(body, JSON).partial_success.rejected_spans == 0

    # OpenLIT's Anthropic spans leave cached tokens out of input tokens: counted with them.
    openlit = traces(
        [
            span(
                {
                    "gen_ai.system": "anthropic",
                    "gen_ai.request.model": "claude-sonnet-4-5",
                    "gen_ai.usage.input_tokens": 4_000,
                    "gen_ai.usage.cache_read_input_tokens": 20_000,
                    "gen_ai.usage.cache_creation_input_tokens": 6_000,
                    "gen_ai.usage.output_tokens": 500,
                    "aifinops.team": "via-otlp-openlit",
                }
            )
        ],
        {"service.name": "chat", "telemetry.sdk.name": "openlit"},
        scope="openlit.otel.tracing",
    )
    assert post(daemon.port, "/v1/traces", openlit.SerializeToString())[0] == 200

    events = [
        make_event(USAGE_TYPE, "it", {**fields, "team": "via-events", "app": "chat"})
        for _, fields in CALLS
    ]
    openlit_event = {
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "input_tokens": 30_000,
        "cache_read_tokens": 20_000,
        "cache_write_tokens": 6_000,
        "output_tokens": 500,
        "team": "via-events-openlit",
        "app": "chat",
    }
    events.append(make_event(USAGE_TYPE, "it", openlit_event))
    assert daemon.post(events)[0] == 202

    for family in ("aifinops_llm_cost_usd_total", "aifinops_llm_tokens_total"):
        via_otlp = families(daemon, family, "via-otlp")
        assert len(via_otlp) >= 4 * len(CALLS) - 4  # every provider and token type counted
        assert via_otlp == families(daemon, family, "via-events")
        assert families(daemon, family, "via-otlp-openlit") == families(
            daemon, family, "via-events-openlit"
        )
    assert ingest(daemon, "otlp_traces", "accepted") == len(CALLS) + 1


def test_mixed_batch_answers_partial_success_and_counts_each_outcome(daemon: TokenDaemon):
    good = {
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.output_tokens": 10,
    }
    request = traces(
        [
            span(good),
            span({**good, "gen_ai.provider.name": ""}),  # invalid provider
            span({**good, "gen_ai.usage.cache_read.input_tokens": 500}),  # more cached than input
            span({"http.request.method": "GET", "url.path": "/health"}),  # not GenAI
            span({"db.system": "postgresql"}),  # not GenAI
            span({**good, "gen_ai.usage.output_tokens": "ten"}),  # not a number
        ]
    )
    status, _, body = post(daemon.port, "/v1/traces", request.SerializeToString())
    assert status == 200
    partial = trace_response(body).partial_success
    assert partial.rejected_spans == 3
    message = partial.error_message
    assert message.startswith("3 of 4 GenAI spans rejected")
    assert "gen_ai.provider.name:" in message
    assert "gen_ai.usage.cache_read.input_tokens:" in message
    assert "tokens.otlp.input_excludes_cache" in message
    assert "gen_ai.usage.output_tokens: must be a non-negative integer (got 'ten')" in message
    assert ingest(daemon, "otlp_traces", "accepted") == 1
    assert ingest(daemon, "otlp_traces", "rejected") == 3
    assert ingest(daemon, "otlp_traces", "ignored") == 2


def test_retried_request_and_a_call_in_two_spans_count_once(daemon: TokenDaemon):
    call = {
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 1_000,
        "gen_ai.usage.output_tokens": 100,
        "aifinops.team": "retry",
    }
    # One call reported by two instrumentations (a framework span and the SDK span under it)
    # with the provider's response id, and one span without any response id.
    request = traces(
        [
            span({**call, "gen_ai.response.id": "chatcmpl-retry-1"}),
            span({**call, "gen_ai.response.id": "chatcmpl-retry-1"}),
            span(call),
        ]
    )
    raw = request.SerializeToString()
    assert post(daemon.port, "/v1/traces", raw)[0] == 200
    cost = daemon.sample("aifinops_llm_cost_usd_total", team="retry")
    # The Collector retries (here gzipped, as otlphttp sends by default).
    assert post(daemon.port, "/v1/traces", raw, gzipped=True)[0] == 200
    assert daemon.sample("aifinops_llm_requests_total", team="retry") == 2
    assert daemon.sample("aifinops_llm_cost_usd_total", team="retry") == cost
    assert ingest(daemon, "otlp_traces", "accepted") == 2
    assert ingest(daemon, "otlp_traces", "duplicate") == 4


def test_undecodable_oversized_and_unsupported_bodies(daemon: TokenDaemon):
    status, headers, body = post(daemon.port, "/v1/traces", b"\xff\x00garbage\x13\x37")
    assert status == 400
    assert headers["content-type"] == PROTOBUF
    assert b"not a valid OTLP protobuf ExportTraceServiceRequest" in body
    status, _, body = post(daemon.port, "/v1/traces", b'{"resourceSpans": 7', JSON)
    assert status == 400
    assert b"not a valid OTLP JSON" in body
    status, _, body = post(
        daemon.port,
        "/v1/traces",
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}',
        JSON,
    )
    assert status == 400
    assert b"traceId 'zz' is not hex" in body
    status, _, body = post(
        daemon.port,
        "/v1/traces",
        b"\x1f\x8b not gzip",
        gzipped=False,
        headers={"Content-Encoding": "gzip"},
    )
    assert status == 400
    assert b"not valid gzip" in body
    assert post(daemon.port, "/v1/traces", b"{}", "text/plain")[0] == 415
    assert post(daemon.port, "/v1/traces", b"", headers={"Content-Encoding": "br"})[0] == 415
    # Over tokens.otlp.max_body_bytes on the wire, and (a small gzip bomb) once inflated.
    assert post(daemon.port, "/v1/traces", os.urandom(70_000))[0] == 413
    status, _, body = post(daemon.port, "/v1/traces", b"\x00" * 1_000_000, gzipped=True)
    assert status == 413
    assert b"decompressed body exceeds" in body
    # A lone surrogate in a string (a model name here) could be counted but never published to
    # Kafka: both encodings refuse it as undecodable (UTF-8 checks in protobuf and in the JSON
    # decoder), so nothing of the request is counted.
    bad_utf8 = b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"chat \\ud800"}]}]}]}'
    status, _, body = post(daemon.port, "/v1/traces", bad_utf8, JSON)
    assert status == 400
    assert b"not a valid OTLP JSON" in body
    # A span name of three bytes swapped for the (invalid) UTF-8-style encoding of U+D800.
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.add(name="abc")
    body = request.SerializeToString().replace(b"abc", b"\xed\xa0\x80")
    status, _, answer = post(daemon.port, "/v1/traces", body)
    assert status == 400
    assert b"bad UTF-8" in answer
    assert ingest(daemon, "otlp_traces", "rejected") == 6
    # The server keeps serving.
    assert (
        post(daemon.port, "/v1/traces", ExportTraceServiceRequest().SerializeToString())[0] == 200
    )


def test_team_from_namespace_and_an_attribute_within_the_bounds(daemon: TokenDaemon):
    call = {
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 1,
    }
    mapped = traces([span(call)], {"service.name": "billing", "k8s.namespace.name": "payments-ns"})
    assert post(daemon.port, "/v1/traces", mapped.SerializeToString())[0] == 200
    assert daemon.sample("aifinops_llm_requests_total", team="payments", app="billing") == 1
    # A span's own attribute wins over its resource's.
    spoof = traces([span({**call, "team": "span-team"})], {"service.name": "x", "team": "res"})
    assert post(daemon.port, "/v1/traces", spoof.SerializeToString())[0] == 200
    assert daemon.sample("aifinops_llm_requests_total", team="span-team") == 1
    # A label value beyond the bounds is rejected, named by its attribute.
    long_team = traces([span({**call, "aifinops.team": "t" * 200})])
    _, _, body = post(daemon.port, "/v1/traces", long_team.SerializeToString())
    assert (
        "aifinops.team: must be at most 128 characters"
        in trace_response(body).partial_success.error_message
    )


def test_team_token_wins_over_span_attributes(tmp_path: Path, request: pytest.FixtureRequest):
    config = f"""
tokens:
  auth:
    enabled: true
    tokens:
      - {{sha256: {sha(TEAM_TOKEN)}, team: ml}}
"""
    daemon = TokenDaemon(tmp_path, config)
    daemon.start()
    request.addfinalizer(daemon.stop)
    call = traces(
        [
            span(
                {
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.usage.input_tokens": 10,
                    "gen_ai.usage.output_tokens": 1,
                    "aifinops.team": "someone-else",
                }
            )
        ]
    ).SerializeToString()
    status, headers, _ = post(daemon.port, "/v1/traces", call)
    assert status == 401
    assert "www-authenticate" in headers
    auth = {"Authorization": f"Bearer {TEAM_TOKEN}"}
    assert post(daemon.port, "/v1/traces", call, headers=auth)[0] == 200
    assert daemon.sample("aifinops_llm_requests_total", team="ml") == 1
    assert daemon.sample("aifinops_llm_requests_total", team="someone-else") is None
    # The metrics path is off unless tokens.otlp.metrics is set.
    assert post(daemon.port, "/v1/metrics", b"", headers=auth)[0] == 404


def test_metrics_cumulative_with_reset_delta_counters_and_no_double_count(daemon: TokenDaemon):
    started = time.time_ns()
    resource = {"service.name": "batch-job", "aifinops.team": "metrics"}
    labels = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o"}
    name = "gen_ai.client.token.usage"

    def cumulative(input_total: float, output_total: float, start: int, at: int) -> bytes:
        points = [
            (name, "", {**labels, "gen_ai.token.type": "input"}, input_total, start, at),
            (name, "", {**labels, "gen_ai.token.type": "output"}, output_total, start, at),
        ]
        return metrics(points, resource).SerializeToString()

    # Streams that started after the exporter: the first point counts whole.
    for body in (
        cumulative(1_000, 100, started + 1, started + 10),
        cumulative(1_500, 150, started + 1, started + 20),
        cumulative(1_500, 150, started + 1, started + 20),  # a retry: no increase left
        cumulative(200, 20, started + 25, started + 30),  # the app restarted: a reset
    ):
        status, _, payload = post(daemon.port, "/v1/metrics", body)
        assert status == 200, payload
        assert not metrics_response(payload).HasField("partial_success")
    assert daemon.sample("aifinops_llm_tokens_total", team="metrics", token_type="input") == 1_700
    assert daemon.sample("aifinops_llm_tokens_total", team="metrics", token_type="output") == 170

    # Delta counters of the inference usage family; a retried request counts once. Gemini 2.5
    # Pro charges more above 200k input tokens per call; metrics have no calls, so the 250,000
    # tokens are priced at the base rate: as 8 chunks of 31,250 through /v1/events.
    gemini = {"gen_ai.provider.name": "gcp.gemini", "gen_ai.request.model": "gemini-2.5-pro"}
    delta = metrics(
        [
            (
                "gen_ai.client.inference.usage.input_tokens",
                "",
                gemini,
                250_000,
                started,
                started + 5,
            ),
            (
                "gen_ai.client.inference.usage.output_tokens",
                "",
                gemini,
                8_000,
                started,
                started + 5,
            ),
        ],
        {"service.name": "delta-job", "aifinops.team": "metrics-delta"},
        kind="sum",
        cumulative=False,
    ).SerializeToString()
    assert post(daemon.port, "/v1/metrics", delta)[0] == 200
    assert post(daemon.port, "/v1/metrics", delta)[0] == 200
    assert daemon.sample("aifinops_llm_tokens_total", team="metrics-delta") == 258_000
    chunk = {"provider": "gcp.gemini", "model": "gemini-2.5-pro", "input_tokens": 31_250}
    chunk["output_tokens"] = 1_000
    events = [make_event(USAGE_TYPE, "it", {**chunk, "team": "events-delta"}) for _ in range(8)]
    whole = {**chunk, "input_tokens": 250_000, "output_tokens": 8_000, "team": "events-tiered"}
    assert daemon.post([*events, make_event(USAGE_TYPE, "it", whole)])[0] == 202
    cost = daemon.sample("aifinops_llm_cost_usd_total", team="metrics-delta")
    assert cost == daemon.sample("aifinops_llm_cost_usd_total", team="events-delta")
    assert cost < daemon.sample("aifinops_llm_cost_usd_total", team="events-tiered")

    # A resource that sends GenAI spans is ignored on the metrics path.
    app = {"service.name": "chat-app", "service.instance.id": "pod-1", "aifinops.team": "both"}
    call = {**labels, "gen_ai.usage.input_tokens": 300, "gen_ai.usage.output_tokens": 30}
    assert post(daemon.port, "/v1/traces", traces([span(call)], app).SerializeToString())[0] == 200
    both = metrics(
        [(name, "", {**labels, "gen_ai.token.type": "input"}, 300, 0, started + 40)],
        app,
        cumulative=False,
    ).SerializeToString()
    assert post(daemon.port, "/v1/metrics", both)[0] == 200
    assert daemon.sample("aifinops_llm_tokens_total", team="both", token_type="input") == 300
    assert ingest(daemon, "otlp_metrics", "ignored") == 1
    # 3 cumulative increases, 8 chunks of the delta request; its retry: 8 duplicates.
    assert ingest(daemon, "otlp_metrics", "accepted") == 11
    assert ingest(daemon, "otlp_metrics", "duplicate") == 8


def test_over_the_rate_limit_answers_429_with_retry_after(
    tmp_path: Path, request: pytest.FixtureRequest
):
    daemon = TokenDaemon(tmp_path, "tokens:\n  rate_limit: {events_per_second: 1, burst: 5}\n")
    daemon.start()
    request.addfinalizer(daemon.stop)
    call = {
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 1,
    }
    # Spans without usage cost nothing against the limit.
    noise = [span({"http.route": "/"}) for _ in range(20)]
    five = traces([span(call) for _ in range(5)] + noise).SerializeToString()
    assert post(daemon.port, "/v1/traces", five)[0] == 200
    status, headers, body = post(
        daemon.port, "/v1/traces", traces([span(call)]).SerializeToString()
    )
    assert status == 429
    assert int(headers["retry-after"]) >= 1
    refusal = Status()
    refusal.ParseFromString(body)
    assert "tokens.rate_limit" in refusal.message
    assert daemon.sample("aifinops_llm_requests_total") == 5
