"""The `aifinops-token-exporter` command."""

from __future__ import annotations

from collections.abc import Sequence

from aifinops.exporters.runtime.selfmetrics import CollectorHealth

from .common import DaemonSpec, listen_address, start_daemon
from .daemon import new_registry, serve

SPEC = DaemonSpec(
    "aifinops-token-exporter", "Token-cost exporter: exact LLM spend from usage events.", 9872
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the daemon until SIGTERM or SIGINT; returns the exit code."""
    config = start_daemon(SPEC, argv)
    if isinstance(config, int):
        return config
    health = CollectorHealth()
    registry = new_registry(health)
    return serve(SPEC.prog, listen_address(config, SPEC), registry)
