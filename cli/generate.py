"""`aifinops generate`: render the jsonnet mixin into rules/ and dashboards/, sync the chart's and the
demo package's copies, and compile the project's protocol buffer definitions into Python modules."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
import tempfile
from pathlib import Path

import _jsonnet

HEADER = "# Generated from jsonnet/ by `make generate` (aifinops generate); do not edit.\n"
ENTRY = Path("jsonnet") / "generate.jsonnet"
# Helm cannot read files outside the chart, so the chart carries copies of the generated files.
CHART_FILES = Path("charts") / "aifinops" / "files"
# `aifinops demo` ships the rules, the Alertmanager routing and the dashboards as package data, so
# the installed wheel (and the image) runs without a checkout.
DEMO_FILES = Path("cli") / "demo" / "files"
# The demo reports in pounds: it also ships the rule pack and dashboards rendered with the mixin's
# `currency` key (docs/currency.md), so jsonnet/ stays out of the wheel.
DEMO_CURRENCIES = ("GBP",)
CURRENCY_RENDER = """
local mixin = (import 'mixin.libsonnet') + { _config+:: { currency: '%s' } };
{
  ['rules/' + name + '.yaml']: std.manifestYamlDoc(
    mixin.ruleFiles[name], indent_array_in_object=true, quote_keys=false) + '\\n'
  for name in std.objectFields(mixin.ruleFiles)
} + {
  ['dashboards/' + name]: std.manifestJsonEx(mixin.grafanaDashboards[name], '  ') + '\\n'
  for name in std.objectFields(mixin.grafanaDashboards)
}
"""
# .proto files compiled into <name>_pb2.py, its type stub <name>_pb2.pyi (what mypy reads of the
# messages, which the module makes at import time) and <name>_pb2_grpc.py beside them.
PROTOS = (Path("exporters") / "gpu" / "podresources" / "api.proto",)
# grpcio-tools writes its own and protobuf's version into the modules (and the code differs between
# releases), so the committed modules come from exactly this release (pinned in the test extra).
GRPC_TOOLS_VERSION = "1.85.4"
PY_HEADER = (
    "# Generated from {proto} by `make generate` (aifinops generate, grpcio-tools {version}); "
    "do not edit.\n"
)


class GenerateError(Exception):
    """The mixin could not be rendered."""


def render(root: Path) -> dict[Path, str]:
    """Every generated file under `root` with the content a fresh render gives it."""
    entry = root / ENTRY
    if not entry.exists():
        raise GenerateError(f"{entry}: missing (the mixin's entry point)")
    try:
        outputs = json.loads(_jsonnet.evaluate_file(str(entry), jpathdir=[str(root / "jsonnet")]))
    except RuntimeError as exc:
        raise GenerateError(str(exc)) from exc
    files: dict[Path, str] = {}
    for rel, content in outputs.items():
        text = content if isinstance(content, str) else json.dumps(content, indent=2) + "\n"
        if rel.endswith((".yaml", ".yml")):
            text = HEADER + text
        files[Path(rel)] = text
    copies = [d for d in (CHART_FILES, DEMO_FILES) if (root / d.parent).exists()]
    for rel, text in list(files.items()):
        if rel.parts[0] in ("rules", "dashboards"):
            for copy in copies:
                files[copy / rel] = text
    if (root / DEMO_FILES.parent).exists():
        files.update(render_demo_currencies(root))
    files.update(render_protos(root))
    return files


def render_demo_currencies(root: Path) -> dict[Path, str]:
    """The rule files and dashboards in each of `DEMO_CURRENCIES`, under
    `cli/demo/files/<code lower case>/`, as `generate.jsonnet` writes the USD ones."""
    files: dict[Path, str] = {}
    for code in DEMO_CURRENCIES:
        try:
            outputs = json.loads(
                _jsonnet.evaluate_snippet(
                    f"currency-{code}", CURRENCY_RENDER % code, jpathdir=[str(root / "jsonnet")]
                )
            )
        except RuntimeError as exc:
            raise GenerateError(f"the {code} render: {exc}") from exc
        for rel, text in outputs.items():
            files[DEMO_FILES / code.lower() / rel] = (
                HEADER + text if rel.endswith(".yaml") else text
            )
    return files


def render_protos(root: Path) -> dict[Path, str]:
    """The Python modules of every .proto in `PROTOS` under `root` (those present), compiled with
    grpcio-tools; raises `GenerateError` without it or with another release of it."""
    present = [rel for rel in PROTOS if (root / rel).exists()]
    if not present:
        return {}
    try:
        import grpc_tools
        from grpc_tools import protoc
    except ImportError as exc:
        raise GenerateError(
            f"grpcio-tools is not installed ({exc}): pip install 'grpcio-tools=={GRPC_TOOLS_VERSION}'"
        ) from exc
    version = importlib.metadata.version("grpcio-tools")
    if version != GRPC_TOOLS_VERSION:
        raise GenerateError(
            f"grpcio-tools {version} is installed but the modules are generated with "
            f"{GRPC_TOOLS_VERSION} (its output differs between releases): "
            f"pip install 'grpcio-tools=={GRPC_TOOLS_VERSION}'"
        )
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    files: dict[Path, str] = {}
    for rel in present:
        with tempfile.TemporaryDirectory() as out:
            # The repository root as include path: the descriptor is registered under the file's
            # repository path, unique in protobuf's process-wide pool.
            status = protoc.main(
                [
                    "grpc_tools.protoc",
                    f"-I{root}",
                    f"-I{well_known}",
                    f"--python_out={out}",
                    f"--pyi_out={out}",
                    f"--grpc_python_out={out}",
                    str(root / rel),
                ]
            )
            if status != 0:
                raise GenerateError(f"{rel}: protoc failed (exit {status}; its message is above)")
            module = ".".join((*rel.parent.parts, rel.stem))
            for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
                name = rel.stem + suffix
                text = (Path(out) / rel.parent / name).read_text(encoding="utf-8")
                # The package's own module, imported relative to it wherever it is installed.
                text = text.replace(f"from {module.rpartition('.')[0]} import ", "from . import ")
                header = PY_HEADER.format(proto=rel.as_posix(), version=GRPC_TOOLS_VERSION)
                files[rel.parent / name] = header + text
    return files


def stale(root: Path) -> list[Path]:
    """Generated files whose committed content differs from a fresh render (or that are missing)."""
    out = []
    for rel, text in render(root).items():
        path = root / rel
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            out.append(rel)
    return sorted(out)


def write(root: Path) -> list[Path]:
    """Render and write every generated file; returns the paths that changed."""
    changed = []
    for rel, text in render(root).items():
        path = root / rel
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        changed.append(rel)
    return sorted(changed)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`aifinops generate [--check] [--root DIR]`."""
    parser.add_argument(
        "--check", action="store_true", help="only report stale files; exit 1 if any"
    )
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root")


def run(args: argparse.Namespace) -> int:
    """Write (or with --check, compare) the generated files."""
    try:
        if args.check:
            paths = stale(args.root)
            for p in paths:
                print(f"stale: {p} (run `make generate`)", file=sys.stderr)
            return 1 if paths else 0
        for p in write(args.root):
            print(f"wrote {p}")
    except GenerateError as exc:
        print(f"aifinops generate: {exc}", file=sys.stderr)
        return 1
    return 0
