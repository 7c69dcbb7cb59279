"""The one registry of GPU sources (`SOURCES`: name -> how to build it from the configuration).

A new source is a module of its own (a `GPUSource` with `fetch()`) and one entry here: the config
check (`source_problems`), the exporter's `--source` choices, the demo's `--gpu-source` choices and
the chart's values-schema test all read this registry; `build_source` is what the exporter runs.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ..config import Config
from ..runtime.selfmetrics import CollectorHealth
from .attribution import ProcessAttributor
from .dcgm import DCGMSource
from .kube import KubeClient, PodDirectory, api_pods_url, in_cluster_api_url, kubelet_pods_url
from .model import GPUSource
from .nvml import NVMLSource
from .simulated import ScheduledChange, SimulatedSource

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceContext:
    """What a source's factory may read: the configuration and the exporter's shared parts."""

    config: Config
    health: CollectorHealth
    client: KubeClient | None
    clock: Callable[[], float]
    environ: Mapping[str, str]


# A built source, and the pod directory its processes are attributed with (None: not attributed).
BuiltSource = tuple[GPUSource, PodDirectory | None]


@dataclass(frozen=True)
class SourceKind:
    """One registered source: its factory, and whether it runs with nothing else present (the
    demo offers only those: dcgm needs a dcgm-exporter to read)."""

    build: Callable[[SourceContext], BuiltSource]
    standalone: bool
    summary: str


def _nvml(ctx: SourceContext) -> BuiltSource:
    gpu = ctx.config.gpu
    node = gpu.node_name or ctx.environ.get("NODE_NAME") or socket.gethostname()
    pods = None
    pods_url = pod_list_url(ctx.config, ctx.environ, node)
    if pods_url is not None and ctx.client is not None:
        log.info("attributing GPU processes to pods from %s", pods_url)
        pods = PodDirectory(pods_url, ctx.client, ctx.health, clock=ctx.clock)
    else:
        log.info("no kubelet or API server known: GPU processes are not attributed to pods")
    return NVMLSource(node, ProcessAttributor(pods, gpu.proc_root)), pods


def _dcgm(ctx: SourceContext) -> BuiltSource:
    gpu = ctx.config.gpu
    assert gpu.dcgm_url is not None  # the config check requires it for this source
    dcgm = DCGMSource(
        gpu.dcgm_url,
        node=gpu.node_name or ctx.environ.get("NODE_NAME") or None,
        default_node=socket.gethostname(),
        timeout_seconds=gpu.timeout_seconds,
    )
    return dcgm, None


def _simulated(ctx: SourceContext) -> BuiltSource:
    sim = ctx.config.gpu.simulator
    simulated = SimulatedSource(
        nodes=sim.nodes,
        gpus_per_node=sim.gpus_per_node,
        models=sim.models,
        patterns=sim.patterns,
        crash_after_seconds=sim.crash_after_seconds,
        utilization=sim.utilization,
        seed=sim.seed,
        schedule=[
            ScheduledChange(c.at_seconds, c.node, c.gpu, c.pattern, c.utilization)
            for c in sim.schedule
        ],
        clock=ctx.clock,
    )
    return simulated, None


# In the order the CLI and the chart list them; the first is the config's default.
SOURCES: Mapping[str, SourceKind] = MappingProxyType(
    {
        "nvml": SourceKind(_nvml, True, "this node's GPUs through the NVIDIA driver (NVML)"),
        "dcgm": SourceKind(_dcgm, False, "a dcgm-exporter's /metrics (gpu.dcgm_url)"),
        "simulated": SourceKind(_simulated, True, "a deterministic simulated fleet"),
    }
)


# What the config loader checks against this registry (`load_config(..., choices=...)`), in the
# same pass as the schema's own checks.
CONFIG_CHOICES: Mapping[str, tuple[str, ...]] = MappingProxyType({"gpu.source": tuple(SOURCES)})


def build_source(ctx: SourceContext) -> BuiltSource:
    """The configured source, built by its registered factory. Raises `KeyError` for a name the
    config check (`CONFIG_CHOICES`) would have refused."""
    return SOURCES[ctx.config.gpu.source].build(ctx)


def pod_list_url(config: Config, environ: Mapping[str, str], node: str) -> str | None:
    """Where the nvml source reads this node's pods: `gpu.kubelet_url`; else the API server when
    `gpu.pods_from_api`; else, in a pod, the kubelet at `https://$HOST_IP:10250` (the chart sets
    HOST_IP from `status.hostIP`); else nowhere."""
    gpu = config.gpu
    if gpu.kubelet_url:
        return kubelet_pods_url(gpu.kubelet_url)
    if gpu.pods_from_api:
        api = gpu.kubernetes_api_url or in_cluster_api_url(environ)
        return api_pods_url(api, node) if api else None
    host_ip = environ.get("HOST_IP")
    if host_ip and in_cluster_api_url(environ):
        return kubelet_pods_url(f"https://{host_ip}:10250")
    return None
