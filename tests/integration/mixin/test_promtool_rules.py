"""The rule pack through Prometheus' and Alertmanager's own tools: promtool lint and unit tests
(tests/rules/*.test.yaml), amtool on the Alertmanager config and its routes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]

RULES = REPO / "rules"

RULE_TESTS = REPO / "tests" / "rules"

RULE_FILES = sorted(RULES.glob("aifinops-*.yaml"))

TEST_FILES = sorted(RULE_TESTS.glob("*.test.yaml"))


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not on PATH (make system-deps installs it)")
    return path


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_rule_file_passes_promtool_check_with_lint(path):
    result = run(tool("promtool"), "check", "rules", "--lint=all", "--lint-fatal", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests_pass(path):
    result = run(tool("promtool"), "test", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_config_passes_amtool():
    result = run(tool("amtool"), "check-config", RULES / "alertmanager.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def _route(*labels: str) -> str:
    result = run(
        tool("amtool"),
        "config",
        "routes",
        "test",
        "--tree",
        f"--config.file={RULES / 'alertmanager.yaml'}",
        *labels,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_savings_alert_is_routed_like_the_waste_tier():
    def route(alertname: str, tier: str) -> str:
        tree = _route(f"alertname={alertname}", f"aifinops_tier={tier}", "severity=info", "team=a")
        return tree.replace(alertname, "").replace(tier, "")

    assert route("AIFinOpsSavingsAvailable", "savings") == route(
        "AIFinOpsUnattributedSpend", "waste"
    )
    assert "default-route" in route("AIFinOpsSavingsAvailable", "savings")


def test_alertmanager_routes_fast_alerts_in_groups_of_one_with_a_one_second_wait():
    config = yaml.safe_load((RULES / "alertmanager.yaml").read_text())
    fast = next(r for r in config["route"]["routes"] if r["matchers"] == ['aifinops_tier="fast"'])
    assert fast["group_by"] == ["alertname", "team", "model"]
    assert fast["group_wait"] == "1s"
    assert '{aifinops_tier="fast"}' in _route(
        "alertname=AIFinOpsLLMSpendSpike", "aifinops_tier=fast", "team=a", "model=m"
    )
    # Everything else at ordinary pace, to the same webhook.
    slow = _route("alertname=AIFinOpsBudgetBurnFast", "aifinops_tier=burn", "team=a")
    assert "aifinops_tier" not in slow and "default-route" in slow
    assert config["route"]["group_wait"] == "30s"
    assert "AIFinOpsWatchdog" in _route("alertname=AIFinOpsWatchdog", "aifinops_tier=pipeline")
    (receiver,) = config["receivers"]
    assert receiver["webhook_configs"][0]["url"].endswith(":9873/v1/alertmanager")
    text = (RULES / "alertmanager.yaml").read_text()
    assert "# - name: pagerduty" in text and "# - name: slack" in text


def test_alertmanager_routes_tripwires_at_once_to_the_bridge_and_never_inhibits_them():
    config = yaml.safe_load((RULES / "alertmanager.yaml").read_text())
    (tripwire,) = [
        r for r in config["route"]["routes"] if r["matchers"] == ['aifinops_tier="tripwire"']
    ]
    assert tripwire["receiver"] == "aifinops-bridge"
    assert tripwire["group_wait"] == "0s"
    assert tripwire["group_by"] == ["alertname", "team", "tripwire"]
    # What the exporters send (DESIGN.md "Tripwires") takes that route, not the fast one.
    routed = _route(
        "alertname=AIFinOpsSpendTripwire",
        "aifinops_tier=tripwire",
        "severity=critical",
        "tripwire=team_usd_per_minute",
        "team=a",
        "app=b",
        "model=m",
    )
    assert '{aifinops_tier="tripwire"}' in routed and 'aifinops_tier="fast"' not in routed
    # Inhibitions target named tiers or alerts; none names the tripwire (a real Alertmanager
    # shows it active during a bridge outage: tests/integration/mixin/test_alertmanager_inhibition.py).
    for rule in config["inhibit_rules"]:
        assert "tripwire" not in str(rule["target_matchers"]).lower(), rule
