"""The `dcgm` source: scrapes an existing dcgm-exporter's `/metrics` and adds the money to it.

Read per GPU (grouped by `UUID`, or `uuid` under `--use-old-namespace`):
`DCGM_FI_DEV_GPU_UTIL` (%), else `DCGM_FI_PROF_GR_ENGINE_ACTIVE` (0..1); `DCGM_FI_DEV_FB_USED`,
`DCGM_FI_DEV_FB_FREE` and, when exported, `DCGM_FI_DEV_FB_RESERVED` (MiB; total = their sum);
`DCGM_FI_DEV_POWER_USAGE` (W). Labels: `gpu`, `modelName`, `Hostname` (before dcgm-exporter PR
#655) or `hostname`, and the holder's `pod`/`namespace`/`container` (or the legacy
`pod_name`/`pod_namespace`/`container_name`). Under time-slicing dcgm-exporter repeats a GPU's
series once per pod: each becomes a holder of that GPU. Pod labels dcgm-exporter copies onto the
series (sanitised names, e.g. `team`) are kept for the team lookup.

The node is `gpu.node_name` when set (dcgm-exporter's hostname label is its pod's name unless its
`NODE_NAME` is set), else the hostname label, else this machine's hostname. MIG GPU-instance
series (`GPU_I_ID` set) are skipped: dcgm-exporter has no device utilisation for them.

An unreachable exporter, an HTTP error, a body that is not the Prometheus text format, or one
without any GPU utilisation series raises `SourceError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from prometheus_client.parser import text_string_to_metric_families

from .model import GPUReading, GPUSnapshot, PodRef, SourceError
from .scrape import PageReader

MIB = 1 << 20
UTIL = "DCGM_FI_DEV_GPU_UTIL"
GR_ENGINE_ACTIVE = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"
FB_USED = "DCGM_FI_DEV_FB_USED"
FB_FREE = "DCGM_FI_DEV_FB_FREE"
FB_RESERVED = "DCGM_FI_DEV_FB_RESERVED"
POWER = "DCGM_FI_DEV_POWER_USAGE"
_WANTED = frozenset({UTIL, GR_ENGINE_ACTIVE, FB_USED, FB_FREE, FB_RESERVED, POWER})
_WANTED_PREFIXES = tuple(f"{name}{sep}" for name in _WANTED for sep in ("{", " "))
# Labels that describe the device or exporter, not the pod: not copied as pod labels.
_DEVICE_LABELS = frozenset(
    {
        "gpu",
        "UUID",
        "uuid",
        "modelName",
        "Hostname",
        "hostname",
        "device",
        "pci_bus_id",
        "DCGM_FI_DRIVER_VERSION",
        "GPU_I_PROFILE",
        "GPU_I_ID",
        "pod",
        "namespace",
        "container",
        "pod_name",
        "pod_namespace",
        "container_name",
        "pod_uid",
        "vgpu",
        "err_code",
        "err_msg",
    }
)


@dataclass
class _GPU:
    index: int
    model: str
    host: str
    values: dict[str, float] = field(default_factory=dict)
    holders: dict[tuple[str, str, str], PodRef] = field(default_factory=dict)


def _wanted_lines(text: str) -> str:
    """Only the sample lines of the families read: dcgm-exporter serves dozens of fields and the
    text parser costs per line, so the others are dropped before parsing."""
    return "\n".join(line for line in text.splitlines() if line.startswith(_WANTED_PREFIXES))


def parse_dcgm(text: str, node: str | None, default_node: str) -> GPUSnapshot:
    """The GPUs in a dcgm-exporter exposition; raise `SourceError` on garbage or no GPUs."""
    gpus: dict[str, _GPU] = {}
    wanted = _wanted_lines(text)
    try:
        if not wanted:
            # Nothing we read: parse it all for the precise reason (garbage, or another exporter).
            list(text_string_to_metric_families(text))
        for family in text_string_to_metric_families(wanted):
            for s in family.samples:
                if s.name not in _WANTED:
                    continue
                labels = s.labels
                if labels.get("GPU_I_ID"):
                    continue
                uuid = labels.get("UUID") or labels.get("uuid")
                index_text = labels.get("gpu", "")
                if not uuid or not index_text.isdigit():
                    continue
                gpu = gpus.get(uuid)
                if gpu is None:
                    host = labels.get("hostname") or labels.get("Hostname") or ""
                    gpu = gpus[uuid] = _GPU(int(index_text), labels.get("modelName", ""), host)
                gpu.values.setdefault(s.name, float(s.value))
                pod = labels.get("pod") or labels.get("pod_name") or ""
                namespace = labels.get("namespace") or labels.get("pod_namespace") or ""
                if pod and namespace:
                    container = labels.get("container") or labels.get("container_name") or ""
                    key = (namespace, pod, container)
                    if key not in gpu.holders:
                        extra = {k: v for k, v in labels.items() if k not in _DEVICE_LABELS}
                        gpu.holders[key] = PodRef(
                            namespace, pod, container, MappingProxyType(extra)
                        )
    except ValueError as exc:
        raise SourceError(f"not a Prometheus text exposition: {exc}") from exc
    readings = []
    for uuid, gpu in gpus.items():
        reading = _reading(uuid, gpu, node or gpu.host or default_node)
        if reading is not None:
            readings.append(reading)
    if not readings:
        raise SourceError(
            f"no GPU in the exposition: no {UTIL} or {GR_ENGINE_ACTIVE} series with gpu and "
            "UUID labels (is this a dcgm-exporter /metrics?)"
        )
    readings.sort(key=lambda r: (r.node, r.index))
    return GPUSnapshot(tuple(readings))


def _reading(uuid: str, gpu: _GPU, node: str) -> GPUReading | None:
    v = gpu.values
    if UTIL in v:
        utilization = v[UTIL] / 100.0
    elif GR_ENGINE_ACTIVE in v:
        utilization = v[GR_ENGINE_ACTIVE]
    else:
        return None
    used = v.get(FB_USED, 0.0)
    total = used + v.get(FB_FREE, 0.0) + v.get(FB_RESERVED, 0.0)
    return GPUReading(
        node=node,
        index=gpu.index,
        uuid=uuid,
        model=gpu.model,
        utilization_ratio=min(1.0, max(0.0, utilization)),
        memory_used_bytes=int(used * MIB),
        memory_total_bytes=int(total * MIB),
        power_watts=v.get(POWER),
        holders=tuple(gpu.holders.values()),
    )


class DCGMSource:
    """GPUs read from a dcgm-exporter `/metrics` URL."""

    name = "dcgm"

    def __init__(
        self,
        url: str,
        *,
        node: str | None,
        default_node: str,
        timeout_seconds: float = 2.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._node = node
        self._default_node = default_node
        self._page = PageReader(
            url,
            "dcgm-exporter",
            timeout_seconds,
            {"Accept": "text/plain;version=0.0.4", **(headers or {})},
        )

    def fetch(self) -> GPUSnapshot:
        """Scrape and parse the exporter now; raises `SourceError`."""
        text = self._page.read()
        try:
            return parse_dcgm(text, self._node, self._default_node)
        except SourceError as exc:
            raise self._page.error(str(exc)) from exc
