"""End to end on the demo's own stack (`DemoStack`: broker, topics, Prometheus with the generated rules
in the demo's reporting currency (GBP), Alertmanager with the shipped routing, GPU exporter, token
exporter, bridge): normal traffic raises no fast alert; a tenfold runaway reaches the webhook (its
description in pounds) and `cost-anomalies` within 30 s of its onset; an idle GPU shows as idle
spend; every dashboard panel has data; every event is counted once on each path (HTTP, OTLP spans,
Kafka); and Ctrl-C or SIGTERM ends every process `aifinops demo` started and removes
its files."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from aifinops.cli.demo.alertwatch import AnomalyEvent, InjectedAnomaly, Notification
from aifinops.cli.demo.command import (
    CATCH_DEADLINE_SECONDS,
    FAST_ALERTS,
    IDLE_GPU,
    inject_idle_gpu,
    started_anomaly,
)
from aifinops.cli.demo.demostack import DemoStack, rule_files
from aifinops.cli.demo.traffic import RUNAWAY_FACTOR, RUNAWAY_MODEL, RUNAWAY_TEAM, TrafficGenerator
from aifinops.exporters.events import ANOMALY_TYPE
from support.dashboards import load_dashboards, panels_without_data

pytestmark = pytest.mark.integration

# Normal traffic before the injection: the 30 s rate windows fill and the fast group evaluates
# them several times, so an alert on normal traffic would have shown by then.
WARMUP_SECONDS = 20.0
# How long the fixture waits for arrivals; the tests assert the 30 s promise on what it got.
WAIT_SECONDS = 45.0


@dataclass
class Run:
    """The stack after the scenario: what arrived before and after the injections."""

    stack: DemoStack
    traffic: TrafficGenerator
    runaway: InjectedAnomaly
    idle_gpu: InjectedAnomaly
    before_injection: list[Notification]
    alert: Notification | None
    event: AnomalyEvent | None

    def logs(self) -> str:
        """Every process's log tail, for failure messages."""
        return "\n".join(
            f"--- {p.name} ({p.log_path})\n{p.log_tail(30)}" for p in self.stack.logs()
        )


def _about_runaway(labels: dict[str, str] | object, anomaly: InjectedAnomaly) -> bool:
    return (
        isinstance(labels, dict)
        and labels.get("alertname") in FAST_ALERTS
        and anomaly.matches(labels)
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    stack = DemoStack(
        Path(tmp_path_factory.mktemp("e2e")),
        gpu_source="simulated",
        kafka_external=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
    )
    traffic: TrafficGenerator | None = None
    try:
        stack.start()
        traffic = stack.traffic(seed=9)
        traffic.start()
        time.sleep(WARMUP_SECONDS)
        before = [n for n in stack.receiver.notifications.items() if n.alertname in FAST_ALERTS]
        runaway = started_anomaly(traffic.runaway(RUNAWAY_TEAM, RUNAWAY_MODEL, RUNAWAY_FACTOR))
        idle = inject_idle_gpu(stack, *IDLE_GPU)
        alert = stack.receiver.notifications.wait_for(
            lambda n: n.status == "firing" and _about_runaway(dict(n.labels), runaway),
            WAIT_SECONDS,
        )
        assert runaway.onset is not None and stack.anomalies is not None
        left = max(1.0, runaway.onset + WAIT_SECONDS - time.monotonic())
        event = stack.anomalies.events.wait_for(
            lambda e: e.status == "firing" and _about_runaway(dict(e.labels), runaway), left
        )
        yield Run(stack, traffic, runaway, idle, before, alert, event)
    finally:
        if traffic is not None:
            traffic.stop()
        stack.stop()


def test_normal_traffic_raises_no_fast_tier_alert(run: Run):
    assert run.before_injection == [], [n.labels for n in run.before_injection]


def test_the_fast_tier_has_a_baseline_for_every_team_and_model(run: Run):
    # The recorded history the demo writes before Prometheus starts is what the fast tier's
    # baseline rules need: each team and model of the fleet has one, so the runaway is judged
    # against its own previous-hour maximum.
    prometheus = run.stack.prometheus
    assert prometheus is not None
    expected = {(w.team, w.model) for w in run.stack.workloads}
    baselines = [
        rule["record"]
        for path in rule_files(run.stack.rules_dir)
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule and "max_over_time(team_model:aifinops_llm" in rule["expr"]
    ]
    assert baselines, "the fast tier records LLM baselines"
    for record in baselines:
        result = prometheus.query(record)
        assert {(s["metric"]["team"], s["metric"]["model"]) for s in result} == expected, record


def test_the_runaway_reaches_the_webhook_within_30_seconds_of_onset(run: Run):
    assert run.alert is not None, f"no fast-tier alert about the runaway\n{run.logs()}"
    assert run.runaway.onset is not None
    latency = run.alert.received - run.runaway.onset
    assert latency <= CATCH_DEADLINE_SECONDS, f"{run.alert.alertname} after {latency:.1f} s"
    labels = run.alert.labels
    assert labels["team"] == RUNAWAY_TEAM and labels["model"] == RUNAWAY_MODEL
    assert labels["aifinops_tier"] == "fast" and labels["severity"] == "critical"
    # The demo reports in pounds: the money in the delivered description is converted.
    assert run.stack.currency == "GBP"
    assert "£" in run.alert.annotations["description"], run.alert.annotations["description"]
    assert run.alert.annotations["runbook_url"]


def test_the_runaway_is_published_to_cost_anomalies_within_30_seconds(run: Run):
    assert run.event is not None, f"no cost-anomalies event about the runaway\n{run.logs()}"
    assert run.runaway.onset is not None
    latency = run.event.received - run.runaway.onset
    assert latency <= CATCH_DEADLINE_SECONDS, f"event after {latency:.1f} s"
    event = run.event.event
    assert event["type"] == ANOMALY_TYPE
    alert = run.event.alert
    assert alert["status"] == "firing"
    assert alert["labels"]["team"] == RUNAWAY_TEAM
    # Keyed by the alert's fingerprint, which Alertmanager also sent to the webhook.
    fingerprints = {
        n.fingerprint
        for n in run.stack.receiver.notifications.items()
        if n.labels.get("alertname") == alert["labels"]["alertname"]
        and n.labels.get("team") == RUNAWAY_TEAM
    }
    assert run.event.key == alert["fingerprint"] and alert["fingerprint"] in fingerprints
    assert alert["startsAt"] and alert["annotations"]["summary"] and "receivedAt" in alert


def test_the_idle_gpu_shows_as_idle_spend_at_nearly_its_price(run: Run):
    node, gpu = IDLE_GPU
    prometheus = run.stack.prometheus
    assert prometheus is not None
    price = prometheus.query(f'aifinops_gpu_hourly_cost_usd{{node="{node}", gpu="{gpu}"}}')
    assert price, run.logs()
    usd_per_hour = float(price[0]["value"][1])
    # The idle pattern runs at 0-2 % utilisation: once the 30 s window holds only idle samples,
    # the idle cost rate is at least 98 % of the price, and the pod still holds the GPU.
    prometheus.wait_for(
        f'sum(rate(aifinops_gpu_idle_cost_usd_total{{node="{node}", gpu="{gpu}"}}[30s])) * 3600'
        f" > {0.95 * usd_per_hour}",
        timeout=60,
    )
    held = prometheus.query(f'aifinops_gpu_allocated{{node="{node}", gpu="{gpu}"}}')
    assert held and held[0]["metric"]["team"] == run.idle_gpu.team != "?"


def test_every_dashboard_panel_has_data(run: Run):
    assert run.stack.prometheus is not None
    # The savings dashboard waits for the savings group's first evaluation (within its 5-minute
    # interval) and for a day of LLM history; test_savings_prometheus.py checks its GPU panels
    # over the demo's recorded history.
    # The dashboards rendered in the stack's currency (their money panels read aifinops_fx_rate).
    dashboards = [
        d
        for name, d in load_dashboards(run.stack.dashboards_dir).items()
        if name != "aifinops-savings.json"
    ]
    # The currency variable holds one code (no "All"): the stack's.
    missing = panels_without_data(
        run.stack.prometheus, dashboards, variables={"currency": run.stack.currency}
    )
    assert missing == []


def test_every_event_is_counted_once_on_its_path(run: Run):
    # Stop the traffic, then the counters must settle on exactly what was sent: HTTP events and
    # OTLP spans in the token exporter (the bridge skips its copies by the counted-in header),
    # the gateway's Kafka events in the bridge.
    run.traffic.stop()
    stats = run.traffic.stats
    assert stats.http_failures == 0 and stats.otlp_failures == 0, stats.last_error
    assert stats.http_events > 0 and stats.kafka_events > 0 and stats.otlp_events > 0
    prometheus = run.stack.prometheus
    assert prometheus is not None
    prometheus.wait_for(
        'sum(aifinops_ingest_events_total{job="aifinops-token-exporter", source="otlp_traces",'
        f' outcome="accepted"}}) == {stats.otlp_events}',
        timeout=30,
    )
    for job, requests, tokens in (
        (
            "aifinops-token-exporter",
            stats.http_events + stats.otlp_events,
            stats.http_tokens + stats.otlp_tokens,
        ),
        ("aifinops-bridge", stats.kafka_events, stats.kafka_tokens),
    ):
        prometheus.wait_for(
            f'sum(aifinops_llm_requests_total{{job="{job}"}}) == {requests}'
            f' and on () sum(aifinops_llm_tokens_total{{job="{job}"}}) == {tokens}',
            timeout=30,
        )
    # The token exporter published each event it counted; the bridge read and skipped them all.
    assert run.stack.config is not None
    usage_topic = run.stack.config.kafka.topics.usage.name
    prometheus.wait_for(
        f'sum(aifinops_bridge_messages_total{{job="aifinops-bridge", topic="{usage_topic}",'
        f' result="skipped"}}) == {stats.http_events + stats.otlp_events}',
        timeout=30,
    )


def _processes_under(root: Path) -> dict[int, str]:
    """Live processes whose working directory is inside `root` (every process the demo starts
    runs in its own directory of the demo's work directory): pid -> command name."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if state != "Z" and (cwd == str(root) or cwd.startswith(f"{root}/")):
            found[int(entry.name)] = name
    return found


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stop_signal_ends_every_process_of_the_demo_and_removes_its_files(
    tmp_path: Path, sig: signal.Signals
):
    # `aifinops demo` makes its temporary directory under $TMPDIR.
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    demo = subprocess.Popen(
        [sys.executable, "-m", "aifinops.cli", "demo", "--scenario", "none", "--no-traffic"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    output: list[str] = []
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            output.append(line)
            if "Kafka bootstrap" in line:  # the last URL printed once everything is up
                break
        workdirs = list(tmp_path.glob("aifinops-demo-*"))
        assert len(workdirs) == 1, "".join(output)
        started = _processes_under(workdirs[0])
        # tansu, prometheus, alertmanager and the three daemons
        assert len(started) >= 6, (started, "".join(output))
        demo.send_signal(sig)
        rest, _ = demo.communicate(timeout=90)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        leftovers = _processes_under(tmp_path)
        for pid in leftovers:  # a failed run must not leave the stack behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert leftovers == {}, leftovers
    output.append(rest)
    assert demo.returncode == 0, "".join(output)
    assert not workdirs[0].exists()
    assert not [pid for pid in started if Path(f"/proc/{pid}").exists()], started
    assert "stopping every process" in rest
