"""Builds the token-cost exporter from the config: ingest pipeline, HTTP and OTLP intake, exchange
rates, catalogue updates and tripwires, and what the daemon serves."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client.registry import Collector

from ..config import Config
from ..currency.budgets import split_budgets
from ..currency.source import COLLECTOR, FxRateCollector, FxRateSource, FxSnapshot
from ..llm import UsageIngest
from ..namespace_teams import NamespaceTeamCollector
from ..otlp import OTLPAPI
from ..otlp.api import SOURCES as OTLP_SOURCES
from ..pricing import PriceUpdater
from ..runtime.http import Route
from ..runtime.poll import Poller
from ..runtime.selfmetrics import CollectorHealth
from ..runtime.service import Component
from ..sink import EventSink, NullSink
from ..tripwire import Alert, AlertmanagerNotifier
from .api import EventsAPI
from .ratelimit import RateLimiter

log = logging.getLogger(__name__)


@dataclass
class TokenExporter:
    """Everything the daemon wires: start `components`, register `collectors`, serve `routes`."""

    ingest: UsageIngest
    api: EventsAPI
    otlp: OTLPAPI
    collectors: list[Collector] = field(default_factory=list)
    # Started in order, stopped in reverse: catalogue updates, exchange rates, tripwires.
    components: list[Component] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)


def build_token_exporter(
    config: Config,
    health: CollectorHealth,
    *,
    sink: EventSink | None = None,
    publish_anomaly: Callable[[Alert], None] | None = None,
) -> TokenExporter:
    """Wire the token exporter; accepted events also go to `sink` (Kafka, when on), tripwire
    onsets and resolutions also to `publish_anomaly`. Raises `ConfigError` when the price
    override file is unusable."""
    ingest = UsageIngest.from_config(config.llm, sources=("http", *OTLP_SOURCES))
    sink = sink if sink is not None else NullSink()
    usd_budgets, budget_collectors = split_budgets(config)
    collectors = [*ingest.collectors(usd_budgets), *budget_collectors]
    # Namespace -> team for the Kubernetes costs from OpenCost (rules/kubernetes.libsonnet).
    collectors.append(NamespaceTeamCollector(config.gpu.namespace_teams))
    fx = _fx_rates(config, health)
    collectors.append(FxRateCollector(lambda: fx.latest))
    components: list[Component] = [*_price_updates(config, health), fx]
    if config.tripwires.enabled:
        notifier = AlertmanagerNotifier.from_config(
            config.tripwires, config.cluster, publish_anomaly
        )
        ingest.on_counted = notifier.observe
        if not config.tripwires.alertmanager_urls:
            log.info(
                "tripwires: checked and counted; no tripwires.alertmanager_urls to send them to"
            )
        components.append(notifier)
        collectors.append(notifier.collector())
    rate = config.tokens.rate_limit
    limiter = None
    if rate.events_per_second > 0:
        limiter = RateLimiter(rate.events_per_second, rate.burst, rate.max_buckets)
        collectors.append(limiter.collector())
    api = EventsAPI(
        ingest,
        sink,
        topic=config.kafka.topics.usage.name,
        cluster=config.cluster,
        auth=config.tokens.auth,
        max_batch_events=config.tokens.max_batch_events,
        max_body_bytes=config.tokens.max_body_bytes,
        limiter=limiter,
    )
    # OTLP/HTTP GenAI spans and metrics (docs/otlp.md), counted through the same pipeline.
    otlp = OTLPAPI(api, ingest, config.tokens.otlp, config.gpu.namespace_teams)
    return TokenExporter(
        ingest, api, otlp, collectors, components, routes=[api.route(), *otlp.routes()]
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
