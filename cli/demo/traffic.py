"""The demo's traffic generator: LLM usage events for several teams, apps and real models with a daily
cycle, sent over the token exporter's HTTP API or straight to Kafka as a gateway in another region
would, and the runaway-agent injection.

Each `Workload` is one app of one team calling one model; its request rate follows a daily cycle in
the team's own time zone (peak in the afternoon, trough at night). Every tick the generator draws a
Poisson number of calls per workload, gives each call token counts around the workload's means,
and sends the tick's HTTP events as one CloudEvents batch (`POST /v1/events`), the OTLP workloads'
calls as GenAI spans built with the real OpenTelemetry SDK and exported over OTLP/HTTP
(`POST /v1/traces`, as an app instrumented with OpenTelemetry would, docs/otlp.md), and the Kafka
events one by one through an `EventSink` (the bridge's producer) without the
`aifinops-counted-in` header, so the bridge counts them: every ingest path is live.

`runaway(team, model, 10)` is an agent of `team` stuck in a loop on `model`: from the next tick on,
that workload calls as much more often as it takes for the team's whole LLM spend to be ten times
what it is now (expected cost per call from the price catalogue). The tick's wall and monotonic
time, taken right before the first multiplied batch is sent, is the anomaly's onset: the moment the
spend changes as the exporters see it.
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, NamedTuple

from aifinops.exporters.events import USAGE_TYPE, make_event, parse_usage
from aifinops.exporters.pricing.pricer import Pricer
from aifinops.exporters.sink import EventSink

log = logging.getLogger(__name__)

BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
# The token exporter accepts at most this many events per batch by default (docs/architecture.md).
MAX_BATCH_EVENTS = 1000
HTTP_SOURCE = "//gateway.us-east-1.demo.aifinops.io/llm-proxy"
KAFKA_SOURCE = "//gateway.eu-west-1.demo.aifinops.io/llm-proxy"

Path = Literal["http", "kafka", "otlp"]
# The instrumentation scope of the demo's spans.
OTLP_SCOPE = "aifinops.demo.traffic"
# How long a span says its call took (its start is this long before the event's time).
SPAN_SECONDS = 1.0


@dataclass(frozen=True)
class Workload:
    """One app of one team calling one model: its peak-hour rate and the shape of one call."""

    team: str
    app: str
    provider: str  # OpenTelemetry gen_ai.provider.name
    model: str  # the response model, as the provider reports it
    requests_per_second: float  # at the daily peak
    input_tokens: int  # mean per call, cache reads and writes included
    output_tokens: int  # mean per call, reasoning included
    cache_read_ratio: float = 0.0  # share of input_tokens read from the prompt cache
    cache_write_ratio: float = 0.0  # share of input_tokens written to it
    reasoning_ratio: float = 0.0  # share of output_tokens spent reasoning
    error_ratio: float = 0.005
    path: Path = "http"
    # The team's time zone: its daily cycle peaks at PEAK_HOUR local time.
    utc_offset_hours: float = -5.0


# The demo's fleet. Peak-hour spend per team and model stays well under the fast tier's floors
# ($200/h, 10,000 tokens/s without history), so nothing fires before the injection, and the
# runaway (platform's CI triage agent looping until the team spends tenfold) crosses the
# "several times its previous-hour maximum" thresholds at once (tests/unit/cli/demo/test_traffic.py).
DEFAULT_WORKLOADS: tuple[Workload, ...] = (
    Workload("search", "ranker", "anthropic", "claude-3-5-haiku-20241022", 2.0, 2500, 150,
             cache_read_ratio=0.6),
    Workload("search", "query-rewriter", "openai", "gpt-4o-mini", 3.0, 600, 60),
    Workload("support", "chatbot", "openai", "gpt-4o", 1.2, 1800, 300, cache_read_ratio=0.55),
    Workload("support", "chatbot-eu", "azure.ai.openai", "gpt-4o", 0.6, 1800, 300,
             cache_read_ratio=0.55, path="kafka", utc_offset_hours=1.0),
    Workload("research", "deep-research", "gcp.gemini", "gemini-2.5-pro", 0.25, 12000, 2000,
             reasoning_ratio=0.7, path="otlp", utc_offset_hours=-8.0),
    Workload("platform", "codegen-agent", "anthropic", "claude-sonnet-4-20250514", 1.6, 3000, 400,
             cache_read_ratio=0.65, cache_write_ratio=0.1),
    Workload("platform", "ci-triage-agent", "openai", "gpt-4.1", 0.8, 3000, 200,
             cache_read_ratio=0.3),
    Workload("marketing", "copywriter", "mistral_ai", "mistral-large-latest", 0.3, 800, 600,
             path="otlp", utc_offset_hours=1.0),
    Workload("sales", "crm-assistant", "gcp.gemini", "gemini-2.5-flash", 1.0, 2000, 300,
             path="kafka", utc_offset_hours=1.0),
)  # fmt: skip
# Whose agent runs away in the demo, on which model, and how much the team's spend jumps.
RUNAWAY_TEAM = "platform"
RUNAWAY_MODEL = "gpt-4.1"
RUNAWAY_FACTOR = 10.0

PEAK_HOUR = 14.0
# Traffic at the quietest hour as a share of the peak.
TROUGH = 0.6


def daily_factor(when: datetime, utc_offset_hours: float = 0.0, trough: float = TROUGH) -> float:
    """The share of peak-hour traffic at `when` in a time zone: 1 at PEAK_HOUR, `trough` 12 h later."""
    local = when.astimezone(UTC) + timedelta(hours=utc_offset_hours)
    hour = local.hour + local.minute / 60 + local.second / 3600
    return trough + (1 - trough) * (1 + math.cos(2 * math.pi * (hour - PEAK_HOUR) / 24)) / 2


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (Knuth's method for small means, a normal approximation above 30)."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def usage_data(w: Workload, rng: random.Random) -> dict[str, Any]:
    """The `data` of one call of `w`: token counts within ±30 % of the means, a few errors."""

    def around(mean: float) -> int:
        return max(0, round(mean * rng.uniform(0.7, 1.3)))

    status = "error" if rng.random() < w.error_ratio else "ok"
    input_tokens = max(1, around(w.input_tokens))
    cache_read = min(input_tokens, round(input_tokens * w.cache_read_ratio))
    cache_write = min(input_tokens - cache_read, round(input_tokens * w.cache_write_ratio))
    output_tokens = 0 if status == "error" else around(w.output_tokens)
    return {
        "provider": w.provider,
        "model": w.model,
        "team": w.team,
        "app": w.app,
        "input_tokens": input_tokens,
        "cache_read_tokens": cache_read,
        "cache_write_tokens": cache_write,
        "output_tokens": output_tokens,
        "reasoning_tokens": round(output_tokens * w.reasoning_ratio),
        "cost_usd": None,
        "status": status,
    }


def mean_usage(w: Workload) -> dict[str, Any]:
    """The `data` of `w`'s average successful call (what `usage_data` draws around)."""
    return {
        "provider": w.provider,
        "model": w.model,
        "team": w.team,
        "app": w.app,
        "input_tokens": w.input_tokens,
        "cache_read_tokens": round(w.input_tokens * w.cache_read_ratio),
        "cache_write_tokens": round(w.input_tokens * w.cache_write_ratio),
        "output_tokens": w.output_tokens,
        "reasoning_tokens": round(w.output_tokens * w.reasoning_ratio),
        "cost_usd": None,
        "status": "ok",
    }


class CallCosts:
    """Expected dollars per call of each workload, priced once by the exporters' own pricer (cost is
    linear in each token type, so the average call's price is the average price)."""

    def __init__(self) -> None:
        self._pricer = Pricer()
        self._cache: dict[Workload, Decimal] = {}

    def __call__(self, w: Workload, when: datetime) -> Decimal:
        """USD per call of `w`; 0 for a model without a price."""
        cost = self._cache.get(w)
        if cost is None:
            cost = self._pricer.price(parse_usage(mean_usage(w)), when).total
            self._cache[w] = cost
        return cost


class Calls(NamedTuple):
    """One tick's calls as CloudEvents, by the path they go out on."""

    http: list[dict[str, Any]]
    kafka: list[dict[str, Any]]
    otlp: list[dict[str, Any]]


def span_attributes(data: Mapping[str, Any], response_id: str) -> dict[str, Any]:
    """The GenAI semantic convention attributes of the span of one call (`data` of a usage
    event): what `opentelemetry-instrumentation-openai-v2` and its peers set, plus the team.
    Input tokens include cached ones, as the convention defines them."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": data["provider"],
        "gen_ai.request.model": data["model"],
        "gen_ai.response.model": data["model"],
        "gen_ai.response.id": response_id,
        "gen_ai.usage.input_tokens": data["input_tokens"],
        "gen_ai.usage.output_tokens": data["output_tokens"],
        "aifinops.team": data["team"],
    }
    optional = {
        "gen_ai.usage.cache_read.input_tokens": data.get("cache_read_tokens") or 0,
        "gen_ai.usage.cache_creation.input_tokens": data.get("cache_write_tokens") or 0,
        "gen_ai.usage.reasoning.output_tokens": data.get("reasoning_tokens") or 0,
    }
    attributes.update({k: v for k, v in optional.items() if v})
    if data.get("status") == "error":
        attributes["error.type"] = "server_error"
    return attributes


class OTLPSpanSender:
    """Turns usage events into spans with the OpenTelemetry SDK (one `TracerProvider` per app, its
    resource `service.name` = the app) and exports each tick's spans over OTLP/HTTP protobuf with
    the SDK's own exporter to `url` (the token exporter's `/v1/traces`). Raises `RuntimeError`
    naming the install command when the SDK is not installed."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
                InMemorySpanExporter,
            )
        except ImportError as exc:
            raise RuntimeError(
                f"the demo's OTLP traffic needs the OpenTelemetry SDK ({exc}): "
                "pip install 'aifinops[demo]'"
            ) from exc
        self.url = url
        # Finished spans collect here until the tick exports them as one request.
        self._finished = InMemorySpanExporter()
        self._exporter = OTLPSpanExporter(endpoint=url, timeout=timeout)
        self._tracers: dict[str, Any] = {}

    def _tracer(self, app: str) -> Any:
        tracer = self._tracers.get(app)
        if tracer is None:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import SimpleSpanProcessor

            provider = TracerProvider(
                resource=Resource.create({"service.name": app}), shutdown_on_exit=False
            )
            provider.add_span_processor(SimpleSpanProcessor(self._finished))
            tracer = provider.get_tracer(OTLP_SCOPE)
            self._tracers[app] = tracer
        return tracer

    def spans(self, events: Iterable[Mapping[str, Any]]) -> list[Any]:
        """The finished SDK spans (`ReadableSpan`) of `events`, one per call: named
        `chat <model>`, kind CLIENT, ending at the event's time, status ERROR for a failed call."""
        from opentelemetry.trace import SpanKind, Status, StatusCode

        for event in events:
            data = event["data"]
            end = datetime.fromisoformat(event["time"])
            end_ns = int(end.timestamp() * 1e9)
            span = self._tracer(data["app"]).start_span(
                f"chat {data['model']}",
                kind=SpanKind.CLIENT,
                start_time=end_ns - int(SPAN_SECONDS * 1e9),
                attributes=span_attributes(data, event["id"]),
            )
            if data.get("status") == "error":
                span.set_status(Status(StatusCode.ERROR, "server_error"))
            span.end(end_time=end_ns)
        finished = list(self._finished.get_finished_spans())
        self._finished.clear()
        return finished

    def send(self, events: Sequence[Mapping[str, Any]]) -> bool:
        """Export the spans of `events` in one OTLP request; whether the exporter succeeded."""
        from opentelemetry.sdk.trace.export import SpanExportResult

        spans = self.spans(events)
        return not spans or self._exporter.export(spans) is SpanExportResult.SUCCESS


@dataclass
class Injection:
    """One runaway: which team and model, how much more often it calls (`factor`, set so the team's
    spend jumps `team_factor`-fold), and when its first multiplied call was sent."""

    team: str
    model: str | None
    factor: float
    team_factor: float = 0.0
    # Set by the generator right before it sends the first multiplied batch.
    onset_monotonic: float | None = None
    onset_wall: float | None = None
    started: threading.Event = field(default_factory=threading.Event)
    stopped: bool = False

    def matches(self, w: Workload) -> bool:
        """Whether the injection multiplies `w`."""
        return w.team == self.team and (self.model is None or w.model == self.model)


@dataclass
class TrafficStats:
    """What the generator sent, by path, and what went wrong."""

    http_events: int = 0
    kafka_events: int = 0
    otlp_events: int = 0
    # input + output tokens of the events sent (and accepted, for HTTP and OTLP), per path
    http_tokens: int = 0
    kafka_tokens: int = 0
    otlp_tokens: int = 0
    http_batches: int = 0
    http_failures: int = 0
    otlp_failures: int = 0
    last_error: str = ""


class TrafficGenerator:
    """Sends the workloads' calls every `tick_seconds` on a thread until stopped.

    `events_url` is the token exporter's `POST /v1/events`; `kafka_sink` (any `EventSink`, the
    bridge's producer in the demo) and `kafka_topic` carry the `path="kafka"` workloads, and
    `otlp_url` (its `POST /v1/traces`) the `path="otlp"` ones as OpenTelemetry spans; without a
    sink or URL those go over HTTP too. `daily_cycle=False` sends every workload at its peak rate
    (the latency benchmark wants the same load whatever the hour).
    """

    def __init__(
        self,
        events_url: str,
        workloads: Sequence[Workload] = DEFAULT_WORKLOADS,
        *,
        kafka_sink: EventSink | None = None,
        kafka_topic: str = "ai-api-costs",
        otlp_url: str | None = None,
        tick_seconds: float = 0.5,
        daily_cycle: bool = True,
        seed: int | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.events_url = events_url
        self.workloads = list(workloads)
        self.kafka_sink = kafka_sink
        self.kafka_topic = kafka_topic
        self.otlp = OTLPSpanSender(otlp_url) if otlp_url else None
        self.tick_seconds = tick_seconds
        self.daily_cycle = daily_cycle
        self.stats = TrafficStats()
        self.costs = CallCosts()
        self._rng = random.Random(seed)
        self._clock = clock
        self._lock = threading.Lock()
        self._injections: list[Injection] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- control ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start sending on a background thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sending (the tick in hand finishes)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def runaway(
        self, team: str, model: str | None = None, team_factor: float = RUNAWAY_FACTOR
    ) -> Injection:
        """An agent of `team` loops on `model` (or on all the team's models): from the next tick on
        its calls come as much more often as makes the team's expected LLM spend `team_factor`
        times what it is now. Returns the injection; its onset is set when the first multiplied
        batch goes out. Raises `ValueError` when no workload matches or it has no price."""
        probe = Injection(team, model, 1.0)
        chosen = [w for w in self.workloads if probe.matches(w)]
        if not chosen:
            raise ValueError(f"no workload of team {team!r}" + (f" on {model}" if model else ""))
        now = self._clock()
        team_spend = sum(
            Decimal(self.rate(w, now)) * self.costs(w, now)
            for w in self.workloads
            if w.team == team
        )
        spend = sum(Decimal(self.rate(w, now)) * self.costs(w, now) for w in chosen)
        if spend <= 0:
            raise ValueError(f"{team}/{model}: no priced spend to multiply")
        factor = 1 + (team_factor - 1) * float(team_spend / spend)
        injection = Injection(team, model, factor, team_factor)
        with self._lock:
            self._injections.append(injection)
        return injection

    def end(self, injection: Injection) -> None:
        """Back to normal traffic for that injection from the next tick on."""
        with self._lock:
            injection.stopped = True
            if injection in self._injections:
                self._injections.remove(injection)

    def active(self) -> list[Injection]:
        """The injections in force."""
        with self._lock:
            return list(self._injections)

    # -- one tick --------------------------------------------------------------------------------

    def rate(self, w: Workload, when: datetime) -> float:
        """Calls per second of `w` at `when`, without injections."""
        factor = daily_factor(when, w.utc_offset_hours) if self.daily_cycle else 1.0
        return w.requests_per_second * factor

    def tick(self, seconds: float, injections: Sequence[Injection] = ()) -> Calls:
        """The calls of one tick of `seconds` with `injections` in force, by path (a Kafka or OTLP
        workload's calls go over HTTP when the generator has no sink or URL for its path)."""
        now = self._clock()
        calls = Calls([], [], [])
        for w in self.workloads:
            boost = math.prod(i.factor for i in injections if i.matches(w))
            n = poisson(self._rng, self.rate(w, now) * boost * seconds)
            source = KAFKA_SOURCE if w.path == "kafka" else HTTP_SOURCE
            if w.path == "kafka" and self.kafka_sink is not None:
                target = calls.kafka
            elif w.path == "otlp" and self.otlp is not None:
                target = calls.otlp
            else:
                target = calls.http
            for _ in range(n):
                # Spread the calls over the tick so event times look like real traffic.
                at = now - timedelta(seconds=self._rng.uniform(0, seconds))
                target.append(
                    make_event(
                        USAGE_TYPE,
                        source,
                        usage_data(w, self._rng),
                        event_id=str(uuid.uuid4()),
                        time=at,
                        subject=f"{w.team}/{w.app}",
                    )
                )
        return calls

    def send_once(self, seconds: float) -> None:
        """Draw one tick's calls and send them; marks injections whose first batch this is."""
        injections = self.active()
        pending = [i for i in injections if not i.started.is_set()]
        http, kafka, otlp = self.tick(seconds, injections)
        if pending:
            onset_m, onset_w = time.monotonic(), time.time()
            for injection in pending:
                injection.onset_monotonic, injection.onset_wall = onset_m, onset_w
        for event in kafka:
            assert self.kafka_sink is not None
            data = event["data"]
            self.kafka_sink.publish(self.kafka_topic, f"{data['team']}/{data['app']}", event, {})
        self.stats.kafka_events += len(kafka)
        self.stats.kafka_tokens += _tokens(kafka)
        for start in range(0, len(http), MAX_BATCH_EVENTS):
            self._post(http[start : start + MAX_BATCH_EVENTS])
        if otlp:
            self._export(otlp)
        for injection in pending:
            injection.started.set()

    def _post(self, events: list[dict[str, Any]]) -> None:
        request = urllib.request.Request(
            self.events_url,
            data=json.dumps(events, separators=(",", ":")).encode(),
            headers={"Content-Type": BATCH_CONTENT_TYPE},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                resp.read()
            self.stats.http_events += len(events)
            self.stats.http_tokens += _tokens(events)
            self.stats.http_batches += 1
        except urllib.error.HTTPError as exc:
            self._failed(f"{exc.code} {exc.read(500).decode(errors='replace')}")
        except OSError as exc:
            self._failed(str(exc))

    def _export(self, events: list[dict[str, Any]]) -> None:
        assert self.otlp is not None
        try:
            ok = self.otlp.send(events)
        except Exception as exc:  # the SDK's exporter logs and returns; keep the tick going
            ok = False
            log.warning("traffic: OTLP export to %s failed: %s", self.otlp.url, exc)
        if ok:
            self.stats.otlp_events += len(events)
            self.stats.otlp_tokens += _tokens(events)
        else:
            self.stats.otlp_failures += 1

    def _failed(self, reason: str) -> None:
        self.stats.http_failures += 1
        if reason != self.stats.last_error:
            log.warning("traffic: POST %s failed: %s", self.events_url, reason)
        self.stats.last_error = reason

    def _run(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            try:
                self.send_once(self.tick_seconds)
            except Exception:  # keep the demo's traffic flowing through a bad tick
                log.exception("traffic: a tick failed")
            next_tick += self.tick_seconds
            self._stop.wait(max(0.0, next_tick - time.monotonic()))


def _tokens(events: Iterable[dict[str, Any]]) -> int:
    return sum(e["data"]["input_tokens"] + e["data"]["output_tokens"] for e in events)


def workloads_of(team: str, workloads: Iterable[Workload] = DEFAULT_WORKLOADS) -> list[Workload]:
    """The workloads of one team."""
    return [w for w in workloads if w.team == team]


def with_path(workloads: Iterable[Workload], path: Path) -> list[Workload]:
    """The same workloads all sent over one path."""
    return [replace(w, path=path) for w in workloads]
