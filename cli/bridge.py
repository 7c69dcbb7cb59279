"""The `aifinops-bridge` command."""

from __future__ import annotations

from collections.abc import Sequence

from aifinops.exporters.runtime.selfmetrics import CollectorHealth

from .common import DaemonSpec, listen_address, start_daemon
from .daemon import new_registry, serve

SPEC = DaemonSpec(
    "aifinops-bridge",
    "Kafka bridge: usage and GPU events into metrics, Alertmanager alerts into Kafka.",
    9873,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the daemon until SIGTERM or SIGINT; returns the exit code."""
    config = start_daemon(SPEC, argv)
    if isinstance(config, int):
        return config
    health = CollectorHealth()
    registry = new_registry(health)
    return serve(SPEC.prog, listen_address(config, SPEC), registry)
