"""Builds the GPU exporter from the configuration: source, attribution, prices, aggregator, sampler
poller, collectors and HTTP routes, ready for a daemon to start.

Which holders win: the kubelet's PodResources allocation (`gpu.pod_resources_socket`) for the nvml
source, and for the simulator when it serves its fleet through a kubelet simulator
(`gpu.simulator.serve_pod_resources`); process attribution where there is no allocation (the
socket set to "", or the nvml source outside a pod with no socket). The dcgm source keeps
dcgm-exporter's pod labels: dcgm-exporter reads the same API itself. The start log says which."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.registry import Collector

from ..cardinality import LabelLimiter, OverflowCollector
from ..config import Config
from ..runtime.http import Request, Response, Route
from ..runtime.poll import Poller
from ..runtime.selfmetrics import CollectorHealth
from ..sink import EventSink
from .aggregate import GPUAggregator, GPUCollector
from .allocation import AllocatedSource, PodLabels, UnresolvedCollector
from .kube import (
    KubeAuth,
    KubeClient,
    NodeDirectory,
    PodDirectory,
    in_cluster_api_url,
)
from .model import GPUSource
from .nvml import NVMLSource
from .opencost import COLLECTOR, GPUPriceSourceCollector, OpenCostPricer, OpenCostPriceSource
from .podresources.client import PodResourcesClient
from .podresources.simulator import KubeletSimulator
from .prices import GPUPriceLookup, GPUPricer, load_price_table
from .sampler import GPUSampler
from .simulated import SimulatedSource, SimulatorError
from .sources import SourceContext, build_source
from .teams import TeamResolver

log = logging.getLogger(__name__)

SIMULATOR_PATH = "/-/simulator"


@dataclass
class GPUExporter:
    """Everything the daemon wires: start `components`, register `collectors`, serve `routes`."""

    source: GPUSource
    aggregator: GPUAggregator
    sampler: GPUSampler
    poller: Poller[Any]
    collectors: list[Collector] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    # The simulator's kubelet (gpu.simulator.serve_pod_resources), started before the poller.
    kubelet: KubeletSimulator | None = None
    # OpenCost's node prices (gpu.prices.opencost_url), read before the first GPU sample.
    price_poller: Poller[Any] | None = None

    @property
    def components(self) -> list[Any]:
        """The parts with a lifecycle (the pollers; their first fetch happens in `start()`)."""
        parts = [self.kubelet, self.price_poller, self.poller]
        return [p for p in parts if p is not None]


def build_gpu_exporter(
    config: Config,
    health: CollectorHealth,
    *,
    sink: EventSink | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
    environ: Mapping[str, str] | None = None,
) -> GPUExporter:
    """Wire the GPU exporter. Raises `PriceTableError` when `gpu.price_table` is unusable."""
    gpu = config.gpu
    environ = os.environ if environ is None else environ
    pricer: GPUPriceLookup = GPUPricer(load_price_table(gpu.price_table), gpu.price_overrides)
    price_poller: Poller[Any] | None = None
    if gpu.prices.opencost_url:
        opencost = OpenCostPriceSource(gpu.prices.opencost_url, gpu.timeout_seconds, clock=clock)
        opencost_poller = Poller(
            COLLECTOR, opencost, gpu.prices.opencost_refresh_seconds, health, keep_stale=True
        )
        price_poller = opencost_poller
        pricer = OpenCostPricer(
            lambda: opencost_poller.latest,
            pricer,
            gpu.prices.opencost_max_age_seconds,
            clock=clock,
        )
        log.info(
            "GPU prices: OpenCost %s (every %ss, last good prices kept %ss), then the overrides "
            "and the table",
            gpu.prices.opencost_url,
            gpu.prices.opencost_refresh_seconds,
            gpu.prices.opencost_max_age_seconds,
        )
    auth = KubeAuth(gpu.token_file, gpu.ca_file, gpu.insecure_skip_verify, gpu.timeout_seconds)
    client = KubeClient(auth)
    api_url = gpu.kubernetes_api_url or in_cluster_api_url(environ)
    if gpu.node_labels_from_api and api_url is None:
        log.warning("gpu.node_labels_from_api is on but no API server is known; using node_labels")
    nodes = NodeDirectory(
        gpu.node_labels,
        api_url=api_url if gpu.node_labels_from_api else None,
        client=client,
    )
    inner, pods = build_source(SourceContext(config, health, client, clock, environ))
    source, kubelet = _with_allocation(config, health, inner, pods, clock, environ)
    aggregator = GPUAggregator(
        # A GPU missing from three reads in a row is gone (or its source is failing).
        gpu_ttl_seconds=3 * gpu.interval_seconds + gpu.timeout_seconds,
        retention_seconds=gpu.retention_seconds,
        max_gpus=gpu.max_gpus,
        max_pods=gpu.max_pods,
        limiter=LabelLimiter(gpu.max_label_values),
        clock=clock,
    )
    sampler = GPUSampler(
        aggregator,
        pricer,
        teams=TeamResolver(gpu.team_label, gpu.namespace_teams),
        node_labels=nodes.labels,
        sink=sink,
        topic=config.kafka.topics.gpu.name,
        cluster=config.cluster,
        max_gap_seconds=gpu.max_gap_seconds,
        clock=clock,
        wall=wall,
    )
    poller: Poller[Any] = Poller(
        source.name, source, gpu.interval_seconds, health, on_snapshot=sampler.on_snapshot
    )
    exporter = GPUExporter(
        source,
        aggregator,
        sampler,
        poller,
        collectors=[
            GPUCollector(aggregator),
            OverflowCollector([aggregator]),
            GPUPriceSourceCollector(sampler.price_sources, gpu.max_gpus),
        ],
        kubelet=kubelet,
        price_poller=price_poller,
    )
    if isinstance(source, AllocatedSource):
        exporter.collectors.append(UnresolvedCollector(source))
    if isinstance(inner, SimulatedSource):
        exporter.routes.append(Route("POST", SIMULATOR_PATH, _simulator_handler(inner), 4096))
    return exporter


def _with_allocation(
    config: Config,
    health: CollectorHealth,
    inner: GPUSource,
    pods: PodDirectory | None,
    clock: Callable[[], float],
    environ: Mapping[str, str],
) -> tuple[GPUSource, KubeletSimulator | None]:
    """The source whose holders come from the kubelet's allocation where that applies, and the
    kubelet simulator to start when the simulator serves its own fleet."""
    gpu = config.gpu
    socket_path = gpu.pod_resources_socket
    kubelet = None
    labels: PodLabels | None
    if isinstance(inner, SimulatedSource):
        if not gpu.simulator.serve_pod_resources or not socket_path:
            log.info("GPU holders: the simulator's processes (no PodResources served)")
            return inner, None
        kubelet = KubeletSimulator(socket_path, inner.allocation)
        labels = inner.pod_labels
    elif isinstance(inner, NVMLSource):
        if not socket_path:
            log.info("GPU holders: processes on each GPU (gpu.pod_resources_socket is empty)")
            return inner, None
        if not os.path.exists(socket_path) and not in_cluster_api_url(environ):
            log.info("GPU holders: processes on each GPU (outside Kubernetes, no %s)", socket_path)
            return inner, None
        labels = pods.labels if pods is not None else None
    else:
        log.info("GPU holders: dcgm-exporter's pod labels (it reads the kubelet's allocation)")
        return inner, None
    log.info(
        "GPU holders: the kubelet's PodResources allocation on %s (%s's own holders while "
        "it does not answer)",
        socket_path,
        inner.name,
    )
    client = PodResourcesClient(socket_path, gpu.timeout_seconds)
    source = AllocatedSource(
        inner,
        client,
        health,
        pod_labels=labels,
        stale_seconds=gpu.max_gap_seconds,
        refresh_seconds=gpu.pod_resources_refresh_seconds,
        clock=clock,
    )
    return source, kubelet


def _simulator_handler(source: SimulatedSource) -> Callable[[Request], Response]:
    """`POST /-/simulator {"node", "gpu", "pattern", "utilization"?}`: change one simulated GPU."""

    def handle(request: Request) -> Response:
        try:
            body = json.loads(request.body or b"null")
        except ValueError as exc:
            return Response.json(400, {"error": f"body is not JSON: {exc}"})
        if not isinstance(body, dict):
            return Response.json(400, {"error": "body must be a JSON object"})
        node, gpu, pattern = body.get("node"), body.get("gpu"), body.get("pattern")
        utilization = body.get("utilization")
        if not isinstance(node, str) or not isinstance(gpu, int) or not isinstance(pattern, str):
            return Response.json(
                400, {"error": "node (string), gpu (integer) and pattern (string) are required"}
            )
        if utilization is not None and not isinstance(utilization, int | float):
            return Response.json(400, {"error": "utilization must be a number"})
        try:
            state = source.set_pattern(node, gpu, pattern, utilization)
        except SimulatorError as exc:
            return Response.json(400, {"error": str(exc)})
        log.info("simulator: %s GPU %s is now %s", node, gpu, pattern)
        return Response.json(200, dict(state))

    return handle
