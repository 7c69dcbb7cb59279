"""The rule pack rendered in GBP through promtool: lint, and the unit tests of
tests/rules/currency/gbp.test.yaml."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import _jsonnet
import pytest
import yaml

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]

GBP_TEST = REPO / "tests" / "rules" / "currency" / "gbp.test.yaml"


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


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not on PATH (make system-deps installs it)")
    return path


@pytest.fixture(scope="module")
def gbp_rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gbp")
    (root / "rules").mkdir()
    for name, content in render("GBP").items():
        text = yaml.safe_dump(content, sort_keys=False, allow_unicode=True)
        (root / "rules" / f"{name}.yaml").write_text(text, encoding="utf-8")
    shutil.copy(GBP_TEST, root / GBP_TEST.name)
    return root


def test_gbp_render_passes_promtool_lint(gbp_rules: Path) -> None:
    for path in sorted((gbp_rules / "rules").glob("*.yaml")):
        result = subprocess.run(
            [promtool(), "check", "rules", "--lint=all", "--lint-fatal", str(path)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_gbp_promtool_unit_tests_pass(gbp_rules: Path) -> None:
    """A new rate leaves recorded spend as it was; a budget in pounds alerts when the spend in
    pounds crosses it; no rate is an alert (tests/rules/currency/gbp.test.yaml)."""
    result = subprocess.run(
        [promtool(), "test", "rules", GBP_TEST.name],
        cwd=gbp_rules,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
