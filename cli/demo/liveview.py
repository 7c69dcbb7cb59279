"""The demo's terminal view: spend now by team and model, GPU cost and idle waste, the injected
anomalies, each alert as it reaches the demo's webhook and each `cost-anomalies` event, with the
seconds since the onset of the anomaly it is about.

Spend figures are PromQL over the stack's Prometheus (the same metric families the rule pack and
the dashboards read), so the view shows what an operator's Prometheus sees; money is shown in the
reporting currency at the rate the exporters serve (`aifinops_fx_rate`). On a terminal the
view is redrawn in place; otherwise (a pipe, CI) new alerts and events print as lines and a short
spend summary follows every `summary_every` seconds.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO

from .alertwatch import AnomalyEvent, InjectedAnomaly, Notification, seconds_since_onset

LLM_JOBS = 'job=~"aifinops-token-exporter|aifinops-bridge"'
GPU_JOBS = 'job=~"aifinops-gpu-exporter|aifinops-bridge"'
WINDOW = "30s"  # the fast tier's rate window

QUERIES = {
    "llm_by_team_model": (
        f"sum by (team, model) (rate(aifinops_llm_cost_usd_total{{{LLM_JOBS}}}[{WINDOW}])) * 3600"
    ),
    "tokens_by_team_model": (
        f"sum by (team, model) (rate(aifinops_llm_tokens_total{{{LLM_JOBS}}}[{WINDOW}]))"
    ),
    # Which path counted it: the bridge (events a gateway wrote to Kafka) or the token exporter,
    # whose HTTP and OTLP calls come from different apps (`path_of`).
    "llm_by_job_app": (
        f"sum by (job, app) (rate(aifinops_llm_cost_usd_total{{{LLM_JOBS}}}[{WINDOW}])) * 3600"
    ),
    # Events counted per ingest path: http (/v1/events), otlp_traces (/v1/traces), kafka (bridge).
    "events_by_source": (
        f'sum by (source) (rate(aifinops_ingest_events_total{{{LLM_JOBS}, outcome="accepted"}}'
        f"[{WINDOW}]))"
    ),
    "llm_total": f"sum(aifinops_llm_cost_usd_total{{{LLM_JOBS}}})",
    "gpu_by_team": f"sum by (team) (rate(aifinops_gpu_cost_usd_total{{{GPU_JOBS}}}[{WINDOW}])) * 3600",
    "gpu_idle_by_team": (
        f"sum by (team) (rate(aifinops_gpu_idle_cost_usd_total{{{GPU_JOBS}}}[{WINDOW}])) * 3600"
    ),
    "gpu_count": f"count(aifinops_gpu_info{{{GPU_JOBS}}})",
    "gpu_held": f"count(count by (uuid) (aifinops_gpu_allocated{{{GPU_JOBS}}}))",
    # The savings tier's GPU recommendations (docs/savings.md), recorded every 5 minutes.
    "savings": 'aifinops_savings_usd_per_month{action=~"release|share|schedule"}',
}


# The live view's spend split, in this order: what each counting path counted.
PATHS = ("http", "otlp", "kafka")
PATH_NAMES = {
    "http": "HTTP /v1/events",
    "otlp": "OTLP /v1/traces",
    "kafka": "Kafka via bridge",
}
SYMBOLS = {"USD": "$", "GBP": "£", "EUR": "€"}


def fx_query(currency: str) -> str:
    """The rate in force, units of `currency` per US dollar, as the exporters serve it."""
    return f'max(aifinops_fx_rate{{{LLM_JOBS}, currency="{currency}"}})'


class Queryable(Protocol):
    """What the view needs of Prometheus (`aifinops.cli.stack.Prometheus` has it)."""

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        ...


@dataclass(frozen=True)
class Spend:
    """One refresh of the spend figures."""

    llm: list[tuple[str, str, float, float]]  # team, model, $/h, tokens/s
    by_path: dict[str, float]  # PATHS -> $/h
    llm_total: float
    gpu: list[tuple[str, float, float]]  # team, $/h, idle $/h
    gpus: int
    gpus_held: int
    # action, namespace/pod, node GPU index, MIG profile ("" but for share), $/month
    savings: list[tuple[str, str, str, str, float]] = field(default_factory=list)
    events_by_source: dict[str, float] = field(default_factory=dict)  # ingest source -> events/s
    # Units of the reporting currency per US dollar in force now (None: no rate served yet).
    fx_rate: float | None = None


def _value(sample: Mapping[str, Any]) -> float:
    return float(sample["value"][1])


def read_spend(
    prometheus: Queryable, currency: str = "USD", otlp_apps: Collection[str] = ()
) -> Spend:
    """Query every figure of the view (in US dollars, with the rate of `currency` in force);
    a failed query reads as empty. The token exporter's spend of an app in `otlp_apps` is the
    OTLP path's, the rest of it HTTP's."""
    results: dict[str, list[dict[str, Any]]] = {}
    queries = {**QUERIES, "fx_rate": fx_query(currency)} if currency != "USD" else QUERIES
    for name, expr in queries.items():
        try:
            results[name] = prometheus.query(expr)
        except Exception:
            results[name] = []
    tokens = {(s["metric"].get("team", ""), s["metric"].get("model", "")): _value(s)
              for s in results["tokens_by_team_model"]}  # fmt: skip
    llm = sorted(
        (
            (
                s["metric"].get("team", ""),
                s["metric"].get("model", ""),
                _value(s),
                tokens.get((s["metric"].get("team", ""), s["metric"].get("model", "")), 0.0),
            )
            for s in results["llm_by_team_model"]
        ),
        key=lambda row: -row[2],
    )
    idle = {s["metric"].get("team", ""): _value(s) for s in results["gpu_idle_by_team"]}
    gpu = sorted(
        (
            (s["metric"].get("team", ""), _value(s), idle.get(s["metric"].get("team", ""), 0.0))
            for s in results["gpu_by_team"]
        ),
        key=lambda row: -row[1],
    )

    def scalar(name: str) -> float:
        return _value(results[name][0]) if results[name] else 0.0

    savings = sorted(
        (
            (
                m.get("action", ""),
                f"{m.get('namespace', '')}/{m.get('pod', '')}",
                f"{m.get('node', '')} GPU {m.get('gpu', '')}",
                m.get("profile", ""),
                _value(s),
            )
            for s in results["savings"]
            for m in (s["metric"],)
        ),
        key=lambda row: -row[4],
    )

    by_path = dict.fromkeys(PATHS, 0.0)
    for s in results["llm_by_job_app"]:
        m = s["metric"]
        if m.get("job") == "aifinops-bridge":
            by_path["kafka"] += _value(s)
        else:
            by_path["otlp" if m.get("app") in otlp_apps else "http"] += _value(s)
    if currency == "USD":
        fx_rate: float | None = 1.0
    else:
        fx_rate = scalar("fx_rate") if results.get("fx_rate") else None
    return Spend(
        llm=llm,
        by_path=by_path,
        events_by_source={
            s["metric"].get("source", ""): _value(s) for s in results["events_by_source"]
        },
        fx_rate=fx_rate,
        llm_total=scalar("llm_total"),
        gpu=gpu,
        gpus=int(scalar("gpu_count")),
        gpus_held=int(scalar("gpu_held")),
        savings=savings,
    )


def _clock(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).strftime("%H:%M:%S")


def _since(seconds: float | None) -> str:
    return f"{seconds:5.1f} s after onset" if seconds is not None else "(not injected)"


def alert_line(n: Notification, anomalies: list[InjectedAnomaly]) -> str:
    """One notification as the view prints it."""
    labels = n.labels
    where = " ".join(f"{k}={labels[k]}" for k in ("team", "model", "node") if labels.get(k))
    text = n.annotations.get("description") or n.annotations.get("summary") or ""
    head = (
        f"{_clock(n.received_wall)}  {n.status.upper():8} {n.alertname:30} {where:48} "
        f"{_since(seconds_since_onset(labels, n.received, anomalies))}"
    )
    if not text:
        return head
    body = textwrap.wrap(" ".join(text.split()), width=100, max_lines=3, placeholder=" ...")
    return "\n".join([head, *(" " * 12 + line for line in body)])


def anomaly_line(e: AnomalyEvent, anomalies: list[InjectedAnomaly]) -> str:
    """One `cost-anomalies` event as the view prints it."""
    labels = e.labels
    where = " ".join(f"{k}={labels[k]}" for k in ("team", "model") if labels.get(k))
    return (
        f"{_clock(e.received_wall)}  {e.status.upper():8} {labels.get('alertname', ''):30} "
        f"{where:48} {_since(seconds_since_onset(labels, e.received, anomalies))}"
        f"  key={e.key[:16]}"
    )


class LiveView:
    """Draws the view from the stack's Prometheus, its alert receiver and its Kafka reader."""

    def __init__(
        self,
        prometheus: Queryable,
        notifications: Callable[[], Sequence[Notification]],
        events: Callable[[], Sequence[AnomalyEvent]],
        anomalies: list[InjectedAnomaly],
        *,
        header: Sequence[str] = (),
        out: TextIO,
        tty: bool,
        summary_every: float = 15.0,
        currency: str = "USD",
        otlp_apps: Collection[str] = (),
    ) -> None:
        self.prometheus = prometheus
        self.currency = currency
        self.otlp_apps = frozenset(otlp_apps)
        self.notifications = notifications
        self.events = events
        self.anomalies = anomalies
        self.header = list(header)
        self.out = out
        self.tty = tty
        self.summary_every = summary_every
        self._printed_alerts = 0
        self._printed_events = 0
        self._printed_anomalies = 0
        self._last_summary = 0.0

    def refresh(self, status: str) -> None:
        """Redraw (terminal) or print what is new (pipe)."""
        if self.tty:
            self.out.write("\x1b[H\x1b[2J" + self.render(status) + "\n")
        else:
            self._print_new(status)
        self.out.flush()

    def render(self, status: str) -> str:
        """The whole screen."""
        spend = read_spend(self.prometheus, self.currency, self.otlp_apps)
        lines = [status, *self.header, ""]
        lines += self._spend_lines(spend, rows=12)
        lines += ["", "Injected anomalies"]
        lines += [self._anomaly_text(a) for a in self.anomalies] or ["  none yet"]
        notifications = list(self.notifications())
        lines += ["", f"Alerts at the demo's webhook (Alertmanager -> here): {len(notifications)}"]
        lines += ["  " + alert_line(n, self.anomalies) for n in notifications[-10:]] or [
            "  none yet"
        ]
        events = list(self.events())
        lines += ["", f"cost-anomalies events (Kafka, written by the bridge): {len(events)}"]
        lines += ["  " + anomaly_line(e, self.anomalies) for e in events[-8:]] or ["  none yet"]
        return "\n".join(lines)

    def _spend_lines(self, spend: Spend, rows: int) -> list[str]:
        # Figures in the reporting currency at the rate in force now (the exporters' gauge);
        # until a rate is served, in dollars and said so.
        rate, code = (spend.fx_rate, self.currency) if spend.fx_rate else (1.0, "USD")
        sym = SYMBOLS.get(code, code + " ")
        note = "" if code == self.currency else f" (no USD->{self.currency} rate yet, in USD)"
        paths = ", ".join(f"{PATH_NAMES[p]} {sym}{spend.by_path[p] * rate:,.2f}/h" for p in PATHS)
        lines = [
            f"LLM spend now, {sym}/h over {WINDOW}: {sym}{sum(spend.by_path.values()) * rate:,.2f}"
            f"/h ({paths}); {sym}{spend.llm_total * rate:,.4f} since start{note}",
            "  events/s counted: "
            + ", ".join(
                f"{source} {spend.events_by_source.get(source, 0.0):,.1f}"
                for source in ("http", "otlp_traces", "kafka")
            ),
            f"  {'team':12} {'model':34} {sym + '/h':>10} {'tokens/s':>10}",
        ]
        for team, model, usd, tps in spend.llm[:rows]:
            mark = "  <- injected" if any(
                a.kind == "llm" and a.onset is not None and a.team == team
                and a.model in (None, model)
                for a in self.anomalies
            ) else ""  # fmt: skip
            lines.append(f"  {team:12} {model:34} {usd * rate:10,.2f} {tps:10,.0f}{mark}")
        if not spend.llm:
            lines.append("  (no data yet: the first rates need two scrapes)")
        total = sum(row[1] for row in spend.gpu) * rate
        idle = sum(row[2] for row in spend.gpu) * rate
        lines += [
            "",
            f"GPU spend now: {sym}{total:,.2f}/h, of it idle {sym}{idle:,.2f}/h "
            f"({idle / total:.0%} waste); {spend.gpus} GPUs, {spend.gpus_held} held by pods"
            if total
            else "GPU spend now: (no data yet)",
            f"  {'team':12} {sym + '/h':>10} {'idle ' + sym + '/h':>10} {'idle':>6}",
        ]
        for team, usd, idle_usd in spend.gpu:
            share = f"{idle_usd / usd:.0%}" if usd else "-"
            lines.append(
                f"  {team or '(no pod)':12} {usd * rate:10,.2f} {idle_usd * rate:10,.2f} {share:>6}"
            )
        monthly = sum(row[4] for row in spend.savings) * rate
        lines += [
            "",
            f"GPU savings available: {sym}{monthly:,.0f}/month (savings tier, last 7 days)"
            if spend.savings
            else "GPU savings available: none yet (the savings tier evaluates every 5 minutes)",
        ]
        for action, pod, gpu, profile, usd in spend.savings[:rows]:
            action_text = f"{action} to {profile}" if profile else action
            lines.append(f"  {action_text:18} {pod:28} {gpu:18} {sym}{usd * rate:10,.0f}/month")
        return lines

    @staticmethod
    def _anomaly_text(a: InjectedAnomaly) -> str:
        when = f"at {_clock(a.onset_wall)}" if a.onset_wall else "pending"
        return f"  {when}: {a.description}"

    def _print_new(self, status: str) -> None:
        out = self.out
        for a in self.anomalies[self._printed_anomalies :]:
            if a.onset is None:
                break
            out.write(f"INJECTED {self._anomaly_text(a).strip()}\n")
            self._printed_anomalies += 1
        notifications = list(self.notifications())
        for n in notifications[self._printed_alerts :]:
            out.write("ALERT    " + alert_line(n, self.anomalies) + "\n")
        self._printed_alerts = len(notifications)
        events = list(self.events())
        for e in events[self._printed_events :]:
            out.write("KAFKA    " + anomaly_line(e, self.anomalies) + "\n")
        self._printed_events = len(events)
        now = time.monotonic()
        if now - self._last_summary >= self.summary_every:
            self._last_summary = now
            spend = read_spend(self.prometheus, self.currency, self.otlp_apps)
            out.write(status + "\n" + "\n".join(self._spend_lines(spend, rows=6)) + "\n\n")
