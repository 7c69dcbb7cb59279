"""The package's parts are all listed in pyproject and import one way."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PARTS = {"exporters": "aifinops.exporters", "bridge": "aifinops.bridge", "cli": "aifinops.cli"}
# What each part may import of the others: cli -> bridge -> exporters, never back.
FORBIDDEN = {
    "exporters": ("aifinops.bridge", "aifinops.cli"),
    "bridge": ("aifinops.cli",),
    "cli": (),
}


def test_every_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = set()
    for folder, namespace in PARTS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            found.add(".".join([namespace, *rel.parts]))
    assert found - listed == set(), "package folders missing from [tool.setuptools] packages"


def _imports(path: Path, package: str) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                if node.module:
                    names.add(".".join([*base, node.module]))
                else:  # `from .. import bridge` names modules in its aliases
                    names.update(".".join([*base, a.name]) for a in node.names)
            elif node.module:
                names.add(node.module)
    return names


def _modules(folder: str):
    for path in sorted((REPO / folder).rglob("*.py")):
        rel = path.relative_to(REPO / folder).with_suffix("")
        parts = list(rel.parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        dotted = ".".join([PARTS[folder], *parts])
        yield path, dotted if is_pkg else dotted.rpartition(".")[0]


def test_the_import_scan_sees_relative_and_absolute_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "from .. import bridge\nfrom ..cli.x import y\nimport aifinops.bridge.producer\n"
    )
    names = _imports(module, "aifinops.exporters")
    assert {"aifinops.bridge", "aifinops.cli.x", "aifinops.bridge.producer"} <= names


@pytest.mark.parametrize("folder", sorted(PARTS))
def test_imports_run_one_way(folder):
    bad = []
    for path, package in _modules(folder):
        for name in _imports(path, package):
            for forbidden in FORBIDDEN[folder]:
                if name == forbidden or name.startswith(forbidden + "."):
                    bad.append(f"{path.relative_to(REPO)} imports {name}")
            # Inside the repository a part is always reached through the namespace.
            if name.split(".")[0] in PARTS:
                bad.append(f"{path.relative_to(REPO)} imports bare {name}")
    assert bad == []


def test_only_one_module_imports_kafka():
    importers = []
    for folder in PARTS:
        for path, package in _modules(folder):
            if any(n == "kafka" or n.startswith("kafka.") for n in _imports(path, package)):
                importers.append(str(path.relative_to(REPO)))
    # Exactly one: a scan that found nothing would pass a "<= 1" check without looking.
    assert importers == ["bridge/transport.py"]


def _exporters_imports(*files: str) -> dict[str, set[str]]:
    found = {}
    for path, package in _modules("exporters"):
        rel = str(path.relative_to(REPO / "exporters"))
        if rel in files or any(rel.startswith(f) for f in files if f.endswith("/")):
            found[rel] = {n for n in _imports(path, package) if n.startswith("aifinops.exporters.")}
    return found


def test_the_config_schema_imports_no_feature_module():
    # The schema validates a file with shared checks only; features import the schema, not back.
    allowed = ("aifinops.exporters.checks", "aifinops.exporters.runtime.")
    found = _exporters_imports("config.py", "checks.py")
    assert set(found) == {"config.py", "checks.py"}
    bad = {f: sorted(n for n in names if not n.startswith(allowed)) for f, names in found.items()}
    assert bad == {"config.py": [], "checks.py": []}
    assert "aifinops.exporters.checks" in found["config.py"]


def test_pricing_is_pure():
    # No loader, no config schema, no HTTP: reading the override file is `llm.overrides`' job.
    found = _exporters_imports("pricing/")
    assert "pricing/pricer.py" in found
    bad = [
        f"{f} imports {n}"
        for f, names in found.items()
        for n in names
        if n.startswith(("aifinops.exporters.runtime", "aifinops.exporters.config"))
    ]
    assert bad == []
