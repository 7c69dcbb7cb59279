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

The tripwire path is measured in the same run: within the same `--spread`, `--tripwires` further
teams (default 20; half over HTTP to the token exporter, half written to Kafka by the gateway and
counted by the bridge) each make one call above `tripwires.request_usd`. Onset: `time.monotonic()`
right before that call is sent; measured: arrival of the `AIFinOpsSpendTripwire` alert with the
team's label at the same webhook receiver, and of its event on `cost-anomalies`. The daemons post
tripwires to the stack's Alertmanager (the demo leaves `tripwires.alertmanager_urls` empty); where
the shipped routing has no `aifinops_tier="tripwire"` route yet, one with `group_wait: 0s` is added
(and the run says so).

Prints n, p50, p95 and max of each (nearest-rank percentiles), overall and per path. Targets:
p95 ≤ 10 s onset → webhook on the rule path (docs/rules.md has the latest figures), p95 ≤ 1 s on
the tripwire path.

    .venv/bin/python bench/latency.py [--anomalies 20] [--tripwires 20] [--spread 120] [--warmup 30]

`--anomalies 0` measures the tripwire path alone (a short run).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from aifinops.cli.demo.alertwatch import AnomalyEvent, Notification
from aifinops.cli.demo.command import FAST_ALERTS, Interrupted, signals_stop
from aifinops.cli.demo.demostack import DemoStack
from aifinops.cli.demo.traffic import (
    DEFAULT_WORKLOADS,
    RUNAWAY_FACTOR,
    RUNAWAY_MODEL,
    RUNAWAY_TEAM,
    Injection,
    Workload,
)
from aifinops.exporters.events import USAGE_TYPE, make_event
from aifinops.exporters.tripwire import ALERTNAME as TRIPWIRE_ALERT

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


@dataclass
class TripwireSample:
    """One call above the single-call limit and when its tripwire arrived."""

    team: str
    path: str
    onset: float | None = None
    webhook: Notification | None = None
    kafka: AnomalyEvent | None = None

    def done(self) -> bool:
        return self.webhook is not None and self.kafka is not None

    def latency(self, what: str) -> float | None:
        arrival = self.webhook if what == "webhook" else self.kafka
        if arrival is None or self.onset is None:
            return None
        return arrival.received - self.onset


class TripwireStack(DemoStack):
    """The demo stack with the daemons' tripwires posting to its Alertmanager, and a tripwire route
    (group_wait 0s) where the shipped routing has none yet."""

    added_route = False

    def _alertmanager_config(self) -> dict[str, Any]:
        config = super()._alertmanager_config()
        routes = config["route"].setdefault("routes", [])
        if not any('aifinops_tier="tripwire"' in (r.get("matchers") or []) for r in routes):
            self.added_route = True
            routes.insert(
                0,
                {
                    "receiver": config["route"]["receiver"],
                    "matchers": ['aifinops_tier="tripwire"'],
                    "group_by": ["alertname", "cluster", "team", "tripwire", "app", "model"],
                    "group_wait": "0s",
                    "group_interval": "10s",
                    "repeat_interval": "1h",
                },
            )
        return config

    def _start_alertmanager(self) -> None:
        super()._start_alertmanager()
        # The daemons start after Alertmanager and read the file then.
        assert self.alertmanager is not None
        document = yaml.safe_load(self.config_path.read_text(encoding="utf-8"))
        document.setdefault("tripwires", {})["alertmanager_urls"] = [self.alertmanager.url]
        self.config_path.write_text(yaml.safe_dump(document, sort_keys=False))

    def expensive_call(self, team: str, path: str) -> float:
        """Send one $12 call of `team` (HTTP to the token exporter, or the gateway's Kafka);
        returns its onset (monotonic, taken right before the send)."""
        event = make_event(
            USAGE_TYPE,
            "bench-latency",
            {
                "provider": "openai",
                "model": "gpt-4.1",
                "team": team,
                "app": "agent",
                "input_tokens": 100_000,
                "output_tokens": 2_000,
                "cost_usd": 12.0,
            },
        )
        if path == "kafka":
            assert self.gateway is not None and self.config is not None
            onset = time.monotonic()
            self.gateway.publish(self.config.kafka.topics.usage.name, f"{team}/agent", event, {})
            return onset
        request = urllib.request.Request(
            f"{self.tokens.url}/v1/events",
            data=json.dumps(event).encode(),
            headers={"Content-Type": "application/cloudevents+json"},
            method="POST",
        )
        onset = time.monotonic()
        with urllib.request.urlopen(request, timeout=10) as resp:
            resp.read()
        return onset


def nearest_rank(values: list[float], p: float) -> float:
    """The nearest-rank percentile `p` (0..1) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def summary(name: str, values: list[float], missing: int) -> str:
    if not values:
        return f"{name:52} n=0 missing={missing}"
    return (
        f"{name:52} n={len(values):3} p50 {nearest_rank(values, 0.5):6.2f} s   "
        f"p95 {nearest_rank(values, 0.95):6.2f} s   max {max(values):6.2f} s"
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
    parser.add_argument("--tripwires", type=int, default=20, help="tripwire onsets (0: none)")
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
    trips = [
        TripwireSample(f"trip-{i:02d}", "http" if i % 2 == 0 else "kafka")
        for i in range(args.tripwires)
    ]
    workloads: list[Workload] = list(DEFAULT_WORKLOADS)
    for i in range(args.anomalies):
        team = f"bench-{i:02d}"
        path = "http" if i % 2 == 0 else "kafka"
        workloads += [replace(w, team=team, path=path) for w in TEAM_WORKLOADS]

    with tempfile.TemporaryDirectory(prefix="aifinops-latency-") as tmp:
        # A steady rate whatever the hour: the same load on every run.
        stack = TripwireStack(
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
            trip_onsets = sorted(rng.uniform(0, args.spread) for _ in trips)
            t0 = time.monotonic()
            pending = list(range(args.anomalies))
            print(
                f"injecting {args.anomalies} runaways and {len(trips)} tripwires over "
                f"{args.spread:.0f} s"
                + (
                    " (tripwire route added: the shipped routing has none)"
                    if stack.added_route
                    else ""
                )
            )
            while (
                pending
                or any(
                    not s.done()
                    and (
                        s.injection.onset_monotonic is None
                        or time.monotonic() - s.injection.onset_monotonic < GIVE_UP_SECONDS
                    )
                    for s in samples
                )
                or any(
                    not t.done()
                    and (t.onset is None or time.monotonic() - t.onset < GIVE_UP_SECONDS)
                    for t in trips
                )
            ):
                now = time.monotonic() - t0
                for trip, at in zip(trips, trip_onsets, strict=True):
                    if trip.onset is None and at <= now:
                        trip.onset = stack.expensive_call(trip.team, trip.path)
                    if trip.onset is None:
                        continue
                    if trip.webhook is None:
                        trip.webhook = next(
                            (
                                n
                                for n in stack.receiver.notifications.items()
                                if n.status == "firing"
                                and n.alertname == TRIPWIRE_ALERT
                                and n.labels.get("team") == trip.team
                            ),
                            None,
                        )
                    if trip.kafka is None:
                        trip.kafka = next(
                            (
                                e
                                for e in stack.anomalies.events.items()
                                if e.status == "firing"
                                and e.labels.get("alertname") == TRIPWIRE_ALERT
                                and e.labels.get("team") == trip.team
                            ),
                            None,
                        )
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
            if path == "all" and chosen and len(values) < len(chosen):
                code = 1
    webhook = [v for s in samples if (v := s.latency("webhook")) is not None]
    if webhook:
        p95 = nearest_rank(webhook, 0.95)
        print(f"target p95 onset -> webhook <= 10 s: {'met' if p95 <= 10 else 'MISSED'}")
    if trips:
        print()
        print(
            f"{len(trips)} tripwires (one call above tripwires.request_usd each), posted by the "
            "token exporter (http) or the bridge (kafka) straight to Alertmanager, group_wait 0s"
        )
        for what, label in (
            ("webhook", "tripwire onset -> webhook"),
            ("kafka", "tripwire onset -> cost-anomalies event"),
        ):
            for path in ("all", "http", "kafka"):
                chosen = [t for t in trips if path in ("all", t.path)]
                values = [v for t in chosen if (v := t.latency(what)) is not None]
                name = label + ("" if path == "all" else f" ({path} path)")
                print(summary(name, values, len(chosen) - len(values)))
                if path == "all" and (len(values) < len(chosen) or not values):
                    code = 1
        tripped = [v for t in trips if (v := t.latency("webhook")) is not None]
        if tripped:
            p95 = nearest_rank(tripped, 0.95)
            print(f"target p95 tripwire onset -> webhook <= 1 s: {'met' if p95 <= 1 else 'MISSED'}")
    return code


if __name__ == "__main__":
    sys.exit(main())
