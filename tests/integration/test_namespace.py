"""The package from a fresh interpreter outside the checkout: its parts import under the
`aifinops` namespace and no generic top-level name resolves into this project."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

PARTS = {"exporters": "aifinops.exporters", "bridge": "aifinops.bridge", "cli": "aifinops.cli"}


def test_parts_import_under_the_aifinops_namespace():
    code = (
        "import aifinops.exporters, aifinops.bridge, aifinops.cli\n"
        "print(aifinops.exporters.__name__, aifinops.bridge.__name__, aifinops.cli.__name__)\n"
    )
    # Run outside the repository so the checkout's folders are not on the path.
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    ).stdout
    assert out.split() == ["aifinops.exporters", "aifinops.bridge", "aifinops.cli"]


def test_no_generic_top_level_name_resolves_into_this_project():
    # Another distribution may own a top-level `cli` (python-hcl2 does); ours must not add one.
    code = (
        "import importlib.util, json\n"
        "specs = {n: importlib.util.find_spec(n) for n in ('exporters', 'bridge', 'cli')}\n"
        "print(json.dumps({n: s.origin if s else None for n, s in specs.items()}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    ).stdout
    origins = json.loads(out)
    ours = tuple(str(REPO / part) for part in PARTS)
    assert not [o for o in origins.values() if o and o.startswith(ours)], origins
