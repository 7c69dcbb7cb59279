"""`aifinops config check`: load a configuration the way the daemons do and list every problem."""

from __future__ import annotations

import argparse
import sys

from aifinops.exporters.config import Config
from aifinops.exporters.gpu.sources import CONFIG_CHOICES
from aifinops.exporters.runtime.config import ConfigError, load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`aifinops config --config.file PATH`."""
    parser.add_argument("--config.file", dest="config_file", metavar="PATH")


def run(args: argparse.Namespace) -> int:
    """Exit 0 when the file and the environment give a valid configuration, 2 otherwise."""
    try:
        load_config(Config, args.config_file, choices=CONFIG_CHOICES)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"{args.config_file or '(defaults and environment)'}: valid")
    return 0
