"""Builds the bridge from the config: consumer pipeline, checkpoint, webhook, and what the daemon serves."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client.registry import Collector

from aifinops.exporters.cardinality import LabelLimiter, OverflowCollector
from aifinops.exporters.config import Config
from aifinops.exporters.currency.budgets import split_budgets
from aifinops.exporters.currency.source import COLLECTOR, FxRateCollector, FxRateSource, FxSnapshot
from aifinops.exporters.gpu import GPUAggregator, GPUCollector
from aifinops.exporters.gpu.aggregate import COST_METRIC, IDLE_COST_METRIC
from aifinops.exporters.llm import DedupeWindow, LLMCollector, UsageIngest
from aifinops.exporters.runtime.http import Route
from aifinops.exporters.runtime.poll import Poller
from aifinops.exporters.runtime.selfmetrics import CollectorHealth
from aifinops.exporters.runtime.service import Component
from aifinops.exporters.tripwire import AlertmanagerNotifier

from .checkpoint import CheckpointStore, Continuation, ScrapeCheckpoint
from .consumer import BridgeConsumer
from .metrics import BridgeCollector, BridgeStats
from .pipeline import MessageProcessor
from .producer import KafkaEventSink, default_spool_dir
from .transport import ConsumerClient, ConsumerSettings, ProducerClient
from .tripwires import anomaly_publisher
from .webhook import PATH, AlertForwarder


@dataclass
class Bridge:
    """Everything a bridge daemon runs and serves; `close()` after the components stopped."""

    consumer: BridgeConsumer
    forwarder: AlertForwarder
    usage: UsageIngest
    gpu: GPUAggregator
    collectors: Sequence[Collector]
    routes: list[Route]
    store: CheckpointStore | None
    # The tripwires' sender and the producer of their cost-anomalies events (tripwires on).
    tripwires: Sequence[Component] = ()
    # Pollers of what the bridge serves besides the topics: the exchange rate in force.
    pollers: Sequence[Component] = ()

    @property
    def components(self) -> list[Component]:
        """Started in order, stopped in reverse."""
        return [*self.pollers, *self.tripwires, self.consumer, self.forwarder]

    def ready(self) -> bool:
        """Always ready while serving: readiness must not hide the metrics that say Kafka is
        unreachable (`aifinops_collector_success{collector="kafka_consumer"}`) from Prometheus."""
        return True

    def close(self) -> None:
        """Release the state directory."""
        if self.store is not None:
            self.store.close()


def build_bridge(config: Config, health: CollectorHealth) -> Bridge:
    """Wire a bridge; raises `StateError` (state directory unusable or locked) or `ConfigError`
    (price overrides)."""
    kafka, settings, topics = config.kafka, config.bridge, config.kafka.topics
    usage = UsageIngest.from_config(config.llm, sources=("kafka",))
    gpu = GPUAggregator(
        gpu_ttl_seconds=settings.gpu_ttl_seconds,
        retention_seconds=max(config.gpu.retention_seconds, settings.gpu_ttl_seconds),
        max_gpus=config.gpu.max_gpus,
        max_pods=config.gpu.max_pods,
        limiter=LabelLimiter(config.gpu.max_label_values),
    )
    gpu_dedupe = DedupeWindow(config.llm.dedupe_window_seconds, config.llm.dedupe_max_entries)
    processor = MessageProcessor(
        usage, gpu, gpu_dedupe, topics, config.cluster, settings.max_message_bytes
    )
    stats = BridgeStats(processor.topics)
    store = CheckpointStore(settings.state_dir) if settings.state_dir else None
    restored = store.open() if store is not None else None
    consumer_settings = ConsumerSettings.from_config(settings, processor.topics)
    dlq_producer = dataclasses.replace(
        config.producer, max_message_bytes=settings.dlq_max_message_bytes + (64 << 10)
    )
    continuation = Continuation(
        restored.counters if restored else None,
        expiring=(COST_METRIC.removesuffix("_total"), IDLE_COST_METRIC.removesuffix("_total")),
        retention_seconds=config.gpu.retention_seconds,
    )
    usd_budgets, budget_collectors = split_budgets(config)
    counted = [
        LLMCollector(usage.aggregator, usd_budgets),
        GPUCollector(gpu),
        OverflowCollector([usage.aggregator.limiter, gpu]),
        BridgeCollector(stats),
    ]
    consumer = BridgeConsumer(
        lambda revoked, assigned, lost: ConsumerClient(
            kafka, consumer_settings, revoked, assigned, lost
        ),
        processor,
        lambda: ProducerClient(kafka, dlq_producer),
        stats,
        health=health,
        restored=restored,
        dlq_max_bytes=settings.dlq_max_message_bytes,
        # A replay goes back before the checkpoint, which only "earliest" can reset to safely.
        dedupe_replay_messages=(
            settings.dedupe_replay_messages if settings.auto_offset_reset == "earliest" else 0
        ),
        max_poll_records=settings.max_poll_records,
        checkpoint=lambda counted_by: ScrapeCheckpoint(counted_by, counted, continuation, store),
    )
    forwarder = AlertForwarder(
        lambda: ProducerClient(kafka, config.producer),
        topics.anomalies.name,
        f"aifinops-bridge/{config.cluster}",
    )
    assert consumer.checkpoint is not None  # built by the factory just given
    collectors: list[Collector] = [consumer.checkpoint, forwarder.collector()]
    routes = [Route("POST", PATH, forwarder.handle, settings.webhook_max_body_bytes)]
    tripwires, tripwire_collectors = _tripwires(config, usage)
    collectors += tripwire_collectors
    # A central Prometheus may scrape only bridges: the rate in force must reach it from them
    # too, or the rule pack in a reporting currency has no rate (docs/currency.md).
    fx: Poller[FxSnapshot] = Poller(
        COLLECTOR, FxRateSource(config.currency), config.currency.reload_interval_seconds, health
    )
    collectors.append(FxRateCollector(lambda: fx.latest))
    collectors += budget_collectors
    return Bridge(
        consumer, forwarder, usage, gpu, collectors, routes, store, tripwires, pollers=[fx]
    )


def _tripwires(config: Config, usage: UsageIngest) -> tuple[list[Component], list[Collector]]:
    """The tripwires on every event this bridge counts: events an exporter of this cluster
    counted (header `aifinops-counted-in`) are skipped before they reach `usage`, so a limit
    trips once per cluster. Onsets and resolutions also go to `cost-anomalies` through a
    producer of their own (spool: `producer.spool_dir`, else data/spool/aifinops-bridge)."""
    if not config.tripwires.enabled:
        return [], []
    anomalies = config.kafka.topics.anomalies.name
    sink = KafkaEventSink(
        config.kafka,
        config.producer,
        config.producer.spool_dir or default_spool_dir("aifinops-bridge"),
        topics=(anomalies,),
    )
    publish = anomaly_publisher(sink, anomalies, f"aifinops-bridge/{config.cluster}")
    notifier = AlertmanagerNotifier.from_config(config.tripwires, config.cluster, publish)
    usage.on_counted = notifier.observe
    return [sink, notifier], [notifier.collector(), sink.collector()]
