"""The shipped Alertmanager routes in a real Alertmanager: a pipeline failure silences only the
spend alerts that read what failed (issue 20). Alerts are posted with the labels the shipped rules
give them (tier and source from rules/*.yaml) and their state is read back from the API."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from aifinops.cli.demo.stack import wait_until

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


def pack_labels() -> dict[str, dict[str, str]]:
    """Alert name -> the static labels the shipped rules give it."""
    labels: dict[str, dict[str, str]] = {}
    for path in sorted((REPO / "rules").glob("aifinops-*.yaml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    labels[rule["alert"]] = rule["labels"]
    return labels


PACK = pack_labels()


def alert(name: str, **labels: str) -> dict[str, Any]:
    """An alert as the shipped rule `name` fires it, with its expression's labels."""
    return {
        "labels": {"alertname": name, **PACK.get(name, {}), **labels},
        "annotations": {"summary": name},
    }


def shipped_config(webhook_url: str) -> str:
    text = (REPO / "rules" / "alertmanager.yaml").read_text()
    (url,) = re.findall(r"- url: (\S+)", text)
    return text.replace(url, webhook_url)


def states(am: Any) -> dict[tuple[str, str], str]:
    """(alertname, the alert's team or instance) -> active / suppressed."""
    with urllib.request.urlopen(f"{am.url}/api/v2/alerts", timeout=10) as resp:
        found = json.load(resp)
    return {
        (a["labels"]["alertname"], a["labels"].get("team") or a["labels"].get("instance", "")): a[
            "status"
        ]["state"]
        for a in found
    }


def inhibitors(am: Any, name: str) -> list[str]:
    """Alert names that inhibit the alert `name`."""
    query = urllib.parse.urlencode({"filter": f'alertname="{name}"'})
    with urllib.request.urlopen(f"{am.url}/api/v2/alerts?{query}", timeout=10) as resp:
        (found,) = json.load(resp)
    with urllib.request.urlopen(f"{am.url}/api/v2/alerts", timeout=10) as resp:
        by_fingerprint = {a["fingerprint"]: a["labels"]["alertname"] for a in json.load(resp)}
    return sorted(by_fingerprint[f] for f in found["status"]["inhibitedBy"])


# The spend alerts of one cluster: an LLM spike, a token runaway, a GPU jump, a team's anomaly
# (its total, LLM and GPU), a budget burn, and a tripwire sent by an exporter.
SPEND = [
    alert("AIFinOpsLLMSpendSpike", team="agents", model="gpt-x"),
    alert("AIFinOpsLLMTokenRunaway", team="loop", model="gpt-x"),
    alert("AIFinOpsGPUSpendJump", team="ml"),
    alert("AIFinOpsSpendAnomaly", team="total"),
    alert("AIFinOpsBudgetBurnFast", team="budget", period="daily"),
    alert(
        "AIFinOpsSpendTripwire",
        severity="critical",
        aifinops_tier="tripwire",
        tripwire="request_usd",
        team="trip",
        app="a",
        model="gpt-x",
    ),
]


def run_case(alertmanager_factory: Any, webhook: Any, failures: list[dict[str, Any]]) -> dict:
    am = alertmanager_factory(shipped_config(webhook.url))
    am.post_alerts(failures)
    am.post_alerts(SPEND)
    # Inhibition is computed when the API is read; wait until every alert is in.
    wait_until(lambda: len(states(am)) == len(failures) + len(SPEND), 10, "alerts to arrive")
    return {"am": am, "states": states(am)}


def test_gpu_cost_absent_silences_gpu_alerts_only(alertmanager_factory, webhook):
    """An installation whose GPU cost family went away (its GPU exporter removed): the GPU jump
    is silenced, every LLM alert and the anomaly still notify. Before issue 20 the absence of a
    family silenced every fast and anomaly alert of the cluster, for good."""
    case = run_case(
        alertmanager_factory,
        webhook,
        [
            alert(
                "AIFinOpsCostMetricsAbsent",
                metric="aifinops_gpu_cost_usd_total",
                aifinops_source="gpu",
            )
        ],
    )
    assert case["states"] == {
        ("AIFinOpsCostMetricsAbsent", ""): "active",
        ("AIFinOpsLLMSpendSpike", "agents"): "active",
        ("AIFinOpsLLMTokenRunaway", "loop"): "active",
        ("AIFinOpsGPUSpendJump", "ml"): "suppressed",
        ("AIFinOpsSpendAnomaly", "total"): "active",
        ("AIFinOpsBudgetBurnFast", "budget"): "active",
        ("AIFinOpsSpendTripwire", "trip"): "active",
    }
    assert inhibitors(case["am"], "AIFinOpsGPUSpendJump") == ["AIFinOpsCostMetricsAbsent"]


def test_gpu_only_installation_keeps_gpu_alerts_when_llm_cost_is_absent(
    alertmanager_factory, webhook
):
    """A GPU-only installation whose LLM family went away: the GPU jump still notifies."""
    case = run_case(
        alertmanager_factory,
        webhook,
        [
            alert(
                "AIFinOpsCostMetricsAbsent",
                metric="aifinops_llm_cost_usd_total",
                aifinops_source="llm",
            )
        ],
    )
    s = case["states"]
    assert s[("AIFinOpsGPUSpendJump", "ml")] == "active"
    assert s[("AIFinOpsLLMSpendSpike", "agents")] == "suppressed"
    assert s[("AIFinOpsLLMTokenRunaway", "loop")] == "suppressed"
    # A team's total includes the LLM part, which the absence fakes.
    assert s[("AIFinOpsSpendAnomaly", "total")] == "suppressed"
    assert s[("AIFinOpsBudgetBurnFast", "budget")] == "active"
    assert s[("AIFinOpsSpendTripwire", "trip")] == "active"


def test_one_gpu_node_down_silences_gpu_alerts_and_keeps_the_llm_spike(
    alertmanager_factory, webhook
):
    """One GPU node's exporter is down: the cluster's GPU jump is silenced (its figures lack
    that node), the LLM spike and the team total still notify."""
    case = run_case(
        alertmanager_factory,
        webhook,
        [
            alert(
                "AIFinOpsExporterDown",
                job="aifinops-gpu-exporter",
                instance="10.0.3.7:9871",
                node="gpu-node-3",
                aifinops_source="gpu",
            )
        ],
    )
    assert case["states"] == {
        ("AIFinOpsExporterDown", "10.0.3.7:9871"): "active",
        ("AIFinOpsLLMSpendSpike", "agents"): "active",
        ("AIFinOpsLLMTokenRunaway", "loop"): "active",
        ("AIFinOpsGPUSpendJump", "ml"): "suppressed",
        ("AIFinOpsSpendAnomaly", "total"): "active",
        ("AIFinOpsBudgetBurnFast", "budget"): "active",
        ("AIFinOpsSpendTripwire", "trip"): "active",
    }
    assert inhibitors(case["am"], "AIFinOpsGPUSpendJump") == ["AIFinOpsExporterDown"]
    # The LLM spike is notified while the GPU node is down.
    webhook.wait_for(
        lambda bodies: any(
            b["groupLabels"].get("alertname") == "AIFinOpsLLMSpendSpike" for b in bodies
        ),
        timeout=10,
    )
    time.sleep(2)  # past the fast route's 1 s group_wait: the GPU jump would be in by now
    notified = {a["labels"]["alertname"] for _, body in webhook.received for a in body["alerts"]}
    assert "AIFinOpsGPUSpendJump" not in notified


def test_token_exporter_down_silences_llm_alerts_and_keeps_the_gpu_jump(
    alertmanager_factory, webhook
):
    case = run_case(
        alertmanager_factory,
        webhook,
        [
            alert(
                "AIFinOpsExporterDown",
                job="aifinops-token-exporter",
                instance="10.0.1.2:9872",
                aifinops_source="llm",
            )
        ],
    )
    s = case["states"]
    assert s[("AIFinOpsLLMSpendSpike", "agents")] == "suppressed"
    assert s[("AIFinOpsSpendAnomaly", "total")] == "suppressed"
    assert s[("AIFinOpsGPUSpendJump", "ml")] == "active"
    assert s[("AIFinOpsSpendTripwire", "trip")] == "active"


def test_bridge_lag_silences_every_fast_and_anomaly_alert_but_no_budget_or_tripwire(
    alertmanager_factory, webhook
):
    """The bridge feeds both parts; its backlog fakes both."""
    case = run_case(
        alertmanager_factory,
        webhook,
        [
            alert(
                "AIFinOpsBridgeConsumerLagHigh",
                job="aifinops-bridge",
                instance="10.0.2.2:9873",
                topic="ai-api-costs",
                aifinops_source="all",
            )
        ],
    )
    assert case["states"] == {
        ("AIFinOpsBridgeConsumerLagHigh", "10.0.2.2:9873"): "active",
        ("AIFinOpsLLMSpendSpike", "agents"): "suppressed",
        ("AIFinOpsLLMTokenRunaway", "loop"): "suppressed",
        ("AIFinOpsGPUSpendJump", "ml"): "suppressed",
        ("AIFinOpsSpendAnomaly", "total"): "suppressed",
        ("AIFinOpsBudgetBurnFast", "budget"): "active",
        ("AIFinOpsSpendTripwire", "trip"): "active",
    }


def test_a_failure_in_one_cluster_leaves_another_clusters_alerts_alone(
    alertmanager_factory, webhook
):
    am = alertmanager_factory(shipped_config(webhook.url))
    am.post_alerts(
        [
            alert(
                "AIFinOpsBridgeConsumerLagHigh",
                cluster="eu",
                instance="bridge:9873",
                topic="ai-api-costs",
                aifinops_source="all",
            ),
            alert("AIFinOpsLLMSpendSpike", cluster="eu", team="eu-team", model="m"),
            alert("AIFinOpsLLMSpendSpike", cluster="us", team="us-team", model="m"),
        ]
    )
    wait_until(lambda: len(states(am)) == 3, 10, "alerts to arrive")
    s = states(am)
    assert s[("AIFinOpsLLMSpendSpike", "eu-team")] == "suppressed"
    assert s[("AIFinOpsLLMSpendSpike", "us-team")] == "active"


def test_a_tripwire_is_notified_on_its_own_route_while_the_bridge_lags(
    alertmanager_factory, webhook
):
    """The tripwire tier has a route of its own (group_wait 0s, one group per team and limit)
    to the same bridge receiver, and a pipeline outage does not hold it back."""
    am = alertmanager_factory(shipped_config(webhook.url))
    am.post_alerts(
        [
            alert(
                "AIFinOpsBridgeConsumerLagHigh",
                instance="bridge:9873",
                topic="ai-api-costs",
                aifinops_source="all",
            )
        ]
    )
    tripwire = next(a for a in SPEND if a["labels"]["alertname"] == "AIFinOpsSpendTripwire")
    am.post_alerts([tripwire])
    bodies = webhook.wait_for(
        lambda bodies: any(
            b["groupLabels"].get("alertname") == "AIFinOpsSpendTripwire" for b in bodies
        ),
        timeout=10,
    )
    (body,) = [b for b in bodies if b["groupLabels"].get("alertname") == "AIFinOpsSpendTripwire"]
    assert body["groupLabels"] == {
        "alertname": "AIFinOpsSpendTripwire",
        "team": "trip",
        "tripwire": "request_usd",
    }
    (sent,) = body["alerts"]
    assert sent["status"] == "firing"
    assert sent["labels"]["aifinops_tier"] == "tripwire"
    assert states(am)[("AIFinOpsSpendTripwire", "trip")] == "active"
