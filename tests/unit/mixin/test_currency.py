"""The mixin rendered in a reporting currency other than USD (`_config.currency`): the GBP budget
tier and money descriptions, the GBP dashboards' units and conversions, and the USD default
left as it was."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import _jsonnet

from support.dashboards import iter_panels, load_dashboards
from support.grafana_models import model_problems

REPO = Path(__file__).resolve().parents[3]
RUNBOOKS = REPO / "docs" / "runbooks.md"


def render(currency: str, field: str = "ruleFiles") -> dict[str, Any]:
    """A field of the mixin with `_config.currency` overridden, as docs/currency.md tells users."""
    snippet = (
        "local m = (import 'mixin.libsonnet') + { _config+:: { currency: '" + currency + "' } };"
        " m." + field
    )
    out: dict[str, Any] = json.loads(
        _jsonnet.evaluate_snippet("render", snippet, jpathdir=[str(REPO / "jsonnet")])
    )
    return out


def _rules(files: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for f in files.values() for g in f["groups"] for rule in g["rules"]]


def test_gbp_budget_tier_reads_pounds_and_every_money_description_shows_them() -> None:
    rules = _rules(render("GBP"))
    budget_alerts = [r for r in rules if r.get("alert", "").startswith("AIFinOpsBudget")]
    assert budget_alerts
    for rule in budget_alerts:
        assert "_usd" not in rule["expr"], rule["alert"]
    for rule in rules:
        text = rule.get("annotations", {}).get("description", "")
        assert "$%" not in text and '"$' not in text and "${{" not in text, rule["alert"]
    described = " ".join(r.get("annotations", {}).get("description", "") for r in rules)
    assert "£%.2f" in described and '£{{ printf "%.2f" $value }}' in described
    assert {"AIFinOpsFXRateMissing"} <= {r.get("alert") for r in rules}


def test_gbp_descriptions_state_no_dollar_threshold() -> None:
    """Floors stay USD config compared with `_usd` series, but a description in pounds states
    each one in pounds at the rate in force (with the no-rate fallback), never `$200/h`."""
    rules = {r["alert"]: r for r in _rules(render("GBP")) if "alert" in r}
    for name, rule in rules.items():
        text = rule["annotations"]["description"]
        assert not re.search(r"\$[0-9]", text), f"{name}: {text}"
    spike = rules["AIFinOpsLLMSpendSpike"]
    assert "* 3600 > 200" in spike["expr"] and "* 3600 > 1000" in spike["expr"]
    text = spike["annotations"]["description"]
    for floor in ("200.0", "1000.0"):
        assert f'` {floor} | query }}}}{{{{ . | first | value | printf "£%.2f" }}}}' in text
    assert text.count("{{ else }}(no USD to GBP rate){{ end }}") == 3


def test_usd_descriptions_state_thresholds_as_configured() -> None:
    rules = {r["alert"]: r for r in _rules(render("USD")) if "alert" in r}
    spike = rules["AIFinOpsLLMSpendSpike"]["annotations"]["description"]
    assert spike.endswith("or above $200/h with no spend then ($1000/h before any history).")
    assert "at least $100/h" in rules["AIFinOpsGPUSpendJump"]["annotations"]["description"]


def test_usd_default_has_no_currency_series_nor_rate_alert() -> None:
    rules = _rules(render("USD"))
    assert not [r for r in rules if "aifinops_fx_rate" in r.get("expr", "")]
    assert "AIFinOpsFXRateMissing" not in {r.get("alert") for r in rules}


def test_rate_alert_has_a_runbook_section() -> None:
    headings = {
        m.group(1).strip().lower() for m in re.finditer(r"^#+\s+(\S+)", RUNBOOKS.read_text(), re.M)
    }
    assert "aifinopsfxratemissing" in headings


def _money_panels(dashboard: dict[str, Any], unit: str) -> dict[str, dict[str, Any]]:
    return {
        panel["title"]: panel
        for panel in iter_panels(dashboard)
        if f'"{unit}"' in json.dumps(panel.get("fieldConfig", {}))
    }


def test_gbp_dashboards_show_every_money_panel_in_pounds_converted_at_the_rate() -> None:
    usd = load_dashboards()
    gbp = render("GBP", "grafanaDashboards")
    assert set(gbp) == set(usd)
    for name, dashboard in gbp.items():
        assert not model_problems(dashboard), name
        assert "currencyUSD" not in json.dumps(dashboard), name
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["currency"]["current"]["value"] == "GBP"
        money_usd = _money_panels(usd[name], "currencyUSD")
        money_gbp = _money_panels(dashboard, "currencyGBP")
        # The same panels, `$` in their titles now `£`.
        assert sorted(t.replace("$", "£") for t in money_usd) == sorted(money_gbp), name
        for title, panel in money_gbp.items():
            converted = [t for t in panel["targets"] if "aifinops_fx_rate{" in t["expr"]]
            assert converted, f"{name}: {title} shows dollars as pounds"
            for target in converted:
                assert 'currency="$currency"' in target["expr"]
            if panel["type"] != "table":
                assert len(converted) == len(panel["targets"]), f"{name}: {title}"
        # Non-money panels (ratios, counts) are not converted.
        others = [p for p in iter_panels(dashboard) if p["title"] not in money_gbp]
        for panel in others:
            assert 'currency=\\"$currency\\"' not in json.dumps(panel.get("targets", []))


def test_gbp_table_converts_only_its_money_columns() -> None:
    gbp = render("GBP", "grafanaDashboards")
    table = next(
        p for p in iter_panels(gbp["aifinops-gpu.json"]) if p["title"] == "Pods by GPU cost"
    )
    units = {
        o["matcher"]["options"]: o["properties"][0]["value"]
        for o in table["fieldConfig"]["overrides"]
    }
    assert units["GPU cost"] == "currencyGBP" and units["Idle share"] == "percentunit"
    converted = ["aifinops_fx_rate" in t["expr"] for t in table["targets"]]
    assert converted[:2] == [True, True] and not any(converted[2:])
