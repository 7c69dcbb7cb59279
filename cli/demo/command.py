"""`aifinops demo`: the whole pipeline on this machine with realistic traffic, a runaway agent and an
idle GPU injected after a short warm-up, and a live view of spend and alerts in the terminal.

The stack (`demostack.DemoStack`) runs on loopback ports chosen at start in a temporary directory;
Ctrl-C or SIGTERM stops every process it started and removes the directory (`--workdir` keeps
it). With `--duration` the demo ends by itself and exits 1 when an injected runaway was not
notified within `CATCH_DEADLINE_SECONDS` of its onset, so it doubles as a smoke test.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from aifinops.exporters.gpu.sources import SOURCES

from .alertwatch import InjectedAnomaly, Notification
from .demostack import ALLOCATED_GPU, CURRENCIES, DEFAULT_CURRENCY, DemoStack
from .liveview import SYMBOLS, LiveView, fx_query
from .stack import StackError
from .traffic import RUNAWAY_FACTOR, RUNAWAY_MODEL, RUNAWAY_TEAM, Injection, TrafficGenerator

log = logging.getLogger(__name__)

SCENARIOS = {
    "all": "a runaway agent, then a GPU left idle",
    "runaway": "a runaway agent only",
    "idle-gpu": "a GPU left idle only",
    "none": "normal traffic, nothing injected",
}
# The product's promise (docs/architecture.md): a runaway is notified within 30 s of its onset.
CATCH_DEADLINE_SECONDS = 30.0
FAST_ALERTS = ("AIFinOpsLLMSpendSpike", "AIFinOpsLLMTokenRunaway")
# The simulated GPU the demo leaves idle: busy from the start, held by a pod of team nlp.
IDLE_GPU = ("sim-node-0", 0)


class Interrupted(BaseException):
    """SIGTERM (or SIGHUP) arrived: stop like Ctrl-C. A BaseException, like KeyboardInterrupt,
    so that no `except Exception` on the way swallows it."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo's options."""
    parser.add_argument(
        "--duration",
        type=float,
        default=0,
        metavar="SECONDS",
        help="stop after this many seconds from the start of traffic (default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--scenario",
        choices=sorted(SCENARIOS),
        default="all",
        help="what to inject after the warm-up: "
        + "; ".join(f"{k}: {v}" for k, v in SCENARIOS.items()),
    )
    parser.add_argument(
        "--no-traffic",
        action="store_true",
        help="start the stack without the traffic generator (send your own events to the "
        "usage API); only the idle GPU is injected",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=25.0,
        metavar="SECONDS",
        help="normal traffic before the first injection (default 25)",
    )
    parser.add_argument(
        "--gpu-source",
        # The registered sources that need no other service (dcgm needs a dcgm-exporter).
        choices=["auto", *(name for name, kind in SOURCES.items() if kind.standalone)],
        default="auto",
        help="GPU exporter source; auto uses NVML when it finds a GPU, else the simulator",
    )
    parser.add_argument(
        "--currency",
        choices=list(CURRENCIES),
        default=DEFAULT_CURRENCY,
        help="reporting currency: the rule pack, alerts and live view in it (default GBP)",
    )
    parser.add_argument(
        "--workdir",
        metavar="DIR",
        help="keep configs, logs and data in DIR instead of a temporary directory removed at exit",
    )


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def signals_stop() -> Iterator[None]:
    """Turn Ctrl-C, SIGTERM and SIGHUP into an exception in the main thread, once: further
    signals are ignored so that a second Ctrl-C cannot cut the clean-up short. Whoever runs a
    `DemoStack` uses it, so that its `finally` stops the processes (they run in sessions of their
    own and would outlive a process killed by the default SIGTERM handler)."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Interrupted(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@dataclass
class Outcome:
    """What the demo saw of one injected runaway."""

    anomaly: InjectedAnomaly
    first_alert: Notification | None = None

    @property
    def latency(self) -> float | None:
        """Seconds from onset to the first fast-tier notification about it."""
        if self.first_alert is None or self.anomaly.onset is None:
            return None
        return self.first_alert.received - self.anomaly.onset


def first_fast_alert(stack: DemoStack, anomaly: InjectedAnomaly) -> Notification | None:
    """The first firing fast-tier notification about `anomaly` that reached the demo's receiver."""
    for n in stack.receiver.notifications.items():
        if n.status == "firing" and n.alertname in FAST_ALERTS and anomaly.matches(n.labels):
            return n
    return None


def inject_idle_gpu(stack: DemoStack, node: str, gpu: int) -> InjectedAnomaly:
    """Leave a simulated GPU idle (still held by its pod) through the exporter's simulator hook."""
    team = "?"
    if stack.prometheus is not None:
        held = stack.prometheus.query(f'aifinops_gpu_allocated{{node="{node}", gpu="{gpu}"}}')
        if held:
            team = held[0]["metric"].get("team", "") or "?"
    request = urllib.request.Request(
        f"{stack.gpu.url}/-/simulator",
        data=json.dumps({"node": node, "gpu": gpu, "pattern": "idle"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    onset, onset_wall = time.monotonic(), time.time()
    with urllib.request.urlopen(request, timeout=5) as resp:
        resp.read()
    return InjectedAnomaly(
        "gpu",
        team,
        f"GPU left idle: {node} GPU {gpu} (team {team}) stays held by its pod at 0-2 % "
        "utilisation; its idle cost now grows at nearly its full price",
        onset=onset,
        onset_wall=onset_wall,
    )


def allocated_gpu_anomaly(
    stack: DemoStack, node: str, gpu: int, onset: float, onset_wall: float
) -> InjectedAnomaly | None:
    """The fleet's GPU allocated to a pod that never runs a process, as the exporter reports it
    from the simulated kubelet's allocation (None until Prometheus has scraped it): the pod, its
    team and the idle cost it is charged."""
    if stack.prometheus is None:
        return None
    where = f'node="{node}", gpu="{gpu}"'
    held = stack.prometheus.query(f"aifinops_gpu_allocated{{{where}}}")
    price = stack.prometheus.query(f"max(aifinops_gpu_hourly_cost_usd{{{where}}})")
    if not held or not price:
        return None
    labels = held[0]["metric"]
    team = labels.get("team", "")
    # In the reporting currency at the rate the exporters serve, as the live view's figures are;
    # in dollars, said so, until a rate is served.
    currency = getattr(stack, "currency", "USD")
    rate = stack.prometheus.query(fx_query(currency)) if currency != "USD" else []
    code = currency if rate else "USD"
    hourly = float(price[0]["value"][1]) * (float(rate[0]["value"][1]) if rate else 1.0)
    cost = f"{SYMBOLS.get(code, code + ' ')}{hourly:,.2f}/h"
    return InjectedAnomaly(
        "gpu",
        team,
        f"GPU allocated, never used: {node} GPU {gpu} is allocated by the kubelet to pod "
        f"{labels.get('namespace')}/{labels.get('pod')} (team {team or '?'}), which runs no "
        f"process on it: its {cost} is all that pod's idle cost; AIFinOpsGPUIdle fires "
        "for it after 15 min",
        onset=onset,
        onset_wall=onset_wall,
    )


def runaway_anomaly(injection: Injection) -> InjectedAnomaly:
    """The view's record of a runaway injection (its onset is filled in once it has begun)."""
    return InjectedAnomaly(
        "llm",
        injection.team,
        f"runaway agent: an agent of team {injection.team} loops on "
        f"{injection.model or 'all its models'}, calling it {injection.factor:.0f}x as often: "
        f"the team's LLM spend jumps {injection.team_factor:g}-fold",
        model=injection.model,
    )


def started_anomaly(injection: Injection, timeout: float = 10.0) -> InjectedAnomaly:
    """Wait until a runaway has begun; its record with the onset set. Raises `TimeoutError`."""
    if not injection.started.wait(timeout):
        raise TimeoutError(f"the runaway of team {injection.team} did not begin in {timeout}s")
    anomaly = runaway_anomaly(injection)
    anomaly.onset, anomaly.onset_wall = injection.onset_monotonic, injection.onset_wall
    return anomaly


class Demo:
    """One run of the demo: the stack, the traffic, the scenario's timeline and the view."""

    def __init__(self, args: argparse.Namespace, workdir: Path, out: Any = sys.stdout) -> None:
        self.args = args
        self.out = out
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self.stack = DemoStack(
            workdir,
            gpu_source=args.gpu_source,
            currency=getattr(args, "currency", DEFAULT_CURRENCY),
            progress=self._progress,
        )
        self.traffic: TrafficGenerator | None = None
        self.anomalies: list[InjectedAnomaly] = []
        self.runaways: list[tuple[Injection, Outcome]] = []
        self.started = 0.0

    def _progress(self, line: str) -> None:
        self.out.write(f"aifinops demo: {line}\n")
        self.out.flush()

    def run(self) -> int:
        """Start everything, play the scenario, show the view until the end; returns the exit code."""
        try:
            self.stack.start()
            if not self.args.no_traffic:
                self.traffic = self.stack.traffic()
                self.traffic.start()
            self._print_urls()
            self.started = time.monotonic()
            self._loop()
        finally:
            # A signal now must not cut the clean-up short.
            if threading.current_thread() is threading.main_thread():
                for sig in STOP_SIGNALS:
                    signal.signal(sig, signal.SIG_IGN)
            if self.traffic is not None:
                self.traffic.stop()
            self._progress("stopping every process")
            self.stack.stop()
        return self.summary()

    def _print_urls(self) -> None:
        for name, url in self.stack.urls().items():
            self._progress(f"{name:24} {url}")

    def _header(self) -> list[str]:
        urls = self.stack.urls()
        s = self.stack
        return [
            f"Prometheus {urls['Prometheus']}   Alertmanager {urls['Alertmanager']}   "
            f"Kafka {urls['Kafka bootstrap']}",
            f"/metrics: gpu exporter {s.gpu.url}  token exporter {s.tokens.url}  "
            f"bridge {s.bridge.url}",
            f"usage API: POST {urls['usage API']}   OTLP: POST {urls['OTLP traces']}",
            f"reporting currency: {s.currency}   (docs/demo.md explains this screen)",
        ]

    def _status(self) -> str:
        elapsed = time.monotonic() - self.started
        end = f", ends in {max(0, self.args.duration - elapsed):.0f}s" if self.args.duration else ""
        sent = ""
        if self.traffic is not None:
            s = self.traffic.stats
            sent = (
                f"; sent {s.http_events} events over HTTP, {s.otlp_events} as OTLP spans, "
                f"{s.kafka_events} to Kafka"
            )
        watchdog = [
            n
            for n in self.stack.receiver.notifications.items()
            if n.alertname == "AIFinOpsWatchdog"
        ]
        heard = (
            f"; watchdog last heard {time.monotonic() - watchdog[-1].received:.0f}s ago"
            " (re-sent every 5 min)"
            if watchdog
            else ""
        )
        return (
            f"aifinops demo: running {elapsed:.0f}s{end}{sent}{heard}. Ctrl-C stops every process."
        )

    def _loop(self) -> None:
        scenario = self.args.scenario
        runaway_at = self.args.warmup if scenario in ("all", "runaway") else None
        idle_at = (
            self.args.warmup + (10 if runaway_at is not None else 0)
            if scenario in ("all", "idle-gpu")
            else None
        )
        if self.traffic is None:
            runaway_at = None
        if self.stack.gpu_source != "simulated":
            idle_at = None
        # The simulated fleet's allocated-but-unused GPU: shown once the exporter reports it.
        allocated_pending = self.stack.gpu_source == "simulated"
        started_wall = time.time() - (time.monotonic() - self.started)
        view = LiveView(
            self.stack.prometheus,  # type: ignore[arg-type]
            lambda: [
                n
                for n in self.stack.receiver.notifications.items()
                if n.alertname != "AIFinOpsWatchdog"
            ],
            lambda: [
                e
                for e in (self.stack.anomalies.events.items() if self.stack.anomalies else [])
                if e.labels.get("alertname") != "AIFinOpsWatchdog"
            ],
            self.anomalies,
            header=self._header(),
            out=self.out,
            tty=self.tty,
            currency=self.stack.currency,
            otlp_apps={w.app for w in self.stack.workloads if w.path == "otlp"},
        )
        while True:
            elapsed = time.monotonic() - self.started
            if self.args.duration and elapsed >= self.args.duration:
                return
            if runaway_at is not None and elapsed >= runaway_at:
                runaway_at = None
                assert self.traffic is not None
                injection = self.traffic.runaway(RUNAWAY_TEAM, RUNAWAY_MODEL, RUNAWAY_FACTOR)
                anomaly = runaway_anomaly(injection)
                self.anomalies.append(anomaly)
                self.runaways.append((injection, Outcome(anomaly)))
            if idle_at is not None and elapsed >= idle_at:
                idle_at = None
                self.anomalies.append(inject_idle_gpu(self.stack, *IDLE_GPU))
            if allocated_pending:
                note = allocated_gpu_anomaly(
                    self.stack, *ALLOCATED_GPU, onset=self.started, onset_wall=started_wall
                )
                if note is not None:
                    allocated_pending = False
                    self.anomalies.append(note)
            for injection, outcome in self.runaways:
                if outcome.anomaly.onset is None and injection.started.is_set():
                    outcome.anomaly.onset = injection.onset_monotonic
                    outcome.anomaly.onset_wall = injection.onset_wall
                if outcome.first_alert is None and outcome.anomaly.onset is not None:
                    outcome.first_alert = first_fast_alert(self.stack, outcome.anomaly)
            for process in self.stack.processes.values():
                process.check_alive()
            view.refresh(self._status())
            time.sleep(1.0 if self.tty else 0.5)

    def summary(self) -> int:
        """Print how each runaway was caught; 1 when one was not notified in time."""
        code = 0
        for _injection, outcome in self.runaways:
            a = outcome.anomaly
            if outcome.latency is not None:
                assert outcome.first_alert is not None
                self._progress(
                    f"runaway of team {a.team} caught: {outcome.first_alert.alertname} reached "
                    f"the webhook {outcome.latency:.1f} s after onset"
                )
                if outcome.latency > CATCH_DEADLINE_SECONDS:
                    code = 1
            elif a.onset is not None and time.monotonic() - a.onset >= CATCH_DEADLINE_SECONDS:
                self._progress(
                    f"runaway of team {a.team}: no fast-tier alert within "
                    f"{CATCH_DEADLINE_SECONDS:.0f} s of onset"
                )
                code = 1
        return code


def run(args: argparse.Namespace) -> int:
    """The verb: run the demo in a work directory; returns the exit code."""
    keep = args.workdir is not None
    workdir = Path(args.workdir) if keep else Path(tempfile.mkdtemp(prefix="aifinops-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    # The demo's own log (producer, Kafka client) goes to a file: the terminal is the view's.
    logging.basicConfig(
        filename=workdir / "demo.log",
        level=logging.INFO,
        format="ts=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)r",
    )
    demo = Demo(args, workdir)
    try:
        with signals_stop():
            return demo.run()
    except (KeyboardInterrupt, Interrupted):
        print("aifinops demo: stopped", file=sys.stderr)
        return demo.summary()
    except StackError as exc:
        print(f"aifinops demo: {exc}", file=sys.stderr)
        return 1
    finally:
        if keep:
            print(f"aifinops demo: configs, logs and data are in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
