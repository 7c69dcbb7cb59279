"""Detection latency on the real stack: injected runaways → Alertmanager webhook and → `cost-anomalies`.

Runs `aifinops demo`'s stack (`DemoStack`: Tansu, Prometheus 2.42 with the generated rules,
Alertmanager 0.25 with the shipped routing, the three daemons, all on loopback) with the demo's
normal traffic plus `--anomalies` extra teams (default 20), each a copy of the demo's platform
team (a coding agent on claude-sonnet-4 and a CI triage agent on gpt-4.1) at a steady rate, with
its history backfilled like the demo's; half of them send over HTTP to the token exporter, half
write to Kafka as a remote gateway would (counted by the bridge). After a warm-up, at a random
moment within `--spread` seconds (one onset per team, so the onsets fall at every phase of the
5 s scrape and rule cycles), each extra team's triage agent runs away exactly as in the demo: it
calls as much more often as makes the team's spend jump tenfold. `--runaway team` instead
multiplies every call of the team tenfold, so each of its series jumps only tenfold against its
own baseline: the fast tier's thresholds (4x the previous-hour maximum of the 30 s rate) then need
most of the 30 s window to fill, and detection takes longer (the docstring of
jsonnet/config.libsonnet's llmSpikeFactor explains the trade-off).

Onset: the moment the team's spend changes as the exporters see it. The traffic generator takes
`time.monotonic()` right before it sends the first batch that carries the multiplied calls (the
POST to the token exporter, or the hand-over to the gateway's Kafka producer); the spend counters
move within the milliseconds that send takes, so the figures are, if anything, slightly long.

Measured per anomaly, on the same clock in this process:
- onset → webhook: arrival at the demo's webhook receiver (the receiver Alertmanager notifies next
  to the bridge) of the first firing fast-tier alert (`AIFinOpsLLMSpendSpike` or
  `AIFinOpsLLMTokenRunaway`) with the team's label;
- onset → Kafka: arrival, at a consumer of `cost-anomalies`, of the bridge's event for that alert.

Prints n, p50, p95 and max of each (nearest-rank percentiles), overall and per path. Target
(DESIGN.md): p95 ≤ 15 s onset → webhook; the reference setup measured p95 10.3 s.

    .venv/bin/python bench/latency.py [--anomalies 20] [--spread 120] [--warmup 30]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from aifinops.cli.alertwatch import AnomalyEvent, Notification
from aifinops.cli.demo import FAST_ALERTS, Interrupted, signals_stop
from aifinops.cli.demostack import DemoStack
from aifinops.cli.traffic import (
    DEFAULT_WORKLOADS,
    RUNAWAY_FACTOR,
    RUNAWAY_MODEL,
    RUNAWAY_TEAM,
    Injection,
    Workload,
)

# Each extra team is a copy of the team whose agent runs away in the demo.
TEAM_WORKLOADS = [w for w in DEFAULT_WORKLOADS if w.team == RUNAWAY_TEAM]
# How long to wait for an alert after its onset before counting it missing.
GIVE_UP_SECONDS = 60.0


@dataclass
class Sample:
    """One injected anomaly and what became of it."""

    team: str
    path: str
    injection: Injection
    webhook: Notification | None = None
    kafka: AnomalyEvent | None = None

    def done(self) -> bool:
        return self.webhook is not None and self.kafka is not None

    def latency(self, what: str) -> float | None:
        arrival = self.webhook if what == "webhook" else self.kafka
        if arrival is None or self.injection.onset_monotonic is None:
            return None
        return arrival.received - self.injection.onset_monotonic


def nearest_rank(values: list[float], p: float) -> float:
    """The nearest-rank percentile `p` (0..1) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def summary(name: str, values: list[float], missing: int) -> str:
    if not values:
        return f"{name:44} n=0 missing={missing}"
    return (
        f"{name:44} n={len(values):3} p50 {nearest_rank(values, 0.5):5.1f} s   "
        f"p95 {nearest_rank(values, 0.95):5.1f} s   max {max(values):5.1f} s"
        + (f"   missing {missing}" if missing else "")
    )


def main(argv: list[str] | None = None) -> int:
    try:
        with signals_stop():
            return run(argv)
    except (KeyboardInterrupt, Interrupted):
        print("interrupted: every process stopped", file=sys.stderr)
        return 130


def run(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anomalies", type=int, default=20)
    parser.add_argument("--spread", type=float, default=120.0, help="seconds the onsets span")
    parser.add_argument("--warmup", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--runaway",
        choices=["agent", "team"],
        default="agent",
        help="agent: the team's triage agent loops until the team spends tenfold (the demo); "
        "team: every call of the team comes ten times as often",
    )
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)

    samples: list[Sample] = []
    workloads: list[Workload] = list(DEFAULT_WORKLOADS)
    for i in range(args.anomalies):
        team = f"bench-{i:02d}"
        path = "http" if i % 2 == 0 else "kafka"
        workloads += [replace(w, team=team, path=path) for w in TEAM_WORKLOADS]

    with tempfile.TemporaryDirectory(prefix="aifinops-latency-") as tmp:
        # A steady rate whatever the hour: the same load on every run.
        stack = DemoStack(
            Path(tmp),
            workloads=workloads,
            daily_cycle=False,
            gpu_source="simulated",
            progress=lambda line: print(line),
        )
        traffic = None
        try:
            started = time.monotonic()
            stack.start()
            print(f"stack up in {time.monotonic() - started:.1f} s")
            assert stack.anomalies is not None
            traffic = stack.traffic(seed=args.seed)
            traffic.start()
            time.sleep(args.warmup)
            early = [n for n in stack.receiver.notifications.items() if n.alertname in FAST_ALERTS]
            if early:
                print(f"fast-tier alerts on normal traffic: {[n.labels for n in early]}")
            onsets = sorted(rng.uniform(0, args.spread) for _ in range(args.anomalies))
            t0 = time.monotonic()
            pending = list(range(args.anomalies))
            print(f"injecting {args.anomalies} runaways over {args.spread:.0f} s")
            while pending or any(
                not s.done()
                and (
                    s.injection.onset_monotonic is None
                    or time.monotonic() - s.injection.onset_monotonic < GIVE_UP_SECONDS
                )
                for s in samples
            ):
                now = time.monotonic() - t0
                while pending and onsets[len(samples)] <= now:
                    i = pending.pop(0)
                    team = f"bench-{i:02d}"
                    model = RUNAWAY_MODEL if args.runaway == "agent" else None
                    injection = traffic.runaway(team, model, RUNAWAY_FACTOR)
                    samples.append(Sample(team, "http" if i % 2 == 0 else "kafka", injection))
                for s in samples:
                    if s.webhook is None:
                        s.webhook = next(
                            (
                                n
                                for n in stack.receiver.notifications.items()
                                if n.status == "firing"
                                and n.alertname in FAST_ALERTS
                                and n.labels.get("team") == s.team
                            ),
                            None,
                        )
                    if s.kafka is None:
                        s.kafka = next(
                            (
                                e
                                for e in stack.anomalies.events.items()
                                if e.status == "firing"
                                and e.labels.get("alertname") in FAST_ALERTS
                                and e.labels.get("team") == s.team
                            ),
                            None,
                        )
                    if s.done() and not s.injection.stopped:
                        traffic.end(s.injection)  # keeps the load bounded
                time.sleep(0.05)
        finally:
            if traffic is not None:
                traffic.stop()
            stack.stop()

    print()
    print(
        f"{len(samples)} runaways (team spend tenfold, --runaway {args.runaway}), 5 s scrape, "
        "5 s fast group, group_wait 1 s; "
        f"machine shared, figures are noisy"
    )
    code = 0
    for what, label in (
        ("webhook", "onset -> webhook"),
        ("kafka", "onset -> cost-anomalies event"),
    ):
        for path in ("all", "http", "kafka"):
            chosen = [s for s in samples if path in ("all", s.path)]
            values = [v for s in chosen if (v := s.latency(what)) is not None]
            name = f"{label}" + ("" if path == "all" else f" ({path} path)")
            print(summary(name, values, len(chosen) - len(values)))
            if path == "all" and (len(values) < len(chosen) or not values):
                code = 1
    webhook = [v for s in samples if (v := s.latency("webhook")) is not None]
    if webhook:
        p95 = nearest_rank(webhook, 0.95)
        print(f"target p95 onset -> webhook <= 15 s: {'met' if p95 <= 15 else 'MISSED'}")
    return code


if __name__ == "__main__":
    sys.exit(main())
