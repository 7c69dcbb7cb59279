"""The `aifinops-token-exporter` command: usage events in over HTTP, exact LLM spend out as metrics."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Callable, Sequence

from aifinops.exporters.config import Config
from aifinops.exporters.runtime.config import ConfigError
from aifinops.exporters.runtime.selfmetrics import CollectorHealth
from aifinops.exporters.sink import EventSink
from aifinops.exporters.tokens.app import build_token_exporter
from aifinops.exporters.tripwire import Alert

from .common import DaemonSpec, listen_address, start_daemon
from .daemon import new_registry, serve
from .sinks import build_sink

log = logging.getLogger(__name__)

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
    try:
        bundle = build_sink(config, health)
    except Exception as exc:
        print(f"{SPEC.prog}: cannot set up publishing to Kafka: {exc}", file=sys.stderr)
        return 1
    try:
        exporter = build_token_exporter(
            config,
            health,
            sink=bundle.sink,
            publish_anomaly=_anomaly_publisher(config, bundle.sink),
        )
    except ConfigError as exc:
        print(f"{SPEC.prog}: price overrides: {exc}", file=sys.stderr)
        return 2
    for collector in [*exporter.collectors, *bundle.collectors]:
        registry.register(collector)
    if not config.tokens.auth.enabled:
        log.warning(
            "authentication of POST /v1/events is off: anyone who can reach this port can post "
            "usage events for any team (set tokens.auth.enabled and tokens.auth.tokens)"
        )
    log.info("price catalogue: %d models", exporter.ingest.pricer.load_catalogue())
    # The price catalogue is a large, permanent object graph: keep the cyclic garbage
    # collector from walking it again and again while requests allocate.
    gc.freeze()
    if config.kafka.bootstrap_servers:
        log.info("publishing accepted events to Kafka topic %s", config.kafka.topics.usage.name)
    return serve(
        SPEC.prog,
        listen_address(config, SPEC),
        registry,
        # The producer starts first and stops last, after what hands it events.
        [*bundle.components, *exporter.components],
        routes=exporter.routes,
        web=config.web,
    )


def _anomaly_publisher(config: Config, sink: EventSink) -> Callable[[Alert], None] | None:
    """Tripwire onsets and resolutions also onto `cost-anomalies`, when Kafka is on."""
    if not (config.tripwires.enabled and config.kafka.bootstrap_servers):
        return None
    from aifinops.bridge.tripwires import anomaly_publisher

    return anomaly_publisher(
        sink, config.kafka.topics.anomalies.name, f"aifinops-token-exporter/{config.cluster}"
    )
