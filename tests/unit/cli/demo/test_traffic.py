"""The demo's traffic generator: valid events, a daily cycle, its three paths (HTTP, Kafka, OTLP
spans from the OpenTelemetry SDK), the runaway's onset, and a fleet sized against the rule pack's
fast-tier floors (quiet before the injection, caught after)."""

from __future__ import annotations

import json
import random
import statistics
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import _jsonnet
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from prometheus_client import CollectorRegistry

from aifinops.cli.demo.traffic import (
    DEFAULT_WORKLOADS,
    PEAK_HOUR,
    RUNAWAY_FACTOR,
    RUNAWAY_MODEL,
    RUNAWAY_TEAM,
    TROUGH,
    TrafficGenerator,
    Workload,
    daily_factor,
    mean_usage,
    poisson,
    span_attributes,
    usage_data,
)
from aifinops.exporters.events import USAGE_TYPE, parse_usage, parse_usage_event
from aifinops.exporters.otlp.spans import SOURCE_RESPONSE, SpanSettings, spans_to_events
from aifinops.exporters.pricing.pricer import Pricer
from aifinops.exporters.runtime.http import HTTPServer, Request, Response, Route

REPO = Path(__file__).resolve().parents[4]
NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


class ListSink:
    """An EventSink that keeps what it is given."""

    def __init__(self) -> None:
        self.published: list[tuple[str, str, dict[str, Any], dict[str, bytes]]] = []

    def publish(self, topic: str, key: str, event: Any, headers: Any) -> None:
        self.published.append((topic, key, dict(event), dict(headers)))


@pytest.fixture
def events_api() -> Iterator[tuple[str, list[list[dict[str, Any]]]]]:
    """A loopback `POST /v1/events` that records each batch and answers 202."""
    batches: list[list[dict[str, Any]]] = []

    def handle(request: Request) -> Response:
        assert request.headers["content-type"] == "application/cloudevents-batch+json"
        batches.append(json.loads(request.body))
        return Response.json(202, {"accepted": len(batches[-1]), "duplicates": 0})

    server = HTTPServer(
        "127.0.0.1:0", CollectorRegistry(), routes=[Route("POST", "/v1/events", handle, 1 << 22)]
    )
    server.start()
    yield f"{server.url}/v1/events", batches
    server.stop()


@pytest.fixture
def traces_api() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    """A loopback OTLP/HTTP `POST /v1/traces` that records each request and answers 200."""
    requests: list[tuple[dict[str, str], bytes]] = []

    def handle(request: Request) -> Response:
        requests.append((dict(request.headers), request.body))
        body = ExportTraceServiceResponse().SerializeToString()
        return Response(200, body, "application/x-protobuf")

    server = HTTPServer(
        "127.0.0.1:0", CollectorRegistry(), routes=[Route("POST", "/v1/traces", handle, 1 << 22)]
    )
    server.start()
    yield f"{server.url}/v1/traces", requests
    server.stop()


def test_daily_cycle_peaks_in_the_afternoon_and_bottoms_out_at_night():
    peak = datetime(2026, 3, 2, int(PEAK_HOUR), 0, tzinfo=UTC)
    assert daily_factor(peak) == pytest.approx(1.0)
    assert daily_factor(peak + timedelta(hours=12)) == pytest.approx(TROUGH)
    # A team five hours behind UTC peaks five hours later in UTC.
    assert daily_factor(peak + timedelta(hours=5), -5.0) == pytest.approx(1.0)
    hourly = [daily_factor(NOON + timedelta(hours=h)) for h in range(24)]
    assert min(hourly) >= TROUGH and max(hourly) <= 1.0


def test_poisson_draws_have_the_requested_mean():
    rng = random.Random(7)
    for lam in (0.3, 4.0, 80.0):
        draws = [poisson(rng, lam) for _ in range(20000)]
        assert statistics.fmean(draws) == pytest.approx(lam, rel=0.03)
        assert min(draws) >= 0
    assert poisson(rng, 0) == 0


@pytest.mark.parametrize("workload", DEFAULT_WORKLOADS, ids=lambda w: f"{w.team}/{w.app}")
def test_every_generated_event_passes_the_shared_schema(workload: Workload):
    rng = random.Random(1)
    generator = TrafficGenerator("http://unused", [workload], seed=3, clock=lambda: NOON)
    http, kafka, otlp = generator.tick(30.0)
    assert http, "30 s of traffic has calls"
    for event in http + kafka + otlp:
        assert event["type"] == USAGE_TYPE
        parsed = parse_usage_event(event)  # raises EventError listing every problem
        assert parsed is not None
    for _ in range(500):
        data = usage_data(workload, rng)
        record = parse_usage(data)
        assert record is not None
        assert data["cache_read_tokens"] + data["cache_write_tokens"] <= data["input_tokens"]
        assert data["reasoning_tokens"] <= data["output_tokens"]
        if data["status"] == "error":
            assert data["output_tokens"] == 0


def test_kafka_workloads_go_through_the_sink_without_the_counted_in_header(events_api):
    url, batches = events_api
    sink = ListSink()
    workloads = [w for w in DEFAULT_WORKLOADS if w.team in ("sales", "search")]
    generator = TrafficGenerator(url, workloads, kafka_sink=sink, seed=1, clock=lambda: NOON)
    for _ in range(20):
        generator.send_once(1.0)
    assert sink.published and batches
    for topic, key, event, headers in sink.published:
        assert topic == "ai-api-costs"
        assert key == f"{event['data']['team']}/{event['data']['app']}"
        assert event["data"]["team"] == "sales"
        assert headers == {}  # the bridge must count them
    assert all(e["data"]["team"] == "search" for batch in batches for e in batch)
    assert generator.stats.kafka_events == len(sink.published)
    assert generator.stats.http_events == sum(len(b) for b in batches)
    assert generator.stats.http_failures == 0
    # Without a sink every call goes over HTTP.
    http, kafka, otlp = TrafficGenerator(url, workloads, seed=1, clock=lambda: NOON).tick(60.0)
    assert not kafka and not otlp and {e["data"]["team"] for e in http} == {"sales", "search"}


def test_a_runaway_multiplies_one_team_model_and_records_its_onset(events_api):
    url, _ = events_api
    generator = TrafficGenerator(url, seed=5, clock=lambda: NOON)
    with pytest.raises(ValueError, match="no workload of team 'nobody'"):
        generator.runaway("nobody")

    def calls(n_ticks: int) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for _ in range(n_ticks):
            for e in generator.tick(1.0, generator.active()).http:
                counts[(e["data"]["team"], e["data"]["model"])] += 1
        return counts

    before = calls(400)
    injection = generator.runaway(RUNAWAY_TEAM, RUNAWAY_MODEL, RUNAWAY_FACTOR)
    assert injection.factor > 1
    assert not injection.started.is_set() and injection.onset_monotonic is None
    generator.send_once(0.5)
    assert injection.started.is_set()
    assert injection.onset_monotonic is not None and injection.onset_wall is not None
    after = calls(400)
    key = (RUNAWAY_TEAM, RUNAWAY_MODEL)
    assert after[key] / before[key] == pytest.approx(injection.factor, rel=0.1)
    other = ("search", "gpt-4o-mini")
    assert after[other] / before[other] == pytest.approx(1.0, rel=0.1)
    generator.end(injection)
    assert generator.active() == []


def _fast_tier_config() -> dict[str, Any]:
    return json.loads(
        _jsonnet.evaluate_snippet(
            "config", "(import 'mixin.libsonnet')._config", jpathdir=[str(REPO / "jsonnet")]
        )
    )


def _rates(generator: TrafficGenerator, when: datetime, injections=()):
    """(team, model) -> ($/h, tokens/s, calls/min) expected at `when`, as the fast rules sum them."""
    out: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for w in generator.workloads:
        boost = 1.0
        for injection in injections:
            if injection.matches(w):
                boost *= injection.factor
        calls = generator.rate(w, when) * boost
        row = out[(w.team, w.model)]
        row[0] += float(generator.costs(w, when)) * calls * 3600
        row[1] += (w.input_tokens + w.output_tokens) * calls
        row[2] += calls * 60
    return {k: (v[0], v[1], v[2]) for k, v in out.items()}


def test_every_model_of_the_fleet_has_a_catalogue_price():
    pricer = Pricer()
    for w in DEFAULT_WORKLOADS:
        cost = pricer.price(parse_usage(mean_usage(w)), NOON)
        assert cost.priced and cost.total > Decimal(0), f"{w.provider}/{w.model} has no price"


def test_normal_traffic_stays_well_under_the_fast_tier_floors():
    # Normal traffic at its daily peak stays far enough under the floors that noise never
    # crosses them, whether or not a team has history.
    config = _fast_tier_config()
    generator = TrafficGenerator("http://unused", daily_cycle=False)
    for (team, model), (usd_h, tokens_s, _) in _rates(generator, NOON).items():
        assert usd_h < config["llmSpikeNewSpendFloorUsdPerHour"] / 2.5, (team, model, usd_h)
        assert tokens_s < config["tokenRunawayNewFloorTokensPerSecond"] / 1.5, (team, model)


@pytest.mark.parametrize("hour", [PEAK_HOUR, PEAK_HOUR + 12], ids=["peak", "trough"])
def test_the_runaway_makes_its_team_spend_tenfold_and_clears_the_fast_thresholds(hour: float):
    config = _fast_tier_config()
    when = datetime(2026, 3, 2, 0, 0, tzinfo=UTC) + timedelta(hours=hour + 5)  # platform: UTC-5
    generator = TrafficGenerator("http://unused", clock=lambda: when)
    before = _rates(generator, when)
    injection = generator.runaway(RUNAWAY_TEAM, RUNAWAY_MODEL, RUNAWAY_FACTOR)
    assert injection.team_factor == RUNAWAY_FACTOR and injection.factor > RUNAWAY_FACTOR
    after = _rates(generator, when, [injection])

    def team_spend(rates):
        return sum(usd for (team, _), (usd, _, _) in rates.items() if team == RUNAWAY_TEAM)

    assert team_spend(after) == pytest.approx(RUNAWAY_FACTOR * team_spend(before))
    key = (RUNAWAY_TEAM, RUNAWAY_MODEL)
    # The baseline is the maximum of the 30 s rate over an hour: noise puts it up to about twice
    # the mean at this call rate. The runaway clears the thresholds with that baseline and room
    # to spare, so it crosses them within the first scrapes of the 30 s window.
    usd, tokens, calls = after[key]
    assert usd > 3 * config["llmSpikeFactor"] * 2 * before[key][0]
    assert usd > 3 * config["llmSpikeFloorUsdPerHour"]
    assert tokens > 2 * config["tokenRunawayFactor"] * 2 * before[key][1]
    assert calls >= config["llmSpikeMinRequestsPerMinute"]
    # The other teams do not change.
    assert after[("search", "gpt-4o-mini")] == before[("search", "gpt-4o-mini")]


def test_the_fleet_sends_a_share_of_its_calls_on_each_of_the_three_paths(events_api, traces_api):
    http_url, batches = events_api
    otlp_url, requests = traces_api
    sink = ListSink()
    generator = TrafficGenerator(
        http_url, kafka_sink=sink, otlp_url=otlp_url, seed=2, clock=lambda: NOON
    )
    for _ in range(10):
        generator.send_once(2.0)
    paths = {w.app: w.path for w in DEFAULT_WORKLOADS}
    assert set(paths.values()) == {"http", "kafka", "otlp"}
    sent_http = {e["data"]["app"] for batch in batches for e in batch}
    sent_kafka = {event["data"]["app"] for _, _, event, _ in sink.published}
    spans = [
        span
        for _, body in requests
        for rs in ExportTraceServiceRequest.FromString(body).resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]
    assert sent_http == {app for app, path in paths.items() if path == "http"}
    assert sent_kafka == {app for app, path in paths.items() if path == "kafka"}
    assert spans and all(
        headers["content-type"] == "application/x-protobuf" for headers, _ in requests
    )
    stats = generator.stats
    assert stats.otlp_events == len(spans) and stats.otlp_failures == 0
    assert stats.http_events == sum(len(b) for b in batches)
    assert stats.kafka_events == len(sink.published)
    # One OTLP request per tick, not one per span.
    assert len(requests) <= 10


def test_the_otlp_spans_carry_the_genai_conventions_and_price_as_the_events_would(traces_api):
    # The spans as the SDK's exporter sent them, read by the token exporter's own span decoder:
    # each call comes out as the usage event the HTTP path would have sent for it.
    otlp_url, requests = traces_api
    workloads = [w for w in DEFAULT_WORKLOADS if w.path == "otlp"]
    assert workloads, "the fleet sends some calls as OTLP spans"
    generator = TrafficGenerator(
        "http://unused", workloads, otlp_url=otlp_url, seed=4, clock=lambda: NOON
    )
    calls = generator.tick(30.0)
    assert calls.otlp and not calls.http and not calls.kafka
    generator.otlp.send(calls.otlp)  # type: ignore[union-attr]
    ((_, body),) = requests
    request = ExportTraceServiceRequest.FromString(body)
    services = set()
    for rs in request.resource_spans:
        resource = {a.key: a.value.string_value for a in rs.resource.attributes}
        services.add(resource["service.name"])
        assert resource["telemetry.sdk.name"] == "opentelemetry"
        for ss in rs.scope_spans:
            for span in ss.spans:
                attrs = {a.key for a in span.attributes}
                assert {
                    "gen_ai.provider.name",
                    "gen_ai.response.model",
                    "gen_ai.response.id",
                    "gen_ai.usage.input_tokens",
                    "gen_ai.usage.output_tokens",
                    "aifinops.team",
                } <= attrs
                assert span.name.startswith("chat ") and span.kind == span.SPAN_KIND_CLIENT
    assert services == {w.app for w in workloads}

    decoded = spans_to_events(request, SpanSettings()).events
    assert len(decoded) == len(calls.otlp)
    by_id = {e["id"]: e for e in calls.otlp}
    fields = ("provider", "model", "team", "app", "input_tokens", "output_tokens",
              "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "status")  # fmt: skip
    pricer = Pricer()
    for span_event in decoded:
        event = span_event.event
        assert event["source"] == SOURCE_RESPONSE
        sent = by_id[event["id"]]
        got = parse_usage_event(event)
        want = parse_usage(sent["data"])
        assert got is not None and want is not None
        for name in fields:
            assert getattr(got.usage, name) == getattr(want, name), name
        assert pricer.price(got.usage, NOON).total == pricer.price(want, NOON).total


def test_span_attributes_of_a_failed_call_and_of_one_without_cache_tokens():
    data = usage_data(replace_workload(), random.Random(1))
    data.update(status="error", output_tokens=0, cache_read_tokens=0, cache_write_tokens=0)
    attrs = span_attributes(data, "resp-1")
    assert attrs["error.type"] == "server_error"
    assert attrs["gen_ai.response.id"] == "resp-1"
    assert "gen_ai.usage.cache_read.input_tokens" not in attrs
    assert attrs["gen_ai.usage.output_tokens"] == 0


def replace_workload() -> Workload:
    return next(w for w in DEFAULT_WORKLOADS if w.path == "otlp")
