"""The savings tier's label bounds: every label value its series can carry comes from the rule pack's
own config (five actions, the MIG table's profiles, the configured cheaper models), never from a
scraped value, and overriding the config changes them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import _jsonnet
import yaml

REPO = Path(__file__).resolve().parents[3]
SAVINGS = REPO / "rules" / "aifinops-savings.yaml"


def config() -> dict:
    return json.loads(
        _jsonnet.evaluate_snippet(
            "c", "(import 'config.libsonnet')._config", jpathdir=[str(REPO / "jsonnet")]
        )
    )


def savings_rules(group: dict) -> list[dict]:
    return [r for r in group["rules"] if r.get("record") == "aifinops_savings_usd_per_month"]


def test_every_label_value_of_the_savings_series_comes_from_the_config():
    (group,) = yaml.safe_load(SAVINGS.read_text())["groups"]
    rules = savings_rules(group)
    actions = [r["labels"]["action"] for r in rules]
    assert set(actions) == {"release", "share", "schedule", "prompt_cache", "cheaper_model"}
    c = config()
    (share,) = [r for r in rules if r["labels"]["action"] == "share"]
    profiles = set(re.findall(r'"profile", "([^"]+)"', share["expr"]))
    assert profiles == {p["name"] for t in c["savingsMigProfiles"] for p in t["profiles"]}
    to_models = {r["labels"]["to_model"] for r in rules if r["labels"]["action"] == "cheaper_model"}
    assert to_models == {to for m in c["savingsCheaperModels"].values() for to in m.values()}
    # Other labels are the exporters' (bounded there): no rule of the group writes any but these.
    exprs = " ".join(r["expr"] for r in group["rules"])
    written = re.findall(r',\s*"(\w+)",\s*"[^"]*",\s*"",\s*""\s*\)', exprs)
    assert written and set(written) == {"profile"}
    assert len(written) == exprs.count("label_replace(") and "label_join" not in exprs
    assert {k for r in group["rules"] for k in r.get("labels", {})} <= {"action", "to_model"} | {
        "severity",
        "aifinops_tier",
        "aifinops_source",
    }


def test_overriding_the_config_changes_the_actions_thresholds_and_labels():
    snippet = (
        "local m = (import 'mixin.libsonnet') + { _config+:: {"
        " savingsLookback: '14d', savingsIdleRatio: 0.1, savingsAlertUsdPerMonth: 250,"
        " savingsCheaperModels: { openai: { 'gpt-4.1': 'gpt-4.1-nano' } },"
        " savingsMigProfiles: [{ gpu: 'A30', match: '.*A30.*', slices: 4, profiles: ["
        "   { name: '1g.6gb', slices: 1, memoryGiB: 6 } ] }] } };"
        " m.ruleFiles['aifinops-savings']"
    )
    rendered = json.loads(_jsonnet.evaluate_snippet("o", snippet, jpathdir=[str(REPO / "jsonnet")]))
    (group,) = rendered["groups"]
    rules = savings_rules(group)
    (release,) = [r for r in rules if r["labels"]["action"] == "release"]
    assert "p95_14d < 0.1" in release["expr"]
    (cheaper,) = [r for r in rules if r["labels"]["action"] == "cheaper_model"]
    assert cheaper["labels"]["to_model"] == "gpt-4.1-nano"
    (share,) = [r for r in rules if r["labels"]["action"] == "share"]
    assert re.findall(r'"profile", "([^"]+)"', share["expr"]) == ["1g.6gb"]
    # 1g.6gb of 4 slices: saves 3/4 where the peaks fit 1/4 x 0.8.
    assert "* 3 / 4" in share["expr"] and "<= 0.2)" in share["expr"]
    (alert,) = [r for r in group["rules"] if "alert" in r]
    assert alert["expr"] == "team:aifinops_savings_usd_per_month:sum > 250"
