"""The `aifinops-gpu-exporter` command."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from aifinops.exporters.gpu.app import build_gpu_exporter
from aifinops.exporters.gpu.prices import PriceTableError
from aifinops.exporters.gpu.sources import SOURCES
from aifinops.exporters.runtime.selfmetrics import CollectorHealth

from .common import DaemonSpec, listen_address, start_daemon
from .daemon import new_registry, serve
from .sinks import build_sink

# --source and --dcgm.url as docs/architecture.md fixes them, each overriding its config key.
EXTRA_FLAGS = [
    (
        ["--source"],
        {
            "dest": "source",
            "choices": list(SOURCES),
            "help": "where GPU data comes from",
        },
        "gpu.source",
    ),
    (
        ["--dcgm.url"],
        {"dest": "dcgm_url", "metavar": "URL", "help": "a dcgm-exporter /metrics URL"},
        "gpu.dcgm_url",
    ),
]

SPEC = DaemonSpec(
    "aifinops-gpu-exporter",
    "GPU exporter: utilisation, power and dollars per GPU, pod and team.",
    9871,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the daemon until SIGTERM or SIGINT; returns the exit code."""
    config = start_daemon(SPEC, argv, EXTRA_FLAGS)
    if isinstance(config, int):
        return config
    health = CollectorHealth()
    registry = new_registry(health)
    bundle = build_sink(config, health)
    try:
        exporter = build_gpu_exporter(config, health, sink=bundle.sink)
    except PriceTableError as exc:
        print(f"{SPEC.prog}: {exc}", file=sys.stderr)
        return 2
    for collector in [*exporter.collectors, *bundle.collectors]:
        registry.register(collector)
    return serve(
        SPEC.prog,
        listen_address(config, SPEC),
        registry,
        # The producer starts before the poller (its first sample is published at once) and
        # stops after it, so the last samples are handed over before the queue is flushed.
        [*bundle.components, *exporter.components],
        routes=exporter.routes,
        web=config.web,
    )
