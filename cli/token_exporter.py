"""The `aifinops-token-exporter` command: usage events in over HTTP, exact LLM spend out as metrics."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Sequence

from aifinops.exporters.config import Config
from aifinops.exporters.currency.source import (
    COLLECTOR,
    FxRateCollector,
    FxRateSource,
    FxSnapshot,
)
from aifinops.exporters.llm import UsageIngest
from aifinops.exporters.otlp import OTLPAPI
from aifinops.exporters.otlp.api import SOURCES as OTLP_SOURCES
from aifinops.exporters.pricing import PriceUpdater
from aifinops.exporters.runtime.config import ConfigError
from aifinops.exporters.runtime.poll import Poller
from aifinops.exporters.runtime.selfmetrics import CollectorHealth
from aifinops.exporters.runtime.service import Component
from aifinops.exporters.sink import EventSink
from aifinops.exporters.tokens import EventsAPI
from aifinops.exporters.tokens.ratelimit import RateLimiter
from aifinops.exporters.tripwire import AlertmanagerNotifier

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
    try:
        ingest = UsageIngest.from_config(config.llm, sources=("http", *OTLP_SOURCES))
    except ConfigError as exc:
        print(f"{SPEC.prog}: price overrides: {exc}", file=sys.stderr)
        return 2
    health = CollectorHealth()
    registry = new_registry(health)
    for collector in ingest.collectors(config.llm.budgets):
        registry.register(collector)
    try:
        bundle = build_sink(config, health)
    except Exception as exc:
        print(f"{SPEC.prog}: cannot set up publishing to Kafka: {exc}", file=sys.stderr)
        return 1
    for collector in bundle.collectors:
        registry.register(collector)
    fx = _fx_rates(config, health)
    registry.register(FxRateCollector(lambda: fx.latest))
    components: list[Component] = [*bundle.components, *_price_updates(config, health), fx]
    notifier = _tripwires(config, ingest, bundle.sink)
    if notifier is not None:
        components.append(notifier)
        registry.register(notifier.collector())
    rate = config.tokens.rate_limit
    limiter = None
    if rate.events_per_second > 0:
        limiter = RateLimiter(rate.events_per_second, rate.burst, rate.max_buckets)
        registry.register(limiter.collector())
    api = EventsAPI(
        ingest,
        bundle.sink,
        topic=config.kafka.topics.usage.name,
        cluster=config.cluster,
        auth=config.tokens.auth,
        max_batch_events=config.tokens.max_batch_events,
        max_body_bytes=config.tokens.max_body_bytes,
        limiter=limiter,
    )
    # OTLP/HTTP GenAI spans and metrics (docs/otlp.md), counted through the same pipeline.
    otlp = OTLPAPI(api, ingest, config.tokens.otlp, config.gpu.namespace_teams)
    if not config.tokens.auth.enabled:
        log.warning(
            "authentication of POST /v1/events is off: anyone who can reach this port can post "
            "usage events for any team (set tokens.auth.enabled and tokens.auth.tokens)"
        )
    log.info("price catalogue: %d models", ingest.pricer.load_catalogue())
    # The price catalogue is a large, permanent object graph: keep the cyclic garbage
    # collector from walking it again and again while requests allocate.
    gc.freeze()
    if config.kafka.bootstrap_servers:
        log.info("publishing accepted events to Kafka topic %s", config.kafka.topics.usage.name)
    return serve(
        SPEC.prog,
        listen_address(config, SPEC),
        registry,
        components,
        routes=[api.route(), *otlp.routes()],
        web=config.web,
    )


def _fx_rates(config: Config, health: CollectorHealth) -> Poller[FxSnapshot]:
    """The exchange rate in force, for `aifinops_fx_rate` (collector `fx_rates`)."""
    currency = config.currency
    if currency.code != "USD":
        log.info(
            "reporting currency %s (rates re-read every %ss)",
            currency.code,
            currency.reload_interval_seconds,
        )
    return Poller(COLLECTOR, FxRateSource(currency), currency.reload_interval_seconds, health)


def _tripwires(config: Config, ingest: UsageIngest, sink: EventSink) -> AlertmanagerNotifier | None:
    """The tripwires on every counted event (docs/tripwires.md), with their onsets and resolutions
    also written to `cost-anomalies` when Kafka is on."""
    if not config.tripwires.enabled:
        return None
    publish = None
    if config.kafka.bootstrap_servers:
        from aifinops.bridge.tripwires import anomaly_publisher

        publish = anomaly_publisher(
            sink, config.kafka.topics.anomalies.name, f"aifinops-token-exporter/{config.cluster}"
        )
    notifier = AlertmanagerNotifier.from_config(config.tripwires, config.cluster, publish)
    ingest.on_counted = notifier.observe
    if not config.tripwires.alertmanager_urls:
        log.info("tripwires: checked and counted; no tripwires.alertmanager_urls to send them to")
    return notifier


def _price_updates(config: Config, health: CollectorHealth) -> list[Component]:
    """The catalogue auto-update poller, when the user turned it on (the only network use)."""
    pricing = config.llm.pricing
    if not pricing.auto_update:
        return []
    updater = PriceUpdater(pricing.auto_update_url)
    log.info(
        "price catalogue auto-update from %s every %ss",
        updater.url,
        pricing.auto_update_interval_seconds,
    )
    return [
        Poller(
            "price_catalogue",
            updater,
            pricing.auto_update_interval_seconds,
            health,
            keep_stale=True,
        )
    ]
