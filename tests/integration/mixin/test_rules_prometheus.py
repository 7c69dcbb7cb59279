"""The rule pack in a real Prometheus 2.42 and Alertmanager 0.25: the shipped files load with their
tier intervals, every rule of every group evaluates without error on data shaped like the
exporters' (the same families under the three aifinops jobs, GPUs seen twice), and the shipped
Alertmanager routes deliver a fast alert within seconds while a pipeline outage inhibits it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from aifinops.cli.demo.stack import wait_until
from aifinops.exporters.runtime.http import HTTPServer

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
RULE_FILES = sorted((REPO / "rules").glob("aifinops-*.yaml"))
INTERVALS = {
    "aifinops-fast": 5,
    "aifinops-burn": 30,
    "aifinops-anomaly": 300,
    "aifinops-waste": 30,
    "aifinops-pipeline": 30,
    "aifinops-savings": 300,
}
JOBS = ("aifinops-token-exporter", "aifinops-gpu-exporter", "aifinops-bridge")


class Families(Collector):
    """Every metric family the rules read (docs/architecture.md "Metrics"), counters growing with time."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def collect(self) -> Iterable[Metric]:
        t = time.monotonic() - self.start + 1

        def counter(name: str, labels: list[str], rows: list[tuple[list[str], float]]) -> Metric:
            family = CounterMetricFamily(name.removesuffix("_total"), name, labels=labels)
            for values, per_second in rows:
                family.add_metric(values, per_second * t)
            return family

        def gauge(name: str, labels: list[str], rows: list[tuple[list[str], float]]) -> Metric:
            family = GaugeMetricFamily(name, name, labels=labels)
            for values, value in rows:
                family.add_metric(values, value)
            return family

        llm = ["provider", "model", "team", "app", "token_type"]
        yield counter(
            "aifinops_llm_cost_usd_total",
            llm,
            [
                (["openai", "gpt-4.1", "search", "chat", "output"], 0.02),
                (["openai", "gpt-4.1", "search", "chat", "input"], 0.01),
                (["anthropic", "claude-sonnet-4", "ml", "agent", "cache_read"], 0.005),
                (["openai", "gpt-4.1", "", "script", "output"], 0.002),
                (["openai", "gpt-4.1", "__other__", "x", "output"], 0.001),
            ],
        )
        yield counter(
            "aifinops_llm_tokens_total",
            llm,
            [
                (["openai", "gpt-4.1", "search", "chat", "output"], 800),
                (["anthropic", "claude-sonnet-4", "ml", "agent", "cache_read"], 3000),
            ],
        )
        yield counter(
            "aifinops_llm_requests_total",
            ["provider", "model", "team", "app", "status"],
            [
                (["openai", "gpt-4.1", "search", "chat", "ok"], 2),
                (["anthropic", "claude-sonnet-4", "ml", "agent", "error"], 0.1),
            ],
        )
        yield counter(
            "aifinops_llm_unpriced_requests_total", ["provider", "model"], [(["x", "y"], 0.1)]
        )
        yield gauge(
            "aifinops_budget_usd",
            ["team", "period"],
            [(["search", "daily"], 500), (["search", "monthly"], 9000), (["ml", "monthly"], 100)],
        )
        gpu = ["node", "gpu", "uuid"]
        gpus = [(["n1", "0", "GPU-0"], 0.02), (["n1", "1", "GPU-1"], 0.9)]
        yield gauge("aifinops_gpu_info", [*gpu, "model"], [([*g, "H100"], 1) for g, _ in gpus])
        yield gauge("aifinops_gpu_utilization_ratio", gpu, gpus)
        yield gauge(
            "aifinops_gpu_hourly_cost_usd", [*gpu, "model"], [([*g, "H100"], 4.0) for g, _ in gpus]
        )
        holder = ["namespace", "pod", "container", "team"]
        yield gauge(
            "aifinops_gpu_allocated",
            [*gpu, *holder],
            [
                (["n1", "0", "GPU-0", "ml", "train-0", "main", "ml"], 1),
                # time-sliced between two pods
                (["n1", "1", "GPU-1", "ml", "serve-0", "main", "ml"], 1),
                (["n1", "1", "GPU-1", "web", "serve-1", "main", "search"], 1),
            ],
        )
        owner = ["namespace", "pod", "team"]
        yield gauge(
            "aifinops_gpu_allocation_share_ratio",
            [*gpu, *owner],
            [
                (["n1", "0", "GPU-0", "ml", "train-0", "ml"], 1),
                (["n1", "1", "GPU-1", "ml", "serve-0", "ml"], 0.5),
                (["n1", "1", "GPU-1", "web", "serve-1", "search"], 0.5),
            ],
        )
        yield counter(
            "aifinops_gpu_cost_usd_total",
            [*gpu, *owner],
            [(["n1", "0", "GPU-0", "ml", "train-0", "ml"], 4 / 3600)],
        )
        yield counter(
            "aifinops_gpu_idle_cost_usd_total",
            [*gpu, *owner],
            [(["n1", "0", "GPU-0", "ml", "train-0", "ml"], 3.9 / 3600)],
        )
        yield gauge("aifinops_collector_success", ["collector"], [(["source"], 1)])
        yield counter(
            "aifinops_series_overflow_total", ["metric"], [(["aifinops_llm_cost_usd_total"], 0.01)]
        )
        yield gauge(
            "aifinops_bridge_consumer_lag_messages",
            ["topic", "partition"],
            [(["ai-api-costs", "0"], 12), (["ai-api-costs", "1"], 3)],
        )
        yield counter(
            "aifinops_bridge_messages_total",
            ["topic", "result"],
            [(["ai-api-costs", "applied"], 10), (["ai-api-costs", "invalid"], 0.01)],
        )
        yield counter("aifinops_bridge_produce_errors_total", ["topic"], [(["ai-api-costs"], 0)])


@pytest.fixture
def target() -> Iterator[HTTPServer]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Families())
    server = HTTPServer("127.0.0.1:0", registry)
    server.start()
    yield server
    server.stop()


def scrape_configs(port: int, interval: str) -> list[dict]:
    return [
        {
            "job_name": job,
            "scrape_interval": interval,
            "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
        }
        for job in JOBS
    ]


def test_shipped_rule_files_load_with_their_tier_intervals(prometheus_factory, target):
    prom = prometheus_factory(
        rule_files=RULE_FILES, scrape_configs=scrape_configs(target.port, "5s")
    )
    loaded = {g["name"]: g for g in prom.api("rules")["groups"]}
    assert {name: g["interval"] for name, g in loaded.items()} == INTERVALS
    shipped = sum(len(yaml.safe_load(p.read_text())["groups"][0]["rules"]) for p in RULE_FILES)
    assert sum(len(g["rules"]) for g in loaded.values()) == shipped

    def fast_evaluated() -> bool:
        fast = next(g for g in prom.api("rules")["groups"] if g["name"] == "aifinops-fast")
        return all(r["health"] != "unknown" for r in fast["rules"])

    wait_until(fast_evaluated, 30, "the fast group to evaluate")
    fast = next(g for g in prom.api("rules")["groups"] if g["name"] == "aifinops-fast")
    assert [(r["name"], r.get("lastError")) for r in fast["rules"] if r["health"] != "ok"] == []


def test_every_group_evaluates_without_error_on_exporter_shaped_data(
    prometheus_factory, target, tmp_path
):
    # The same rules at a 1 s cadence, so the 30 s and 5 m groups evaluate within the test.
    fast_copies = []
    for path in RULE_FILES:
        copy = tmp_path / path.name
        copy.write_text(re.sub(r'interval: "\w+"', 'interval: "1s"', path.read_text()))
        fast_copies.append(copy)
    prom = prometheus_factory(
        rule_files=fast_copies, scrape_configs=scrape_configs(target.port, "1s")
    )

    def all_evaluated_twice() -> bool:
        groups = prom.api("rules")["groups"]
        return (
            len(groups) == len(INTERVALS)
            and all(r["health"] != "unknown" for g in groups for r in g["rules"])
            and bool(prom.query("team_model:aifinops_llm_cost_usd:rate30s"))
        )

    wait_until(all_evaluated_twice, 60, "every rule to evaluate")
    time.sleep(3)  # a few more evaluations, with rate() windows holding several samples
    failures = [
        (g["name"], r["name"], r.get("lastError"))
        for g in prom.api("rules")["groups"]
        for r in g["rules"]
        if r["health"] != "ok" or r.get("lastError")
    ]
    assert failures == []

    def value(expr: str) -> dict[str, float]:
        return {
            ",".join(f"{k}={v}" for k, v in sorted(s["metric"].items()) if k != "__name__"): float(
                s["value"][1]
            )
            for s in prom.query(expr)
        }

    # Three jobs see the same GPUs: counted once; the time-sliced GPU split between its pods.
    gpu = value("team:aifinops_gpu_hourly_cost_usd:sum")
    assert gpu == {"team=ml": 6.0, "team=search": 2.0}
    assert set(value("team:aifinops_spend_usd_per_second:avg5m")) == {
        "team=search",
        "team=ml",
        "",
        "team=__other__",
    }
    assert set(value("team_period:aifinops_budget_usd_per_second:sustainable")) == {
        "period=daily,team=search",
        "period=monthly,team=search",
        "period=monthly,team=ml",
    }
    assert set(value("team_period:aifinops_spend_usd:period_to_date")) == {
        "period=daily,team=search",
        "period=monthly,team=search",
        "period=monthly,team=ml",
    }
    assert value('ALERTS{alertname="AIFinOpsWatchdog",alertstate="firing"}')


def shipped_alertmanager_config(webhook_url: str) -> str:
    """rules/alertmanager.yaml with its bridge webhook pointed at the test's receiver."""
    text = (REPO / "rules" / "alertmanager.yaml").read_text()
    (url,) = re.findall(r"- url: (\S+)", text)
    return text.replace(url, webhook_url)


def alert(name: str, tier: str, **labels: str) -> dict:
    return {
        "labels": {"alertname": name, "aifinops_tier": tier, "severity": "critical", **labels},
        "annotations": {"summary": name, "description": f"{name} for test"},
    }


def am_alerts(am, **matchers: str) -> list[dict]:
    import json
    import urllib.parse
    import urllib.request

    query = urllib.parse.urlencode([("filter", f'{k}="{v}"') for k, v in matchers.items()])
    with urllib.request.urlopen(f"{am.url}/api/v2/alerts?{query}", timeout=10) as resp:
        return json.load(resp)


def test_shipped_routes_notify_a_fast_alert_within_seconds(alertmanager_factory, webhook):
    am = alertmanager_factory(shipped_alertmanager_config(webhook.url))
    start = time.monotonic()
    am.post_alerts([alert("AIFinOpsLLMSpendSpike", "fast", team="a", model="m")])
    webhook.wait_for(lambda bodies: len(bodies) >= 1, timeout=10)
    arrival, body = webhook.received[0]
    assert body["groupLabels"] == {"alertname": "AIFinOpsLLMSpendSpike", "team": "a", "model": "m"}
    # group_wait 1s; a stock route would hold it 30 s.
    assert arrival - start < 5


def test_a_pipeline_outage_inhibits_the_spend_alerts_it_fakes(alertmanager_factory, webhook):
    am = alertmanager_factory(shipped_alertmanager_config(webhook.url))
    # The bridge feeds both parts of the figures (aifinops_source="all"): its backlog fakes both.
    am.post_alerts(
        [
            alert(
                "AIFinOpsBridgeConsumerLagHigh",
                "pipeline",
                topic="ai-api-costs",
                aifinops_source="all",
            )
        ]
    )
    am.post_alerts(
        [
            alert("AIFinOpsLLMSpendSpike", "fast", team="b", model="m", aifinops_source="llm"),
            alert("AIFinOpsSpendAnomaly", "anomaly", team="b", aifinops_source="all"),
            # Budget alerts stay: the spend they see is real, only late.
            alert("AIFinOpsBudgetBurnFast", "burn", team="b", period="daily"),
        ]
    )

    def state(name: str) -> dict:
        (found,) = am_alerts(am, alertname=name)
        return found["status"]

    wait_until(lambda: state("AIFinOpsLLMSpendSpike")["state"] == "suppressed", 10, "inhibition")
    assert state("AIFinOpsLLMSpendSpike")["inhibitedBy"]
    assert state("AIFinOpsSpendAnomaly")["state"] == "suppressed"
    assert state("AIFinOpsBudgetBurnFast")["state"] == "active"
    time.sleep(3)  # past the fast route's group_wait: nothing was sent for the spike
    assert webhook.received == []


def test_higher_budget_levels_inhibit_lower_ones(alertmanager_factory, webhook):
    am = alertmanager_factory(shipped_alertmanager_config(webhook.url))
    labels = {"team": "c", "period": "monthly"}
    am.post_alerts(
        [
            alert("AIFinOpsBudgetThreshold", "burn", threshold="50", **labels),
            alert("AIFinOpsBudgetThreshold", "burn", threshold="80", **labels),
            alert("AIFinOpsBudgetThreshold", "burn", threshold="100", **labels),
            alert("AIFinOpsBudgetBurnFast", "burn", **labels),
            alert("AIFinOpsBudgetBurnSlow", "burn", **labels),
            # Another team's level is not affected.
            alert("AIFinOpsBudgetThreshold", "burn", threshold="80", team="d", period="monthly"),
        ]
    )

    def states() -> dict[tuple[str, str, str], str]:
        return {
            (a["labels"]["alertname"], a["labels"]["team"], a["labels"].get("threshold", "")): a[
                "status"
            ]["state"]
            for a in am_alerts(am)
        }

    wait_until(
        lambda: states().get(("AIFinOpsBudgetThreshold", "c", "80")) == "suppressed",
        10,
        "inhibition",
    )
    assert states() == {
        ("AIFinOpsBudgetThreshold", "c", "50"): "suppressed",
        ("AIFinOpsBudgetThreshold", "c", "80"): "suppressed",
        ("AIFinOpsBudgetThreshold", "c", "100"): "active",
        ("AIFinOpsBudgetBurnFast", "c", ""): "active",
        ("AIFinOpsBudgetBurnSlow", "c", ""): "suppressed",
        ("AIFinOpsBudgetThreshold", "d", "80"): "active",
    }
