"""GPU prices from OpenCost: each node's `node_gpu_hourly_cost` (and `kubecost_node_is_spot`) read
from OpenCost's `/metrics` (config `gpu.prices.opencost_url`), and the pricer that prefers them.

OpenCost writes both families with the labels `instance`, `node`, `instance_type`, `region`,
`provider_id` and `arch` (pkg/costmodel/metrics.go), the price being what the node really costs per
GPU-hour: the spot price on a spot node, the custom or negotiated price where OpenCost is configured
with one. A node OpenCost prices at 0 (no GPU, or no price known) is left to the table.

Which price a GPU gets, first that applies: the node's OpenCost price while the latest good read is
at most `gpu.prices.opencost_max_age_seconds` old; else the `gpu.price_overrides`; else the table.
OpenCost down: the poller keeps the last good read (its collector `opencost` at 0), so prices hold
for that long, then fall back.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from .model import SourceError
from .prices import MAX_DECIMAL_PLACES, GPUPriceLookup, Price
from .scrape import PageReader

COLLECTOR = "opencost"
GPU_PRICE = "node_gpu_hourly_cost"
IS_SPOT = "kubecost_node_is_spot"
# Nodes kept from one read; OpenCost reports every node of the cluster, GPU or not.
MAX_NODES = 50_000
_WANTED_PREFIXES = tuple(f"{name}{sep}" for name in (GPU_PRICE, IS_SPOT) for sep in ("{", " "))
_QUANTUM = Decimal(1).scaleb(-MAX_DECIMAL_PLACES)

# Values of the `source` label of aifinops_gpu_price_info.
SOURCE_OPENCOST = "opencost"
SOURCE_OPENCOST_SPOT = "opencost_spot"


@dataclass(frozen=True)
class NodeGPUPrice:
    """What OpenCost says one GPU-hour of a node costs, and whether the node is spot."""

    usd_per_hour: Decimal
    spot: bool
    instance_type: str


@dataclass(frozen=True)
class OpenCostPrices:
    """One read of OpenCost: GPU prices per node name, and when (monotonic seconds) it was read."""

    nodes: Mapping[str, NodeGPUPrice]
    fetched_at: float


def parse_opencost(text: str, fetched_at: float) -> OpenCostPrices:
    """The per-node GPU prices in an OpenCost exposition; raises `SourceError` on a body that is
    not the Prometheus text format. Nodes priced at 0, or at a negative or non-finite value, are
    left out (the table prices them)."""
    lines = "\n".join(line for line in text.splitlines() if line.startswith(_WANTED_PREFIXES))
    prices: dict[str, tuple[Decimal, str]] = {}
    spot: dict[str, bool] = {}
    try:
        for family in text_string_to_metric_families(lines + "\n"):
            for sample in family.samples:
                node = sample.labels.get("node") or sample.labels.get("instance") or ""
                if not node or not math.isfinite(sample.value):
                    continue
                if sample.name == GPU_PRICE and sample.value > 0:
                    if len(prices) >= MAX_NODES and node not in prices:
                        continue
                    # The shortest decimal that reads back as the float: the number OpenCost
                    # printed, cut to the exporter's money precision.
                    usd = Decimal(repr(sample.value)).quantize(_QUANTUM)
                    prices[node] = (usd, sample.labels.get("instance_type", ""))
                elif sample.name == IS_SPOT:
                    spot[node] = sample.value == 1
    except ValueError as exc:
        raise SourceError(f"not a Prometheus text exposition: {exc}") from exc
    return OpenCostPrices(
        MappingProxyType(
            {
                node: NodeGPUPrice(usd, spot.get(node, False), itype)
                for node, (usd, itype) in prices.items()
            }
        ),
        fetched_at,
    )


class OpenCostPriceSource:
    """Reads OpenCost's `/metrics` in `fetch()`; the GPU exporter polls it every
    `gpu.prices.opencost_refresh_seconds` under the collector name `opencost`."""

    name = COLLECTOR

    def __init__(
        self,
        url: str,
        timeout_seconds: float = 2.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._page = PageReader(url, "OpenCost", timeout_seconds)

    def fetch(self) -> OpenCostPrices:
        """Read OpenCost now; raises `SourceError` when it is unreachable or answers garbage."""
        text = self._page.read()
        try:
            return parse_opencost(text, self._clock())
        except SourceError as exc:
            raise self._page.error(str(exc)) from exc


class OpenCostPricer:
    """Prices a GPU at its node's OpenCost price while the latest read is fresh enough, else
    through `fallback` (the overrides, then the table)."""

    def __init__(
        self,
        latest: Callable[[], OpenCostPrices | None],
        fallback: GPUPriceLookup,
        max_age_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._latest = latest
        self._fallback = fallback
        self._max_age = max_age_seconds
        self._clock = clock

    def price(self, model: str, node: str, labels: Mapping[str, str] | None = None) -> Price | None:
        """The price of one hour of a `model` GPU on `node`, or None when nothing prices it."""
        prices = self._latest()
        if prices is not None and self._clock() - prices.fetched_at <= self._max_age:
            found = prices.nodes.get(node)
            if found is not None:
                kind = "spot" if found.spot else "on-demand or custom"
                return Price(
                    found.usd_per_hour,
                    f"OpenCost node_gpu_hourly_cost of {node} ({kind})",
                    SOURCE_OPENCOST_SPOT if found.spot else SOURCE_OPENCOST,
                )
        return self._fallback.price(model, node, labels)


class GPUPriceSourceCollector:
    """`aifinops_gpu_price_info{node,gpu,uuid,source}` = 1: where each GPU's price comes from
    (`opencost`, `opencost_spot`, `override`, `table`, or `none` when nothing prices it). At most
    `max_gpus` series (`gpu.max_gpus`, the bound of every per-GPU family), in label order."""

    def __init__(
        self, sources: Callable[[], Mapping[tuple[str, str, str], str]], max_gpus: int = 10_000
    ) -> None:
        self._sources = sources
        self._max = max_gpus

    def collect(self) -> list[Metric]:
        """One series per GPU of the latest read."""
        family = GaugeMetricFamily(
            "aifinops_gpu_price_info",
            "Where the price of each GPU comes from (source: opencost, opencost_spot, override, "
            "table, none).",
            labels=["node", "gpu", "uuid", "source"],
        )
        for (node, gpu, uuid), source in sorted(self._sources().items())[: self._max]:
            family.add_metric([node, gpu, uuid, source], 1)
        return [family]
