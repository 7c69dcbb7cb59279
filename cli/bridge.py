"""The `aifinops-bridge` command."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Sequence

from aifinops.bridge.app import build_bridge
from aifinops.bridge.checkpoint import StateError
from aifinops.exporters.runtime.config import ConfigError
from aifinops.exporters.runtime.selfmetrics import CollectorHealth

from .common import DaemonSpec, listen_address, start_daemon
from .daemon import new_registry, serve

SPEC = DaemonSpec(
    "aifinops-bridge",
    "Kafka bridge: usage and GPU events into metrics, Alertmanager alerts into Kafka.",
    9873,
)
log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the daemon until SIGTERM or SIGINT; returns the exit code."""
    config = start_daemon(SPEC, argv)
    if isinstance(config, int):
        return config
    if not config.kafka.bootstrap_servers:
        print(
            f"{SPEC.prog}: the bridge needs Kafka: set --kafka.bootstrap-servers "
            "(or kafka.bootstrap_servers, AIFINOPS_KAFKA_BOOTSTRAP_SERVERS)",
            file=sys.stderr,
        )
        return 2
    health = CollectorHealth()
    registry = new_registry(health)
    try:
        bridge = build_bridge(config, health)
    except (StateError, ConfigError) as exc:
        print(f"{SPEC.prog}: {exc}", file=sys.stderr)
        return 1
    try:
        for collector in bridge.collectors:
            registry.register(collector)
        log.info("price catalogue: %d models", bridge.usage.pricer.load_catalogue())
        # The price catalogue is a large, permanent object graph: keep the cyclic garbage
        # collector from walking it again and again; and a polled batch's thousands of events
        # live until it is counted, which at the default threshold (700) sets off a collection
        # every few dozen events (about 9 % of the bridge's CPU at 50,000 events/s).
        gc.freeze()
        gc.set_threshold(50_000)
        # kafka-python reads fetch responses on its own IO thread; at the default 5 ms switch
        # interval it waits that long for the GIL behind the batch being counted, and the next
        # fetch arrives late (measured: 39,000 -> 52,000 events/s).
        sys.setswitchinterval(0.001)
        return serve(
            SPEC.prog,
            listen_address(config, SPEC),
            registry,
            bridge.components,
            routes=bridge.routes,
            ready=bridge.ready,
            web=config.web,
        )
    finally:
        bridge.close()
