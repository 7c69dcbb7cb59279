"""The rule pack's alert contract of docs/architecture.md (every alert in its tier's group, with
its labels, annotations and links), its config keys, and the Alertmanager inhibitions."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import _jsonnet
import yaml

REPO = Path(__file__).resolve().parents[3]
RULES = REPO / "rules"
RULE_TESTS = REPO / "tests" / "rules"
RUNBOOKS = REPO / "docs" / "runbooks.md"
RULE_FILES = sorted(RULES.glob("aifinops-*.yaml"))
TEST_FILES = sorted(RULE_TESTS.glob("*.test.yaml"))

# docs/architecture.md "Rules and alerts": tier -> (group interval, alerts).
TIERS = {
    "fast": ("5s", {"AIFinOpsLLMSpendSpike", "AIFinOpsLLMTokenRunaway", "AIFinOpsGPUSpendJump"}),
    "burn": (
        "30s",
        {
            "AIFinOpsBudgetBurnFast",
            "AIFinOpsBudgetBurnSlow",
            "AIFinOpsBudgetThreshold",
            "AIFinOpsBudgetExhaustionForecast",
        },
    ),
    "anomaly": ("5m", {"AIFinOpsSpendAnomaly"}),
    "waste": (
        "30s",
        {
            "AIFinOpsGPUIdle",
            "AIFinOpsGPUIdleSpendHigh",
            "AIFinOpsLLMUnpricedUsage",
            "AIFinOpsUnattributedSpend",
            "AIFinOpsSeriesOverflow",
        },
    ),
    "pipeline": (
        "30s",
        {
            "AIFinOpsExporterDown",
            "AIFinOpsCollectorFailing",
            "AIFinOpsBridgeConsumerLagHigh",
            "AIFinOpsBridgeDeadLetters",
            "AIFinOpsBridgeProduceErrors",
            "AIFinOpsTripwireSendFailing",
            "AIFinOpsCostMetricsAbsent",
            "AIFinOpsWatchdog",
            "AIFinOpsKafkaConsumerLagGrowing",
        },
    ),
    "savings": ("5m", {"AIFinOpsSavingsAvailable"}),
}
ALL_ALERTS = set().union(*(alerts for _, alerts in TIERS.values()))
DASHBOARD_UIDS = {
    "aifinops-overview",
    "aifinops-gpu",
    "aifinops-llm",
    "aifinops-pipeline",
    "aifinops-savings",
}


def groups() -> dict[str, dict]:
    out = {}
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            out[group["name"]] = group
    return out


def alert_rules() -> list[tuple[str, dict]]:
    return [
        (name, rule)
        for name, group in groups().items()
        for rule in group["rules"]
        if "alert" in rule
    ]


def render(overrides: str) -> dict[str, str]:
    """The generated files of the mixin with `_config` overrides (a jsonnet object body)."""
    snippet = (
        "local mixin = (import 'mixin.libsonnet') + { _config+:: { " + overrides + " } };"
        "{ [name]: std.manifestYamlDoc(mixin.ruleFiles[name]) for name in std.objectFields(mixin.ruleFiles) }"
        " + { alertmanager: mixin.alertmanagerConfigYaml }"
    )
    return json.loads(
        _jsonnet.evaluate_snippet("override", snippet, jpathdir=[str(REPO / "jsonnet")])
    )


def test_one_rule_file_per_tier():
    assert [p.name for p in RULE_FILES] == [f"aifinops-{t}.yaml" for t in sorted(TIERS)]


def test_generated_anomaly_test_is_fresh():
    sys.path.insert(0, str(RULE_TESTS))
    try:
        import anomaly_input
    finally:
        sys.path.remove(str(RULE_TESTS))
    assert (RULE_TESTS / "anomaly.test.yaml").read_text() == anomaly_input.render(), (
        "run `python tests/rules/anomaly_input.py`"
    )


def test_every_design_alert_is_in_its_tier_group_with_its_interval():
    found = groups()
    assert set(found) == {f"aifinops-{t}" for t in TIERS}
    for tier, (interval, alerts) in TIERS.items():
        group = found[f"aifinops-{tier}"]
        assert group["interval"] == interval
        names = {rule["alert"] for rule in group["rules"] if "alert" in rule}
        assert names == alerts, tier
        for rule in group["rules"]:
            if "alert" in rule:
                assert rule["labels"]["aifinops_tier"] == tier


def test_fast_tier_records_and_alerts_in_one_group_firing_at_once():
    fast = groups()["aifinops-fast"]
    recorded = {rule["record"] for rule in fast["rules"] if "record" in rule}
    for rule in fast["rules"]:
        if "alert" in rule:
            assert rule["for"] == "0s"
            assert rule["keep_firing_for"] == "5m"
            # Everything an alert reads is recorded earlier in the same group.
            used = set(re.findall(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", rule["expr"]))
            assert used and used <= recorded, rule["alert"]


def test_every_alert_carries_the_labels_and_annotations_users_route_and_read_by():
    anchors = set(re.findall(r"^## (AIFinOps\w+)", RUNBOOKS.read_text(), re.M))
    for _, rule in alert_rules():
        name = rule["alert"]
        labels, annotations = rule["labels"], rule["annotations"]
        assert labels["severity"] in {"critical", "warning", "info"}, name
        assert "$value" not in json.dumps(labels), name
        assert set(annotations) == {"summary", "description", "runbook_url", "dashboard_url"}
        assert "{{" not in annotations["summary"], f"{name}: summary must be static"
        assert annotations["summary"].endswith("."), name
        assert "$" in annotations["description"], f"{name}: description without a dollar figure"
        assert annotations["runbook_url"].endswith("#" + name.lower()), name
        assert name in anchors, f"{name}: no section in docs/runbooks.md"
        uid = re.search(r"/d/([a-z-]+)", annotations["dashboard_url"]).group(1)
        assert uid in DASHBOARD_UIDS, name
    assert {name for name, _ in alert_rules()} == {f"aifinops-{t}" for t in TIERS}
    assert {rule["alert"] for _, rule in alert_rules()} == ALL_ALERTS


def test_every_alert_has_a_firing_test_with_annotations_and_a_near_miss():
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for test in case.get("alert_rule_test", []):
                expected = test.get("exp_alerts") or []
                if not expected:
                    quiet.add(test["alertname"])
                elif all("exp_annotations" in a and "exp_labels" in a for a in expected):
                    fires.add(test["alertname"])
            for test in case.get("promql_expr_test", []):
                if "ALERTS" in test["expr"] and not test.get("exp_samples"):
                    named = set(re.findall(r'alertname="(\w+)"', test["expr"]))
                    quiet |= named or ALL_ALERTS & _alerts_of_file(path)
    assert ALL_ALERTS - fires == set(), "alerts without a firing test"
    # The watchdog fires always; everything else has a case where it must stay quiet.
    assert ALL_ALERTS - quiet == {"AIFinOpsWatchdog"}, "alerts without a near miss"


def _alerts_of_file(path: Path) -> set[str]:
    files = yaml.safe_load(path.read_text())["rule_files"]
    names = set()
    for rel in files:
        for group in yaml.safe_load((path.parent / rel).read_text())["groups"]:
            names |= {rule["alert"] for rule in group["rules"] if "alert" in rule}
    return names


def test_budget_alerts_only_match_teams_with_a_budget():
    for group_name, rule in alert_rules():
        if rule["alert"].startswith("AIFinOpsBudget"):
            assert "team_period:aifinops_budget_usd" in rule["expr"], rule["alert"]
            assert group_name == "aifinops-burn"


def test_config_keys_reach_the_rules():
    out = render(
        "llmSpikeFloorUsdPerHour: 123, llmSelector: 'job=\"gateway\"', fastInterval: '2s',"
        " budgetBurnWindows: [{alert: 'AIFinOpsBudgetBurnFast', severity: 'critical',"
        " long: '2h', short: '10m', factor: 7, 'for': '5m'}],"
        " alertmanagerWebhookURL: 'http://bridge.example:9873/v1/alertmanager',"
        " grafanaURL: 'https://grafana.example.com', clusterLabel: 'k8s_cluster'"
    )
    fast = yaml.safe_load(out["aifinops-fast"])["groups"][0]
    assert fast["interval"] == "2s"
    exprs = "\n".join(rule["expr"] for rule in fast["rules"])
    assert "* 3600 > 123" in exprs
    assert 'aifinops_llm_cost_usd_total{job="gateway"}' in exprs
    spike = next(r for r in fast["rules"] if r.get("alert") == "AIFinOpsLLMSpendSpike")
    assert spike["annotations"]["dashboard_url"].startswith("https://grafana.example.com/d/")
    burn = yaml.safe_load(out["aifinops-burn"])["groups"][0]["rules"]
    burns = [r for r in burn if r.get("alert", "").startswith("AIFinOpsBudgetBurn")]
    assert len(burns) == 1
    assert burns[0]["labels"]["long_window"] == "2h"
    assert "avg2h * 3600 > on (team) group_right () (7 * 3600" in burns[0]["expr"]
    recorded = {r["record"] for r in burn if "record" in r}
    assert {
        "team:aifinops_spend_usd_per_second:avg2h",
        "team:aifinops_spend_usd_per_second:avg10m",
    } <= recorded
    am = yaml.safe_load(out["alertmanager"])
    assert (
        am["receivers"][0]["webhook_configs"][0]["url"]
        == "http://bridge.example:9873/v1/alertmanager"
    )
    assert am["inhibit_rules"][0]["equal"] == ["k8s_cluster"]


def test_the_pod_team_label_key_reaches_the_rules_as_kube_state_metrics_writes_it():
    # A Kubernetes label key with a prefix is written label_<key, [^A-Za-z0-9_] as _> by
    # kube-state-metrics and OpenCost; the rules must read that name, and only pods with it set.
    out = render("podTeamLabel: 'app.kubernetes.io/team', podLabelsSelector: 'job=\"ksm\"'")
    burn = yaml.safe_load(out["aifinops-burn"])["groups"][0]["rules"]
    pod_team = [
        r["expr"]
        for r in burn
        if r.get("record")
        == "namespace_pod_team_resource:aifinops_kubernetes_cost_usd_per_second:sum"
    ]
    assert len(pod_team) == 4  # cpu, memory, storage, gpu
    for expr in pod_team:
        assert 'kube_pod_labels{job="ksm", label_app_kubernetes_io_team!=""}' in expr
        assert '"pod_team", "$1", "label_app_kubernetes_io_team", "(.+)"' in expr
        assert "label_team" not in expr


def test_every_config_key_is_used():
    keys = json.loads(
        _jsonnet.evaluate_snippet(
            "keys",
            "std.objectFieldsAll((import 'config.libsonnet')._config)",
            jpathdir=[str(REPO / "jsonnet")],
        )
    )
    sources = "\n".join(
        p.read_text()
        for sub in ("alerts", "rules", "lib")
        for p in (REPO / "jsonnet" / sub).glob("*.libsonnet")
    )
    unused = [k for k in keys if not re.search(rf"\b(c|config)\.{k}\b", sources)]
    assert unused == []


def test_pipeline_outage_inhibits_only_the_spend_alerts_of_what_failed():
    config = yaml.safe_load((RULES / "alertmanager.yaml").read_text())
    faking = [r for r in config["inhibit_rules"] if "AIFinOpsExporterDown" in str(r)]
    by_source = {tuple(r["source_matchers"][1:]): r["target_matchers"] for r in faking}
    # A GPU-side failure (or the bridge, which feeds both) silences GPU alerts only; an LLM-side
    # one (or the bridge) the LLM alerts and a team's total.
    assert by_source == {
        ('aifinops_source=~"gpu|all"',): ['aifinops_tier=~"fast|anomaly"', 'aifinops_source="gpu"'],
        ('aifinops_source=~"llm|all"',): [
            'aifinops_tier=~"fast|anomaly"',
            'aifinops_source=~"llm|all"',
        ],
    }
    for rule in faking:
        assert rule["equal"] == ["cluster"]
        for name in (
            "AIFinOpsExporterDown",
            "AIFinOpsCollectorFailing",
            "AIFinOpsBridgeConsumerLagHigh",
            "AIFinOpsCostMetricsAbsent",
        ):
            assert name in rule["source_matchers"][0]
    # Every alert an inhibition may silence says which part it reads; the inhibiting alerts
    # compute theirs in PromQL and stay firing after recovery, so the inhibition outlasts the
    # burst.
    for _, rule in alert_rules():
        if rule["labels"]["aifinops_tier"] in ("fast", "anomaly"):
            assert rule["labels"]["aifinops_source"] in ("gpu", "llm", "all"), rule["alert"]
        if rule["alert"] in faking[0]["source_matchers"][0]:
            assert "aifinops_source" in rule["expr"], rule["alert"]
            assert rule.get("keep_firing_for") == "10m", rule["alert"]
