"""Every dashboard query runs on a real Prometheus 2.42, and against the raw metric families of docs/architecture.md every panel has data; the "No data" checker the end-to-end test uses names the panels that have none."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from aifinops.cli.demo.stack import Prometheus, StackError, free_port
from support.dashboards import (
    load_dashboards,
    panel_queries,
    panels_without_data,
    substitute,
    variable_values,
)

pytestmark = pytest.mark.integration

DASHBOARDS = load_dashboards()
# The savings dashboard reads only the savings tier's recorded series, which need a day of
# history: tests/integration/mixin/test_savings_prometheus.py checks its panels over the demo's. The
# checks against the raw families cover the others.
RAW_DASHBOARDS = [d for name, d in DASHBOARDS.items() if name != "aifinops-savings.json"]
JOB = "aifinops-bridge"  # a job every selector of the mixin's config matches


class AifinopsFamilies:
    """A collector exposing every aifinops family of docs/architecture.md with small, plausible values:
    counters grow with time since start (so rates are positive), gauges are constant.
    `omit` leaves out groups of families ("gpu", "llm", "bridge") to make panels go blank."""

    def __init__(self, omit: frozenset[str] = frozenset()) -> None:
        self.omit = omit
        self.start = time.monotonic()

    def collect(self) -> Iterator[Metric]:
        t = time.monotonic() - self.start + 1.0
        if "llm" not in self.omit:
            yield from self._llm(t)
        if "gpu" not in self.omit:
            yield from self._gpu(t)
        if "bridge" not in self.omit:
            yield from self._bridge(t)
        yield from self._self_metrics()

    @staticmethod
    def _llm(t: float) -> Iterator[Metric]:
        calls = [  # provider, model, team, app, requests/s, tokens/s by type, $/s by type
            ("anthropic", "claude-sonnet-4", "search", "ranker", 2.0, (400, 1600, 100, 300)),
            ("openai", "gpt-4o", "support", "chatbot", 5.0, (800, 200, 0, 500)),
        ]
        token_types = ("input", "cache_read", "cache_write", "output")
        prices = {  # $ per million tokens by token type
            ("anthropic", "claude-sonnet-4"): (3.0, 0.3, 3.75, 15.0),
            ("openai", "gpt-4o"): (2.5, 1.25, 2.5, 10.0),
        }
        labels = ["provider", "model", "team", "app"]
        requests = CounterMetricFamily(
            "aifinops_llm_requests", "LLM API calls.", labels=[*labels, "status"]
        )
        tokens = CounterMetricFamily(
            "aifinops_llm_tokens", "Tokens.", labels=[*labels, "token_type"]
        )
        cost = CounterMetricFamily(
            "aifinops_llm_cost_usd", "Dollars.", labels=[*labels, "token_type"]
        )
        price = GaugeMetricFamily(
            "aifinops_llm_price_usd_per_million_tokens",
            "Price applied.",
            labels=["provider", "model", "token_type"],
        )
        for provider, model, team, app, rps, per_type in calls:
            requests.add_metric([provider, model, team, app, "ok"], rps * t)
            for token_type, n, usd in zip(
                token_types, per_type, prices[(provider, model)], strict=True
            ):
                tokens.add_metric([provider, model, team, app, token_type], n * t)
                cost.add_metric([provider, model, team, app, token_type], n * usd / 1e6 * t)
                price.add_metric([provider, model, token_type], usd)
        unpriced = CounterMetricFamily(
            "aifinops_llm_unpriced_requests", "Unpriced calls.", labels=["provider", "model"]
        )
        unpriced.add_metric(["mistral_ai", "mistral-new"], 0.1 * t)
        budget = GaugeMetricFamily("aifinops_budget_usd", "Budgets.", labels=["team", "period"])
        for team in ("search", "support"):
            budget.add_metric([team, "daily"], 500.0)
            budget.add_metric([team, "monthly"], 12000.0)
        ingest = CounterMetricFamily(
            "aifinops_ingest_events", "Events.", labels=["source", "outcome"]
        )
        ingest.add_metric(["http", "accepted"], 7.0 * t)
        ingest.add_metric(["kafka", "duplicate"], 0.5 * t)
        yield from (requests, tokens, cost, price, unpriced, budget, ingest)

    @staticmethod
    def _gpu(t: float) -> Iterator[Metric]:
        gpus = [  # node, gpu, uuid, utilisation, $/h, holder (namespace, pod, container, team)
            ("node-a", "0", "GPU-a0", 0.92, 4.0, ("training", "trainer-0", "main", "research")),
            ("node-a", "1", "GPU-a1", 0.02, 4.0, ("notebooks", "nb-alice", "jupyter", "search")),
            ("node-b", "0", "GPU-b0", 0.0, 2.5, None),
        ]
        key = ["node", "gpu", "uuid"]
        info = GaugeMetricFamily("aifinops_gpu_info", "GPU.", labels=[*key, "model"])
        util = GaugeMetricFamily("aifinops_gpu_utilization_ratio", "Util.", labels=key)
        used = GaugeMetricFamily("aifinops_gpu_memory_used_bytes", "Used.", labels=key)
        total = GaugeMetricFamily("aifinops_gpu_memory_total_bytes", "Total.", labels=key)
        power = GaugeMetricFamily("aifinops_gpu_power_watts", "Power.", labels=key)
        hourly = GaugeMetricFamily("aifinops_gpu_hourly_cost_usd", "Price.", labels=[*key, "model"])
        allocated = GaugeMetricFamily(
            "aifinops_gpu_allocated",
            "Held.",
            labels=[*key, "namespace", "pod", "container", "team"],
        )
        holder = [*key, "namespace", "pod", "team"]
        share = GaugeMetricFamily("aifinops_gpu_allocation_share_ratio", "Share.", labels=holder)
        cost = CounterMetricFamily("aifinops_gpu_cost_usd", "Spent.", labels=holder)
        idle = CounterMetricFamily("aifinops_gpu_idle_cost_usd", "Idle.", labels=holder)
        for node, gpu, uuid, utilisation, per_hour, pod in gpus:
            info.add_metric([node, gpu, uuid, "H100"], 1)
            util.add_metric([node, gpu, uuid], utilisation)
            used.add_metric([node, gpu, uuid], 40e9 * utilisation)
            total.add_metric([node, gpu, uuid], 80e9)
            power.add_metric([node, gpu, uuid], 70 + 600 * utilisation)
            hourly.add_metric([node, gpu, uuid, "H100"], per_hour)
            namespace, name, container, team = pod or ("", "", "", "")
            if pod:
                allocated.add_metric([node, gpu, uuid, namespace, name, container, team], 1)
                share.add_metric([node, gpu, uuid, namespace, name, team], 1)
            spent = per_hour / 3600 * t
            cost.add_metric([node, gpu, uuid, namespace, name, team], spent)
            idle.add_metric([node, gpu, uuid, namespace, name, team], spent * (1 - utilisation))
        yield from (info, util, used, total, power, hourly, allocated, share, cost, idle)

    @staticmethod
    def _bridge(t: float) -> Iterator[Metric]:
        messages = CounterMetricFamily(
            "aifinops_bridge_messages", "Consumed.", labels=["topic", "result"]
        )
        messages.add_metric(["ai-api-costs", "applied"], 20.0 * t)
        messages.add_metric(["ai-api-costs", "skipped"], 5.0 * t)
        lag = GaugeMetricFamily(
            "aifinops_bridge_consumer_lag_messages", "Lag.", labels=["topic", "partition"]
        )
        for partition in range(3):
            lag.add_metric(["ai-api-costs", str(partition)], 10 * partition)
        produced = CounterMetricFamily("aifinops_bridge_produced", "Produced.", labels=["topic"])
        produced.add_metric(["ai-api-costs"], 7.0 * t)
        spooled = GaugeMetricFamily("aifinops_bridge_spooled_messages", "Spooled.")
        spooled.add_metric([], 0)
        yield from (messages, lag, produced, spooled)

    @staticmethod
    def _self_metrics() -> Iterator[Metric]:
        success = GaugeMetricFamily("aifinops_collector_success", "OK.", labels=["collector"])
        duration = GaugeMetricFamily(
            "aifinops_collector_duration_seconds", "Took.", labels=["collector"]
        )
        for collector in ("gpu", "prices"):
            success.add_metric([collector], 1)
            duration.add_metric([collector], 0.01)
        build = GaugeMetricFamily("aifinops_build_info", "Version.", labels=["version"])
        build.add_metric(["0.1.0"], 1)
        yield from (success, duration, build)


@pytest.fixture
def scraped(prometheus_factory: Any) -> Iterator[Any]:
    """`scraped(omit)`: a real Prometheus scraping an exporter of `AifinopsFamilies(omit)`
    every 5 s, returned once rates over a minute have data."""
    servers = []

    def start(omit: frozenset[str] = frozenset()) -> Prometheus:
        registry = CollectorRegistry()
        registry.register(AifinopsFamilies(omit))
        port = free_port()
        server, _thread = start_http_server(port, addr="127.0.0.1", registry=registry)
        servers.append(server)
        prometheus = prometheus_factory(
            scrape_configs=[
                {"job_name": JOB, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
            ]
        )
        prometheus.wait_for(
            "rate(aifinops_build_info[1m]) or rate(aifinops_collector_success[1m])", timeout=60
        )
        return prometheus

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_every_panel_annotation_and_variable_query_is_valid_promql(prometheus_factory):
    prometheus = prometheus_factory()
    refused = []

    def check(where: str, path: str, **params: str) -> None:
        try:
            prometheus.api(path, **params)
        except StackError as exc:
            refused.append(f"{where}: {exc}")

    for name, dashboard in DASHBOARDS.items():
        all_values = variable_values(dashboard)
        picked = {var: "search|support" for var in all_values}  # a multi-value selection
        for values in (all_values, picked):
            for query in panel_queries(dashboard):
                check(
                    query.name,
                    "query",
                    query=substitute(query.expr, values, range_seconds=86400),
                )
            for annotation in dashboard["annotations"]["list"]:
                if "expr" in annotation:
                    expr = substitute(annotation["expr"], values, range_seconds=3600)
                    check(f"{name} annotation {annotation['name']}", "query", query=expr)
            for variable in dashboard["templating"]["list"]:
                if variable["type"] != "query":
                    continue
                # label_values(selector, label) is answered from /api/v1/series?match[]=selector.
                selector = variable["query"][len("label_values(") : variable["query"].rindex(",")]
                check(
                    f"{name} variable {variable['name']}",
                    "series",
                    **{"match[]": substitute(selector, values, range_seconds=3600)},
                )
    assert refused == []


def test_every_panel_has_data_against_the_raw_metric_families(scraped):
    """With every docs/architecture.md family exposed (no recording rules, no alert rules loaded), no
    panel of the four dashboards is blank."""
    prometheus = scraped()
    assert panels_without_data(prometheus, RAW_DASHBOARDS) == []


def test_checker_names_the_panels_without_data(scraped):
    prometheus = scraped(omit=frozenset({"gpu"}))
    probe: dict[str, Any] = copy.deepcopy(DASHBOARDS["aifinops-llm.json"])
    probe["title"] = "Probe"
    template = probe["panels"][1]
    probe["panels"] = [
        template
        | {
            "title": "Present",
            "targets": [template["targets"][0] | {"expr": "aifinops_budget_usd"}],
        },
        template
        | {
            "title": "Misspelt",
            "targets": [template["targets"][0] | {"expr": "aifinops_budget_dollars"}],
        },
        template | {"title": "Broken", "targets": [template["targets"][0] | {"expr": "sum(("}]},
        template
        | {
            "title": "Empty by design",
            "targets": [template["targets"][0] | {"expr": "aifinops_budget_dollars"}],
            "fieldConfig": {"defaults": {"noValue": "Nothing to report"}, "overrides": []},
        },
    ]

    missing = panels_without_data(prometheus, [*RAW_DASHBOARDS, probe])

    gpu = DASHBOARDS["aifinops-gpu.json"]
    gpu_panels = {f"{gpu['title']}: {p['title']}" for p in gpu["panels"] if p["type"] != "row"}
    overview = "AI FinOps / Overview"
    expected = gpu_panels | {
        f"{overview}: GPU spend ($/h)",
        f"{overview}: Idle GPU waste ($/h)",
        f"{overview}: Idle share of GPU spend",
        "Probe: Misspelt",
    }
    broken = [m for m in missing if m.startswith("Probe: Broken (query error:")]
    assert len(broken) == 1 and "parse error" in broken[0]
    assert set(missing) - set(broken) == expected
