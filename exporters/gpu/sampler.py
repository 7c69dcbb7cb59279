"""Turns each source snapshot into GPU samples (one GPU over one interval, per holder): prices them,
resolves teams, applies them to the aggregator and publishes them as `io.aifinops.gpu.sample.v1`.

The interval of a sample is the time since the same GPU was last read, measured on a monotonic
clock in whole microseconds, so the intervals of one GPU add up exactly to the time it was watched
(no rounding accumulates). A GPU seen for the first time, or again after more than
`max_gap_seconds` (the source was failing, the process was stopped), starts a new watch: that gap
is not charged, because nothing is known about who held the GPU or how busy it was, and a log line
says so. A sample covers the state read at the end of its interval, as NVML's utilisation (the
share of the last sample period a kernel ran) describes the time before the read.

A GPU held by several containers over an interval gives one sample per container, each carrying
`1/holders` of the interval's cost (see `events.gpu`). A reading with exact `shares` (from the
kubelet's allocation, `allocation.split`) gives, for a share of `parts/of`, `parts` samples with
`holders = of`: a MIG device of 3 of 7 compute slices is 3 samples of one seventh each, since a
sample carries one equal part of its GPU. The aggregator applies a GPU's samples at once, each
with its `parts` (`apply_many`); mirrored
to Kafka they are `parts` events, so the bridge's totals equal the exporter's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from ..events.envelope import GPU_SAMPLE_TYPE, make_event
from ..events.gpu import MAX_INTERVAL_SECONDS, GPUSample
from ..sink import COUNTED_IN_HEADER, EventSink, NullSink
from .aggregate import GPUAggregator
from .model import GPUReading, GPUSnapshot
from .prices import GPUPriceLookup
from .teams import TeamResolver

log = logging.getLogger(__name__)

DEFAULT_MAX_GAP_SECONDS = 30.0


class GPUSampler:
    """The snapshot handler of the GPU poller (`Poller(on_snapshot=sampler.on_snapshot)`)."""

    def __init__(
        self,
        aggregator: GPUAggregator,
        pricer: GPUPriceLookup,
        *,
        teams: TeamResolver | None = None,
        node_labels: Callable[[str], Mapping[str, str]] = lambda _node: {},
        sink: EventSink | None = None,
        topic: str = "gpu-utilization-events",
        cluster: str = "default",
        max_gap_seconds: float = DEFAULT_MAX_GAP_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._aggregator = aggregator
        self._pricer = pricer
        self._teams = teams or TeamResolver()
        self._node_labels = node_labels
        self._sink = sink or NullSink()
        self._topic = topic
        self._headers = {COUNTED_IN_HEADER: cluster.encode()}
        self._source = f"aifinops-gpu-exporter/{cluster}"
        # A sample covers at most MAX_INTERVAL_SECONDS (the event schema's limit).
        self._max_gap_us = int(min(max_gap_seconds, float(MAX_INTERVAL_SECONDS)) * 1_000_000)
        self._clock = clock
        self._wall = wall
        self._last_us: dict[tuple[str, str], int] = {}
        self._unpriced: set[str] = set()
        # (node, gpu, uuid) -> the source of its price at the latest read, swapped whole.
        self._price_sources: Mapping[tuple[str, str, str], str] = MappingProxyType({})
        self.samples_applied = 0

    def price_sources(self) -> Mapping[tuple[str, str, str], str]:
        """Where each GPU of the latest read is priced from (aifinops_gpu_price_info)."""
        return self._price_sources

    def on_snapshot(self, snapshot: GPUSnapshot) -> None:
        """Count every GPU of `snapshot` over the time since its previous read."""
        now_us = round(self._clock() * 1_000_000)
        when = self._wall()
        seen: set[tuple[str, str]] = set()
        sources: dict[tuple[str, str, str], str] = {}
        for reading in snapshot.gpus:
            price = self._pricer.price(reading.model, reading.node, self._node_labels(reading.node))
            sources[(reading.node, str(reading.index), reading.uuid)] = (
                "none" if price is None else price.source
            )
            key = (reading.node, reading.uuid)
            seen.add(key)
            last_us = self._last_us.get(key)
            self._last_us[key] = now_us
            if last_us is None:
                continue
            elapsed_us = now_us - last_us
            if elapsed_us <= 0:
                continue
            if elapsed_us > self._max_gap_us:
                log.warning(
                    "GPU %s on %s unread for %.1f s (more than max_gap_seconds): that time is not "
                    "charged, counting restarts now",
                    reading.uuid,
                    reading.node,
                    elapsed_us / 1e6,
                )
                continue
            interval = Decimal(elapsed_us).scaleb(-6)
            samples = self._parts(reading, interval)
            self._aggregator.apply_many(samples, when)
            for sample, parts in samples:
                self.samples_applied += parts
                for _ in range(parts):
                    self._publish(sample, when)
        for key in [k for k in self._last_us if k not in seen]:
            del self._last_us[key]
        self._price_sources = MappingProxyType(sources)

    def samples(self, reading: GPUReading, interval: Decimal) -> list[GPUSample]:
        """The samples of one GPU over `interval` seconds: one per holder (or per part of a
        share), or one unheld."""
        return [s for sample, parts in self._parts(reading, interval) for s in [sample] * parts]

    def _parts(self, reading: GPUReading, interval: Decimal) -> list[tuple[GPUSample, int]]:
        """Each distinct sample of one GPU over `interval` and how many equal parts it carries."""
        price = self._pricer.price(reading.model, reading.node, self._node_labels(reading.node))
        if price is None and reading.model not in self._unpriced:
            self._unpriced.add(reading.model)
            log.warning(
                "no price for GPU model %r (node %s): its utilisation is exported but no money "
                "is counted; add a gpu.price_overrides entry",
                reading.model,
                reading.node,
            )
        common: dict[str, Any] = {
            "node": reading.node,
            "gpu": reading.index,
            "uuid": reading.uuid,
            "model": reading.model,
            "utilization_ratio": reading.utilization_ratio,
            "memory_used_bytes": reading.memory_used_bytes,
            "memory_total_bytes": max(reading.memory_total_bytes, reading.memory_used_bytes),
            "power_watts": reading.power_watts,
            "hourly_cost_usd": None if price is None else price.usd_per_hour,
            "interval_seconds": interval,
        }
        if reading.shares:
            out = []
            del common["utilization_ratio"]
            gpu_utilization = reading.utilization_ratio
            for share in reading.shares:
                u = share.utilization_ratio
                utilization = gpu_utilization if u is None else u
                h = share.holder
                if h is None:
                    sample = GPUSample(**common, utilization_ratio=utilization, holders=share.of)
                else:
                    sample = GPUSample(
                        **common,
                        utilization_ratio=utilization,
                        namespace=h.namespace,
                        pod=h.pod,
                        container=h.container,
                        team=self._teams.team(h),
                        holders=share.of,
                    )
                out.append((sample, share.parts))
            return out
        if not reading.holders:
            return [(GPUSample(**common), 1)]
        n = len(reading.holders)
        return [
            (
                GPUSample(
                    **common,
                    namespace=h.namespace,
                    pod=h.pod,
                    container=h.container,
                    team=self._teams.team(h),
                    holders=n,
                ),
                1,
            )
            for h in reading.holders
        ]

    def _publish(self, sample: GPUSample, when: float) -> None:
        if isinstance(self._sink, NullSink):
            return  # mirroring off: no event to build
        try:
            event = make_event(
                GPU_SAMPLE_TYPE,
                f"{self._source}/{sample.node}",
                sample.to_data(),
                time=datetime.fromtimestamp(when, UTC),
            )
            self._sink.publish(self._topic, sample.key, event, self._headers)
        except Exception:
            # The sink contract is never to raise; a broken one must still not stop sampling.
            log.exception("publishing a GPU sample failed")
