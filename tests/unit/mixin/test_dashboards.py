"""The generated dashboards are what Grafana imports: valid against Grafana's schema, laid out on the grid, wired to `$datasource` and their variables, with units and descriptions a user can act on."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.dashboards import (
    BUILTIN_VARIABLES,
    VARIABLE,
    iter_panels,
    load_dashboards,
    panel_queries,
    substitute,
    time_range,
    variable_values,
)
from support.grafana_models import model_problems

DASHBOARDS = load_dashboards()
UIDS = {
    "aifinops-overview.json": "aifinops-overview",
    "aifinops-gpu.json": "aifinops-gpu",
    "aifinops-llm.json": "aifinops-llm",
    "aifinops-pipeline.json": "aifinops-pipeline",
    "aifinops-savings.json": "aifinops-savings",
}
GENERATED_NOTICE = "Generated from jsonnet/ by make generate; do not edit."
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# docs/architecture.md "Metrics": every family and its labels. A query may only use these (plus what
# Prometheus itself records), so a misspelt metric or label fails here, not on a blank panel.
DESIGN_METRICS: dict[str, set[str]] = {
    "aifinops_llm_requests_total": {"provider", "model", "team", "app", "status"},
    "aifinops_llm_tokens_total": {"provider", "model", "team", "app", "token_type"},
    "aifinops_llm_cost_usd_total": {"provider", "model", "team", "app", "token_type"},
    "aifinops_llm_unpriced_requests_total": {"provider", "model"},
    "aifinops_llm_price_usd_per_million_tokens": {"provider", "model", "token_type"},
    "aifinops_budget_usd": {"team", "period"},
    "aifinops_ingest_events_total": {"source", "outcome"},
    "aifinops_gpu_info": {"node", "gpu", "uuid", "model"},
    "aifinops_gpu_utilization_ratio": {"node", "gpu", "uuid"},
    "aifinops_gpu_memory_used_bytes": {"node", "gpu", "uuid"},
    "aifinops_gpu_memory_total_bytes": {"node", "gpu", "uuid"},
    "aifinops_gpu_power_watts": {"node", "gpu", "uuid"},
    "aifinops_gpu_hourly_cost_usd": {"node", "gpu", "uuid", "model"},
    "aifinops_gpu_allocated": {"node", "gpu", "uuid", "namespace", "pod", "container", "team"},
    "aifinops_gpu_allocation_share_ratio": {"node", "gpu", "uuid", "namespace", "pod", "team"},
    "aifinops_gpu_cost_usd_total": {"node", "gpu", "uuid", "namespace", "pod", "team"},
    "aifinops_gpu_idle_cost_usd_total": {"node", "gpu", "uuid", "namespace", "pod", "team"},
    "aifinops_collector_success": {"collector"},
    "aifinops_collector_duration_seconds": {"collector"},
    "aifinops_build_info": {"version"},
    "aifinops_bridge_messages_total": {"topic", "result"},
    "aifinops_bridge_consumer_lag_messages": {"topic", "partition"},
    "aifinops_bridge_produced_total": {"topic"},
    "aifinops_bridge_produce_errors_total": {"topic"},
    "aifinops_bridge_spooled_messages": set(),
    "aifinops_bridge_alerts_forwarded_total": {"status"},
    "aifinops_series_overflow_total": {"metric"},
    # Whole bill (docs/gpu-exporter.md "Prices", docs/rules.md "Kubernetes costs").
    "aifinops_gpu_price_info": {"node", "gpu", "uuid", "source"},
    "aifinops_namespace_team_info": {"namespace", "team"},
    # Strimzi's Kafka Exporter (docs/deploy.md "Kafka lag").
    "kafka_consumergroup_lag": {"consumergroup", "topic", "partition"},
}
# The burn tier's Kubernetes costs from OpenCost (rules/kubernetes.libsonnet) the overview reads.
KUBERNETES_SERIES: dict[str, set[str]] = {
    "team_resource:aifinops_kubernetes_cost_usd_per_second:avg5m": {"team", "resource"},
}
# The savings tier's recorded series the savings dashboard reads (rules/aifinops-savings.yaml,
# docs/savings.md) and their labels.
_GPU = {"node", "gpu", "uuid"}
SAVINGS_SERIES: dict[str, set[str]] = {
    "aifinops_savings_usd_per_month": _GPU
    | {"namespace", "pod", "team", "action", "profile", "provider", "model", "to_model"},
    "team:aifinops_savings_usd_per_month:sum": {"team"},
    "team:aifinops_savings_opportunity_usd_per_month:sum": {"team"},
    "gpu:aifinops_gpu_utilization_ratio:p95_7d": _GPU,
    "gpu:aifinops_gpu_utilization_peak_ratio:p95_7d": _GPU,
    "gpu:aifinops_gpu_memory_used_bytes:max_7d": _GPU,
    "gpu:aifinops_gpu_busy_hours_per_day:avg_7d": _GPU,
    "gpu:aifinops_gpu_off_hours_busy:ratio_7d": _GPU,
    "team_model:aifinops_llm_cache_hit_ratio:ratio_7d": {"team", "provider", "model"},
}
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"job", "instance"}
# Series Prometheus records itself that the pipeline dashboard reads.
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS"}
# Panels whose empty result is a healthy state and that say so instead of "No data". Kept to
# lists of exceptions: anything else must return data (0 included) while its source is up.
EMPTY_STATE_PANELS = {
    ("AI FinOps / Overview", "Firing cost alerts"),
    ("AI FinOps / LLM API spend", "Unpriced models"),
}


def all_dashboards() -> list[tuple[str, dict[str, Any]]]:
    return list(DASHBOARDS.items())


def ids(params: list[tuple[str, Any]]) -> list[str]:
    return [name for name, _ in params]


def content_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in iter_panels(dashboard) if p["type"] != "row"]


def walk(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every (path, value) pair of a JSON document."""
    out = [(path, value)]
    if isinstance(value, dict):
        for key, item in value.items():
            out += walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += walk(item, f"{path}[{i}]")
    return out


def test_the_four_dashboards_have_their_fixed_uids():
    assert {name: d["uid"] for name, d in DASHBOARDS.items()} == UIDS


@pytest.mark.parametrize(("name", "dashboard"), all_dashboards(), ids=ids(all_dashboards()))
def test_dashboard_frame(name: str, dashboard: dict[str, Any]):
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    assert dashboard["title"].startswith("AI FinOps / ")
    assert dashboard["description"].endswith(GENERATED_NOTICE)
    assert "aifinops" in dashboard["tags"]
    assert dashboard["time"]["to"] == "now" and dashboard["refresh"]
    assert "id" not in dashboard, "a fixed id would clash with dashboards already in Grafana"


@pytest.mark.parametrize(("name", "dashboard"), all_dashboards(), ids=ids(all_dashboards()))
def test_grafana_schema_accepts_the_dashboard(name: str, dashboard: dict[str, Any]):
    """Parsed with the grafana-foundation-sdk models, strictly (see support.grafana_models)."""
    assert model_problems(dashboard) == []


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda d: d["panels"][1]["fieldConfig"]["defaults"].update(unti="short"), "unti"),
        (lambda d: d["panels"][1]["options"].update(graphMode="bars"), "bars"),
        (lambda d: d["panels"][1]["gridPos"].update(w="12"), "expected an integer"),
        (lambda d: d["panels"][1]["targets"][0].update(legend="x"), "legend"),
        (lambda d: d["templating"]["list"][1].update(refresh=7), "refresh"),
        (lambda d: d.update(panelz=[]), "panelz"),
        (lambda d: d["panels"][1].update(datasource={"type": "loki", "uid": "x"}), "Prometheus"),
    ],
    ids=[
        "misspelt key",
        "bad enum",
        "wrong type",
        "unknown target key",
        "bad variable enum",
        "unknown top-level key",
        "not prometheus",
    ],
)
def test_schema_check_rejects_what_grafana_would_not_read(mutate, problem: str):
    dashboard = copy.deepcopy(DASHBOARDS["aifinops-overview.json"])
    mutate(dashboard)
    problems = model_problems(dashboard)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(("name", "dashboard"), all_dashboards(), ids=ids(all_dashboards()))
def test_panel_ids_and_titles_are_unique(name: str, dashboard: dict[str, Any]):
    panels = list(iter_panels(dashboard))
    panel_ids = [p["id"] for p in panels]
    assert len(panel_ids) == len(set(panel_ids))
    assert all(isinstance(i, int) and i > 0 for i in panel_ids)
    titles = [p["title"] for p in content_panels(dashboard)]
    assert len(titles) == len(set(titles)), "failures name panels by title"


@pytest.mark.parametrize(("name", "dashboard"), all_dashboards(), ids=ids(all_dashboards()))
def test_grid_positions_fit_24_columns_without_overlap(name: str, dashboard: dict[str, Any]):
    cells: dict[tuple[int, int], str] = {}
    for panel in iter_panels(dashboard):
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["y"] >= 0 and pos["w"] >= 1 and pos["h"] >= 1, panel["title"]
        assert pos["x"] + pos["w"] <= 24, f"{panel['title']} is wider than the grid"
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]
    # Panels follow their row header: reading order is grid order.
    positions = [(p["gridPos"]["y"], p["gridPos"]["x"]) for p in iter_panels(dashboard)]
    assert positions == sorted(positions)


@pytest.mark.parametrize(("name", "dashboard"), all_dashboards(), ids=ids(all_dashboards()))
def test_every_datasource_reference_is_the_variable(name: str, dashboard: dict[str, Any]):
    variables = dashboard["templating"]["list"]
    assert variables[0]["name"] == "datasource"
    assert variables[0]["type"] == "datasource" and variables[0]["query"] == "prometheus"
    refs = [(path, value) for path, value in walk(dashboard) if path.endswith(".datasource")]
    assert refs
    for path, value in refs:
        if path.startswith(".annotations.list[0]"):  # Grafana's own built-in annotations
            assert value == {"type": "grafana", "uid": "-- Grafana --"}
            continue
        assert value == DATASOURCE, path


@pytest.mark.parametrize(("name", "dashboard"), all_dashboards(), ids=ids(all_dashboards()))
def test_variables_are_label_filters_with_a_valid_query(name: str, dashboard: dict[str, Any]):
    names = [v["name"] for v in dashboard["templating"]["list"]]
    assert "team" in names
    defined = {"datasource"}
    for variable in dashboard["templating"]["list"][1:]:
        assert variable["type"] == "query"
        match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"])
        assert match, variable["query"]
        selector, label = match.groups()
        assert label == variable["name"]
        metrics = re.findall(r"aifinops_\w+", selector)
        assert metrics and all(label in DESIGN_METRICS[m] for m in metrics), variable["query"]
        # A variable may only depend on variables above it: Grafana resolves them in order.
        used = {m.group(1) or m.group(2) for m in VARIABLE.finditer(selector)}
        assert used <= defined, f"{variable['name']} uses {used - defined} before it is defined"
        assert variable["multi"] and variable["includeAll"]
        assert variable["allValue"] == ".*", "All must also match spend with an empty label"
        defined.add(variable["name"])


@pytest.mark.parametrize(("name", "dashboard"), all_dashboards(), ids=ids(all_dashboards()))
def test_queries_use_only_defined_variables_as_regex_matchers(name: str, dashboard: dict[str, Any]):
    defined = set(variable_values(dashboard))
    exprs = [q.expr for q in panel_queries(dashboard)] + [
        a["expr"] for a in dashboard["annotations"]["list"] if "expr" in a
    ]
    for expr in exprs:
        for match in VARIABLE.finditer(expr):
            var = match.group(1) or match.group(2) or match.group(3)
            assert var in defined | BUILTIN_VARIABLES, f"${var} is not a variable of {name}"
            if var in defined:
                # Multi-value and "All" (.*) substitute a regex: only =~ reads it as one.
                before = expr[: match.start()]
                assert re.search(r'\w+=~"$', before), f"${var} not used as label=~: {expr}"


@pytest.mark.parametrize(("name", "dashboard"), all_dashboards(), ids=ids(all_dashboards()))
def test_queries_use_design_metric_names_and_labels(name: str, dashboard: dict[str, Any]):
    exprs = [q.expr for q in panel_queries(dashboard)] + [
        a["expr"] for a in dashboard["annotations"]["list"] if "expr" in a
    ]
    for expr in exprs:
        for metric, matchers in re.findall(r"\b([a-zA-Z_:][\w:]*)\{([^}]*)\}", expr):
            if metric in PROMETHEUS_SERIES:
                continue
            known = DESIGN_METRICS | SAVINGS_SERIES | KUBERNETES_SERIES
            assert metric in known, f"{metric} is not an architecture.md metric: {expr}"
            for label in re.findall(r"(\w+)\s*[=!]~?", matchers):
                assert label in known[metric] | TARGET_LABELS, f"{metric} has no {label}"
        # Recorded savings series, then every family name left in the query.
        for metric in re.findall(r"[\w:]*:aifinops_\w+:[\w]+", expr):
            assert metric in SAVINGS_SERIES | KUBERNETES_SERIES, (
                f"{metric} is not a recorded savings or Kubernetes series: {expr}"
            )
        bare = re.sub(r"[\w:]*:aifinops_\w+:[\w]+", "", expr)
        for metric in re.findall(r"\baifinops_\w+", bare):
            assert metric in DESIGN_METRICS | SAVINGS_SERIES, (
                f"{metric} is not a known family: {expr}"
            )


@pytest.mark.parametrize(("name", "dashboard"), all_dashboards(), ids=ids(all_dashboards()))
def test_range_windows_are_grafana_intervals(name: str, dashboard: dict[str, Any]):
    for query in panel_queries(dashboard):
        for window in re.findall(r"\[([^\]]+)\]", query.expr):
            # $__rate_interval follows the scrape interval; $__range is the panel's range; fixed
            # windows only where they are an alert's window (budget burn rates).
            assert window in ("$__rate_interval", "$__range") or (
                query.panel == "Budget burn rate" and re.fullmatch(r"\d+[mhd]", window)
            ), f"{query.name}: [{window}]"


@pytest.mark.parametrize(("name", "dashboard"), all_dashboards(), ids=ids(all_dashboards()))
def test_every_panel_says_what_it_shows_and_what_to_do(name: str, dashboard: dict[str, Any]):
    for panel in content_panels(dashboard):
        description = panel.get("description", "")
        assert len(description) >= 60 and description.endswith((".", ")")), panel["title"]
        assert panel["targets"], panel["title"]


@pytest.mark.parametrize(("name", "dashboard"), all_dashboards(), ids=ids(all_dashboards()))
def test_units_are_set_and_money_is_in_dollars(name: str, dashboard: dict[str, Any]):
    for panel in content_panels(dashboard):
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults.get("unit"), panel["title"]
        exprs = " ".join(t["expr"] for t in panel["targets"])
        # The GPU scope filter (`and on (node, gpu, uuid) ...`) reads cost series only to pick GPUs.
        values = " ".join(t["expr"].split("and on (node, gpu, uuid)")[0] for t in panel["targets"])
        money = re.search(r"aifinops_\w*_usd", values)
        if panel["type"] == "table" and money:
            units = {
                prop["value"]
                for o in panel["fieldConfig"]["overrides"]
                for prop in o["properties"]
                if prop["id"] == "unit"
            }
            assert "currencyUSD" in units, panel["title"]
        elif money:
            # Dollars, or a share of dollars (percent), or a burn rate (a multiple of budget).
            allowed = {"currencyUSD"}
            if re.search(r"share|used", panel["title"], re.I):
                allowed = {"percentunit"}
            elif "burn rate" in panel["title"].lower():
                allowed = {"short"}
            assert defaults["unit"] in allowed, panel["title"]
        if "$/h" in panel["title"]:
            assert "* 3600" in exprs, f"{panel['title']} must convert $/s to $/h"
        if defaults["unit"] == "percentunit":
            assert "/" in exprs or "ratio" in exprs, f"{panel['title']} is not a ratio"


@pytest.mark.parametrize(("name", "dashboard"), all_dashboards(), ids=ids(all_dashboards()))
def test_links_join_the_four_dashboards(name: str, dashboard: dict[str, Any]):
    (link,) = dashboard["links"]
    assert link["type"] == "dashboards" and link["tags"] == ["aifinops"]
    assert link["includeVars"] and link["keepTime"]
    # Each of the four carries the tag the link lists by.
    assert all("aifinops" in d["tags"] for d in DASHBOARDS.values())
    for panel in content_panels(dashboard):
        for panel_link in panel.get("links", []):
            uid = re.match(r"/d/([\w-]+)\?", panel_link["url"]).group(1)
            assert uid in UIDS.values(), panel_link


@pytest.mark.parametrize(("name", "dashboard"), all_dashboards(), ids=ids(all_dashboards()))
def test_cost_alerts_are_annotations(name: str, dashboard: dict[str, Any]):
    (alerts,) = [a for a in dashboard["annotations"]["list"] if a.get("expr")]
    assert alerts["enable"] and alerts["datasource"] == DATASOURCE
    assert alerts["expr"].startswith('ALERTS{alertname=~"AIFinOps.*"')
    assert 'alertstate="firing"' in alerts["expr"]
    assert alerts["titleFormat"] == "{{alertname}}"


def test_only_lists_of_exceptions_replace_no_data_with_a_message():
    with_message = {
        (d["title"], p["title"])
        for d in DASHBOARDS.values()
        for p in content_panels(d)
        if "noValue" in p["fieldConfig"]["defaults"]
    }
    assert with_message == EMPTY_STATE_PANELS


def test_dashboards_carry_what_the_issue_asks_for():
    def titles(file: str) -> set[str]:
        return {p["title"] for p in content_panels(DASHBOARDS[file])}

    def variables(file: str) -> list[str]:
        return [v["name"] for v in DASHBOARDS[file]["templating"]["list"]]

    assert {
        "GPU spend ($/h)",
        "LLM API spend ($/h)",
        "Spend today",
        "Spend month to date",
    } <= titles("aifinops-overview.json")
    assert {
        "Top teams by spend",
        "Top models by spend",
        "Idle GPU waste ($/h)",
        "Idle share of GPU spend",
        "Firing cost alerts",
    } <= titles("aifinops-overview.json")
    gpu = DASHBOARDS["aifinops-gpu.json"]
    assert {"state-timeline", "table"} <= {p["type"] for p in content_panels(gpu)}
    assert {
        "Allocated vs idle GPUs",
        "Idle cost by team ($/h)",
        "Idle cost by namespace ($/h)",
        "Pods by GPU cost",
        "GPU memory used",
        "GPU power draw",
    } <= titles("aifinops-gpu.json")
    llm = titles("aifinops-llm.json")
    for dim in ("provider", "model", "team", "app"):
        assert {f"Spend by {dim} ($/h)", f"Tokens/s by {dim}"} <= llm
    assert {
        "Cost per request by model",
        "Prompt cache savings by model ($/h)",
        "Budget burn rate",
        "Daily budget used",
        "Unpriced requests/s by model",
    } <= llm
    assert {
        "Watchdog",
        "Ingest events/s by outcome",
        "Consumer lag per partition",
        "Dead letters/s by topic",
        "Producer spool",
        "Collector success",
        "Scrape duration",
    } <= titles("aifinops-pipeline.json")
    assert variables("aifinops-gpu.json") == ["datasource", "team", "namespace"]
    assert variables("aifinops-llm.json") == ["datasource", "team", "provider", "model"]


def test_cache_savings_price_cache_reads_at_input_minus_cache_read_price():
    (query,) = [
        q
        for q in panel_queries(DASHBOARDS["aifinops-llm.json"])
        if q.panel == "Prompt cache savings ($/h)"
    ]
    expr = re.sub(r"\s+", " ", query.expr).strip()
    assert 'token_type="cache_read"' in expr
    assert re.search(r'token_type="input".*- on \(provider, model\).*token_type="cache_read"', expr)
    assert expr.endswith("/ 1e6 * 3600")


def test_substitute_replaces_variables_the_way_grafana_does():
    expr = 'sum(rate(x{team=~"$team", model=~"${model}", app=~"[[app]]"}[$__rate_interval])) / $__range_s'
    out = substitute(expr, {"team": ".*", "model": "a|b", "app": ".*"}, range_seconds=3600)
    assert out == 'sum(rate(x{team=~".*", model=~"a|b", app=~".*"}[1m])) / 3600'
    with pytest.raises(KeyError, match="nope"):
        substitute('x{a=~"$nope"}', {}, range_seconds=60)


def test_time_range_of_today_and_month_to_date_is_utc():
    now = 1_700_000_000.0  # 2023-11-14T22:13:20Z
    assert time_range("now/d", now, 300) == (1_699_920_000.0, now)
    assert time_range("now/M", now, 300) == (1_698_796_800.0, now)
    assert time_range(None, now, 300) == (now - 300, now)
    assert time_range("now-1h", now, 300) == (now - 3600, now)


@pytest.mark.parametrize(("name", "dashboard"), all_dashboards(), ids=ids(all_dashboards()))
def test_threshold_steps_ascend_from_a_base_colour(name: str, dashboard: dict[str, Any]):
    for panel in content_panels(dashboard):
        steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert steps[0]["value"] is None, panel["title"]
        values = [s["value"] for s in steps[1:]]
        assert values == sorted(values), panel["title"]


def test_savings_dashboard_reads_only_series_the_savings_tier_records():
    rules = Path(__file__).resolve().parents[3] / "rules"
    group = yaml.safe_load((rules / "aifinops-savings.yaml").read_text())["groups"][0]
    recorded = {rule["record"] for rule in group["rules"] if "record" in rule}
    assert set(SAVINGS_SERIES) <= recorded
    exprs = " ".join(q.expr for q in panel_queries(DASHBOARDS["aifinops-savings.json"]))
    used = set(re.findall(r"[\w:]*aifinops_\w+(?::\w+)?", exprs))
    assert used and used <= recorded, used - recorded
    # Every action is on the dashboard: GPU recommendations and LLM opportunities apart.
    assert 'action=~"release|share|schedule"' in exprs
    assert 'action=~"prompt_cache|cheaper_model"' in exprs
    # The overview's top row shows the team's savings available beside its spend.
    overview = DASHBOARDS["aifinops-overview.json"]
    top = [p for p in content_panels(overview) if p["gridPos"]["y"] == 1]
    assert [p["title"] for p in top[:2]] == ["AI spend ($/h)", "Savings available ($/month)"]
    assert sum(p["gridPos"]["w"] for p in top) == 24
    (query,) = panel_queries({"panels": [top[1]]})
    assert "team:aifinops_savings_usd_per_month:sum" in query.expr


def test_the_whole_bill_price_sources_and_every_groups_kafka_lag_are_shown():
    def panel(file: str, title: str) -> dict[str, Any]:
        (found,) = [p for p in content_panels(DASHBOARDS[file]) if p["title"] == title]
        return found

    def exprs(p: dict[str, Any]) -> str:
        return "\n".join(t["expr"] for t in p["targets"])

    # Per team, side by side: LLM, GPU working, GPU idle and Kubernetes compute...
    table = exprs(panel("aifinops-overview.json", "Bill per team ($/h)"))
    for family in (
        "aifinops_llm_cost_usd_total",
        "aifinops_gpu_cost_usd_total",
        "aifinops_gpu_idle_cost_usd_total",
        "team_resource:aifinops_kubernetes_cost_usd_per_second:avg5m",
    ):
        assert family in table
    # ...and stacked as one bill.
    stacked = panel("aifinops-overview.json", "The whole bill, stacked ($/h)")
    assert stacked["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"] == "normal"
    assert "team_resource:aifinops_kubernetes_cost_usd_per_second:avg5m" in exprs(stacked)
    # Each GPU's price source.
    prices = exprs(panel("aifinops-gpu.json", "Price of each GPU and where it comes from"))
    assert "aifinops_gpu_price_info" in prices and "source" in prices
    # Every consumer group's lag on the three topics.
    lag = exprs(
        panel(
            "aifinops-pipeline.json", "Consumer group lag on the aifinops topics (Kafka Exporter)"
        )
    )
    assert "sum by (consumergroup, topic) (kafka_consumergroup_lag{" in lag
    assert 'topic=~"ai-api-costs|gpu-utilization-events|cost-anomalies"' in lag
