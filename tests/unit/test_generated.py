"""Generated files (rules, dashboards, chart copies) match a fresh render of jsonnet/."""

from __future__ import annotations

from pathlib import Path

from aifinops.cli.generate import stale

REPO = Path(__file__).resolve().parents[2]


def test_committed_generated_files_are_fresh():
    assert stale(REPO) == [], "run `make generate` and commit the result"
