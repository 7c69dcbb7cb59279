"""Generated files (rules, dashboards, chart and demo package copies) match a fresh render of jsonnet/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aifinops.cli.generate import GenerateError, render, stale

REPO = Path(__file__).resolve().parents[3]


def test_committed_generated_files_are_fresh():
    assert stale(REPO) == [], "run `make generate` and commit the result"


def test_the_render_covers_every_committed_rule_and_dashboard():
    # A render that produced nothing would make the freshness check pass vacuously.
    rendered = set(render(REPO))
    # The demo package's copies (package data of the wheel) are part of it, so they are kept fresh.
    committed = {
        p.relative_to(REPO)
        for folder in ("rules", "dashboards", "cli/demo/files/rules", "cli/demo/files/dashboards")
        for p in (REPO / folder).iterdir()
        if p.suffix in (".yaml", ".json")
    }
    assert committed and committed <= rendered


def test_a_missing_entry_point_is_an_error_not_an_empty_render(tmp_path):
    shutil.copytree(REPO / "jsonnet", tmp_path / "jsonnet")
    (tmp_path / "jsonnet" / "generate.jsonnet").unlink()
    with pytest.raises(GenerateError, match=r"generate\.jsonnet"):
        render(tmp_path)
