"""Self-monitoring shared by the daemons: build info and per-collector success and duration."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .. import __version__


@dataclass(frozen=True)
class CollectorStatus:
    """Outcome of a collector's latest fetch."""

    success: bool
    duration_seconds: float


class CollectorHealth:
    """Latest success and duration per collector, written by whoever runs the fetch."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status: dict[str, CollectorStatus] = {}

    def record(self, collector: str, success: bool, duration_seconds: float) -> None:
        """Remember the outcome of `collector`'s latest fetch."""
        with self._lock:
            self._status[collector] = CollectorStatus(success, duration_seconds)

    def snapshot(self) -> dict[str, CollectorStatus]:
        """A copy of every collector's latest status."""
        with self._lock:
            return dict(self._status)


class SelfCollector(Collector):
    """Exposes `aifinops_build_info` and the collectors' health.

    # TYPE aifinops_build_info gauge
    aifinops_build_info{version="0.1.0"} 1
    # TYPE aifinops_collector_success gauge
    aifinops_collector_success{collector="nvml"} 0
    """

    def __init__(self, health: CollectorHealth, version: str = __version__) -> None:
        self._health = health
        self._version = version

    def collect(self) -> Iterable[Metric]:
        """Build info, then one success and one duration sample per known collector."""
        info = GaugeMetricFamily(
            "aifinops_build_info", "aifinops build information; always 1.", labels=["version"]
        )
        info.add_metric([self._version], 1)
        yield info
        success = GaugeMetricFamily(
            "aifinops_collector_success",
            "1 when the collector's latest fetch succeeded, 0 when it failed.",
            labels=["collector"],
        )
        duration = GaugeMetricFamily(
            "aifinops_collector_duration_seconds",
            "Seconds the collector's latest fetch took.",
            labels=["collector"],
        )
        for name, status in sorted(self._health.snapshot().items()):
            success.add_metric([name], 1.0 if status.success else 0.0)
            duration.add_metric([name], status.duration_seconds)
        yield success
        yield duration
