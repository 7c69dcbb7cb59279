"""`aifinops generate`: render the jsonnet mixin into rules/ and dashboards/ and sync the chart's copies."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import _jsonnet

HEADER = "# Generated from jsonnet/ by `make generate` (aifinops generate); do not edit.\n"
ENTRY = Path("jsonnet") / "generate.jsonnet"
# Helm cannot read files outside the chart, so the chart carries copies of the generated files.
CHART_FILES = Path("charts") / "aifinops" / "files"


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
    chart = root / CHART_FILES.parent
    if chart.exists():
        for rel, text in list(files.items()):
            if rel.parts[0] in ("rules", "dashboards"):
                files[CHART_FILES / rel] = text
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
