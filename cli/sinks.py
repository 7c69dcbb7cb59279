"""Chooses where an exporter's observed events go: Kafka (the bridge's producer) or nowhere."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client.registry import Collector

from aifinops.exporters.config import Config
from aifinops.exporters.runtime.selfmetrics import CollectorHealth
from aifinops.exporters.runtime.service import Component
from aifinops.exporters.sink import EventSink, NullSink


@dataclass(frozen=True)
class SinkBundle:
    """The sink, the components to start and stop with the daemon, and the collectors to register."""

    sink: EventSink
    components: Sequence[Component] = ()
    collectors: Sequence[Collector] = ()


def build_sink(config: Config, health: CollectorHealth | None = None) -> SinkBundle:
    """A Kafka producer when `kafka.bootstrap_servers` is set, else a sink that discards; the
    producer reports `aifinops_collector_success{collector="kafka_producer"}` into `health`."""
    if not config.kafka.bootstrap_servers:
        return SinkBundle(NullSink())
    from aifinops.bridge.producer import KafkaEventSink

    sink = KafkaEventSink.from_config(config, health=health)
    return SinkBundle(sink, (sink,), (sink.collector(),))
