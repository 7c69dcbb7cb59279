"""The demo's terminal view: spend now by team and model, GPU cost and idle waste, the injected
anomalies, each alert as it reaches the demo's webhook and each `cost-anomalies` event, with the
seconds since the onset of the anomaly it is about.

Spend figures are PromQL over the stack's Prometheus (the same metric families the rule pack and
the dashboards read), so the view shows what an operator's Prometheus sees. On a terminal the
view is redrawn in place; otherwise (a pipe, CI) new alerts and events print as lines and a short
spend summary follows every `summary_every` seconds.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
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
    # Which process counted it: the token exporter (HTTP) or the bridge (events a gateway wrote
    # to Kafka).
    "llm_by_job": f"sum by (job) (rate(aifinops_llm_cost_usd_total{{{LLM_JOBS}}}[{WINDOW}])) * 3600",
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


class Queryable(Protocol):
    """What the view needs of Prometheus (`aifinops.cli.stack.Prometheus` has it)."""

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        ...


@dataclass(frozen=True)
class Spend:
    """One refresh of the spend figures."""

    llm: list[tuple[str, str, float, float]]  # team, model, $/h, tokens/s
    by_job: dict[str, float]
    llm_total: float
    gpu: list[tuple[str, float, float]]  # team, $/h, idle $/h
    gpus: int
    gpus_held: int
    # action, namespace/pod, node GPU index, MIG profile ("" but for share), $/month
    savings: list[tuple[str, str, str, str, float]] = field(default_factory=list)


def _value(sample: Mapping[str, Any]) -> float:
    return float(sample["value"][1])


def read_spend(prometheus: Queryable) -> Spend:
    """Query every figure of the view; a failed query reads as empty."""
    results: dict[str, list[dict[str, Any]]] = {}
    for name, expr in QUERIES.items():
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

    return Spend(
        llm=llm,
        by_job={s["metric"].get("job", ""): _value(s) for s in results["llm_by_job"]},
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
    ) -> None:
        self.prometheus = prometheus
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
        spend = read_spend(self.prometheus)
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
        http = spend.by_job.get("aifinops-token-exporter", 0.0)
        kafka = spend.by_job.get("aifinops-bridge", 0.0)
        lines = [
            f"LLM spend now, $/h over {WINDOW}: ${http + kafka:,.2f}/h "
            f"(HTTP via token exporter ${http:,.2f}/h, Kafka via bridge ${kafka:,.2f}/h); "
            f"${spend.llm_total:,.4f} since start",
            f"  {'team':12} {'model':34} {'$/h':>10} {'tokens/s':>10}",
        ]
        for team, model, usd, tps in spend.llm[:rows]:
            mark = "  <- injected" if any(
                a.kind == "llm" and a.onset is not None and a.team == team
                and a.model in (None, model)
                for a in self.anomalies
            ) else ""  # fmt: skip
            lines.append(f"  {team:12} {model:34} {usd:10,.2f} {tps:10,.0f}{mark}")
        if not spend.llm:
            lines.append("  (no data yet: the first rates need two scrapes)")
        total = sum(row[1] for row in spend.gpu)
        idle = sum(row[2] for row in spend.gpu)
        lines += [
            "",
            f"GPU spend now: ${total:,.2f}/h, of it idle ${idle:,.2f}/h "
            f"({idle / total:.0%} waste); {spend.gpus} GPUs, {spend.gpus_held} held by pods"
            if total
            else "GPU spend now: (no data yet)",
            f"  {'team':12} {'$/h':>10} {'idle $/h':>10} {'idle':>6}",
        ]
        for team, usd, idle_usd in spend.gpu:
            share = f"{idle_usd / usd:.0%}" if usd else "-"
            lines.append(f"  {team or '(no pod)':12} {usd:10,.2f} {idle_usd:10,.2f} {share:>6}")
        monthly = sum(row[4] for row in spend.savings)
        lines += [
            "",
            f"GPU savings available: ${monthly:,.0f}/month (savings tier, last 7 days)"
            if spend.savings
            else "GPU savings available: none yet (the savings tier evaluates every 5 minutes)",
        ]
        for action, pod, gpu, profile, usd in spend.savings[:rows]:
            action_text = f"{action} to {profile}" if profile else action
            lines.append(f"  {action_text:18} {pod:28} {gpu:18} ${usd:10,.0f}/month")
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
            spend = read_spend(self.prometheus)
            out.write(status + "\n" + "\n".join(self._spend_lines(spend, rows=6)) + "\n\n")
