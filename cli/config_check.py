"""`aifinops config`: load a configuration and its web config as the daemons do; list every problem."""

from __future__ import annotations

import argparse
import sys

from aifinops.exporters.config import Config
from aifinops.exporters.gpu.sources import CONFIG_CHOICES
from aifinops.exporters.runtime.config import ConfigError, load_config
from aifinops.exporters.runtime.webconfig import WebConfigError, load_web_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`aifinops config [--config.file PATH] [--web.config.file PATH]`."""
    parser.add_argument("--config.file", dest="config_file", metavar="PATH")
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        metavar="PATH",
        help="the exporter-toolkit web config to check (default: web.config_file of the config)",
    )


def run(args: argparse.Namespace) -> int:
    """Exit 0 when the file, the environment and the web config they name are valid, 2 otherwise.

    Both are checked even when the first has problems, so one run lists everything to fix.
    """
    code = 0
    web_config_file: str | None = args.web_config_file
    overrides = {"web.config_file": web_config_file} if web_config_file else None
    try:
        config = load_config(Config, args.config_file, overrides=overrides, choices=CONFIG_CHOICES)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        code = 2
    else:
        web_config_file = config.web.config_file or None
        print(f"{args.config_file or '(defaults and environment)'}: valid")
    if web_config_file:
        try:
            # The daemons' own loader: the same keys, hashes and certificate files are checked.
            load_web_config(web_config_file)
        except WebConfigError as exc:
            print(
                f"invalid web config {web_config_file} ({len(exc.problems)} problem"
                f"{'s' if len(exc.problems) != 1 else ''}):\n"
                + "\n".join(f"  {p}" for p in exc.problems),
                file=sys.stderr,
            )
            code = 2
        else:
            print(f"{web_config_file}: valid web config")
    return code
