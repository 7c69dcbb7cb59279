"""Flags, config loading and daemon start-up shared by the three daemons' `main`s."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from aifinops.exporters import __version__
from aifinops.exporters.config import Config
from aifinops.exporters.gpu.sources import CONFIG_CHOICES
from aifinops.exporters.runtime.config import ConfigError, load_config
from aifinops.exporters.runtime.logs import configure_logging
from aifinops.exporters.runtime.webconfig import WebConfigError, load_web_config

# Flag destination → config path it overrides (flags win over the environment, which wins over the file).
_FLAG_PATHS = {
    "web_listen_address": "web.listen_address",
    "web_config_file": "web.config_file",
    "log_level": "log.level",
    "log_format": "log.format",
    "kafka_bootstrap_servers": "kafka.bootstrap_servers",
}


@dataclass(frozen=True)
class DaemonSpec:
    """What distinguishes one daemon's command line: its name, default port and extra flags."""

    prog: str
    description: str
    default_port: int


def daemon_parser(spec: DaemonSpec) -> argparse.ArgumentParser:
    """The Prometheus-style flags every daemon takes."""
    parser = argparse.ArgumentParser(prog=spec.prog, description=spec.description)
    parser.add_argument(
        "--config.file", dest="config_file", metavar="PATH", help="YAML config file"
    )
    parser.add_argument(
        "--web.listen-address",
        dest="web_listen_address",
        metavar="HOST:PORT",
        help=f"address to serve /metrics and the API on (default :{spec.default_port})",
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        metavar="PATH",
        help="exporter-toolkit web config: TLS (tls_server_config) and basic auth "
        "(basic_auth_users with bcrypt hashes); see docs/deploy.md",
    )
    parser.add_argument("--log.level", dest="log_level", choices=["debug", "info", "warn", "error"])
    parser.add_argument("--log.format", dest="log_format", choices=["logfmt", "json"])
    parser.add_argument(
        "--kafka.bootstrap-servers",
        dest="kafka_bootstrap_servers",
        metavar="HOST:PORT[,...]",
        help="Kafka brokers; mirroring to Kafka is off when unset",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def load_daemon_config(
    args: argparse.Namespace, extra_paths: dict[str, str] | None = None
) -> Config:
    """Load the config file, environment and flags (flags last). Raises `ConfigError`."""
    paths = {**_FLAG_PATHS, **(extra_paths or {})}
    overrides = {
        path: value
        for dest, path in paths.items()
        if (value := getattr(args, dest, None)) is not None
    }
    return load_config(Config, args.config_file, overrides=overrides, choices=CONFIG_CHOICES)


def listen_address(config: Config, spec: DaemonSpec) -> str:
    """The configured listen address, or the daemon's default port on all interfaces."""
    return config.web.listen_address or f":{spec.default_port}"


def start_daemon(
    spec: DaemonSpec,
    argv: Sequence[str] | None,
    extra_flags: list[tuple[Sequence[str], dict[str, object], str]] | None = None,
) -> Config | int:
    """Parse flags and load config; return the config, or an exit code after printing the problem."""
    parser = daemon_parser(spec)
    extra_paths: dict[str, str] = {}
    for names, kwargs, path in extra_flags or ():
        action = parser.add_argument(*names, **kwargs)  # type: ignore[arg-type]
        extra_paths[action.dest] = path
    args = parser.parse_args(argv)
    try:
        config = load_daemon_config(args, extra_paths)
    except ConfigError as exc:
        print(f"{spec.prog}: {exc}", file=sys.stderr)
        return 2
    if config.web.config_file:
        try:
            load_web_config(config.web.config_file)
        except WebConfigError as exc:
            problems = "\n".join(f"  {p}" for p in exc.problems)
            print(
                f"{spec.prog}: invalid web config {config.web.config_file}:\n{problems}",
                file=sys.stderr,
            )
            return 2
    configure_logging(config.log.level, config.log.format)
    return config
