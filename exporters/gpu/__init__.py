"""The GPU exporter as a library: sources (NVML, dcgm-exporter, simulator), holders from the
kubelet's PodResources allocation or from GPU processes, prices, the sampler, and the sample
aggregator and collector that the bridge reuses."""

from .aggregate import (
    GPUAggregateSnapshot,
    GPUAggregator,
    GPUCollector,
    GPUState,
    MoneyTotal,
)

__all__ = [
    "GPUAggregateSnapshot",
    "GPUAggregator",
    "GPUCollector",
    "GPUState",
    "MoneyTotal",
]
