"""The `aifinops` command: the user-facing verbs (`demo`, `topics`, `price`, `focus`, `generate`, `config`)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from aifinops.exporters import __version__

# verb → module in this package with `add_arguments(parser)` and `run(args) -> int`.
VERBS = {
    "config": ("check a configuration file and print every problem", "config_check"),
    "demo": (
        "run the whole pipeline here with traffic, a runaway and an idle GPU, and watch it",
        "demo.command",
    ),
    "focus": ("export LLM and GPU spend from Kafka as FOCUS 1.2 files for chargeback", "focus"),
    "generate": ("render rules, dashboards and chart copies from jsonnet/", "generate"),
    "price": ("the price of one LLM call, broken down by token type", "price"),
    "topics": (
        "create the Kafka topics, or check how the cluster differs from the config",
        "topics",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The parser with one sub-command per verb."""
    parser = argparse.ArgumentParser(prog="aifinops", description="AI FinOps for Prometheus.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb, (help_text, module_name) in VERBS.items():
        module = importlib.import_module(f"{__package__}.{module_name}")
        verb_parser = sub.add_parser(verb, help=help_text, description=help_text)
        module.add_arguments(verb_parser)
        verb_parser.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one verb; returns its exit code."""
    args = build_parser().parse_args(argv)
    try:
        code = int(args.run(args))
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`aifinops price ... | head -3`): stop quietly as a killed-by-SIGPIPE
        # tool would, and point stdout at /dev/null so the interpreter's final flush cannot raise.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13
    return code
