"""Who holds each GPU, from the kubelet's PodResources allocation: resolves device ids to this
node's GPUs and splits each GPU's cost exactly among its holders.

`AllocatedSource` wraps a GPU source (nvml, or the simulator serving its fleet through a kubelet
simulator). Each fetch reads the GPUs from the wrapped source and the allocation from the kubelet,
and returns the readings with `holders` and `shares` from the allocation. Which holders win:

- the allocation whenever `List` answers (`aifinops_collector_success{collector="podresources"} 1`),
  read at most every `refresh_seconds` (10 s by default: allocations change when pods start and
  stop, and a `List` costs the exporter about 250 us of CPU and the kubelet a request; a failed
  read is retried on every fetch);
- when it fails (`… 0`): the last good allocation for at most `stale_seconds` (a kubelet restart
  takes seconds and pods keep their GPUs meanwhile), then the wrapped source's own holders
  (process attribution for nvml: a GPU with no process has no holder). The client dials the
  socket afresh on every attempt, so it reconnects by itself.

Device ids (`resolve_id`): a GPU UUID (`GPU-…`, whole GPU); a time-sliced or MPS replica
(`GPU-…::2`, under any resource name such as `nvidia.com/gpu.shared`); a MIG device (`MIG-…`),
mapped to its parent GPU through the source's MIG table (NVML); a DRA device by name (`gpu-0`) or
CDI name (`…=GPU-…`, `…=gpu-0`, `…=0`). An id that resolves to no GPU of this snapshot is never
guessed: it is counted in `aifinops_gpu_unresolved_devices{kind}` and logged once.

Sharing (`split`), exact: a GPU held by P pods (whole or time-sliced replicas) charges each pod
1/P (a pod's containers split its part equally). A MIG GPU of S compute slices charges each MIG
device of k slices k/S, split equally among the pods holding it; the compute slices no pod holds
(free MIG devices, uncarved slices) are the remainder, charged to no pod: idle cost of nobody. A
MIG device's idle cost uses its own utilisation where the source measures it, else the GPU's.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..runtime.selfmetrics import CollectorHealth
from .model import GPUReading, GPUSnapshot, GPUSource, MIGDevice, PodRef, Share
from .podresources.client import Allocation, DeviceGrant, PodResourcesClient, PodResourcesError

log = logging.getLogger(__name__)

COLLECTOR = "podresources"
UNRESOLVED_METRIC = "aifinops_gpu_unresolved_devices"
_REPLICA = re.compile(r"::\d+$")
_INDEX = re.compile(r"^(?:gpu-)?(\d+)$")
_MAX_LOGGED = 1_000
_NO_LABELS: Mapping[str, str] = MappingProxyType({})

PodLabels = Callable[[str, str], Mapping[str, str]]


@dataclass(frozen=True)
class DeviceTarget:
    """What a device id resolves to: a GPU, and the MIG device on it when it is one."""

    reading: GPUReading
    mig: MIGDevice | None


class DeviceIndex:
    """Device ids of one snapshot's GPUs: GPU UUIDs, MIG UUIDs and, on a one-node snapshot, indices."""

    def __init__(self, gpus: Iterable[GPUReading]) -> None:
        self._by_id: dict[str, DeviceTarget] = {}
        nodes: set[str] = set()
        by_index: dict[str, DeviceTarget] = {}
        for g in gpus:
            nodes.add(g.node)
            target = DeviceTarget(g, None)
            self._by_id[g.uuid] = target
            by_index[str(g.index)] = target
            for m in g.mig_devices:
                self._by_id[m.uuid] = DeviceTarget(g, m)
        # An index names a GPU only on one node (a DRA device `gpu-0` is local to its node).
        self._by_index = by_index if len(nodes) == 1 else {}

    def resolve_id(self, device_id: str) -> DeviceTarget | None:
        """The GPU (and MIG device) a device id names, or None."""
        device_id = _REPLICA.sub("", device_id.strip())
        target = self._by_id.get(device_id)
        if target is None:
            match = _INDEX.match(device_id)
            if match:
                target = self._by_index.get(match.group(1))
        return target

    def resolve(self, grant: DeviceGrant) -> DeviceTarget | None:
        """The first of a grant's ids that names a GPU here, or None."""
        for device_id in grant.device_ids:
            target = self.resolve_id(device_id)
            if target is not None:
                return target
        return None


def split(
    reading: GPUReading, holdings: Mapping[str | None, Iterable[PodRef]]
) -> tuple[Share, ...]:
    """The exact shares of one GPU: `holdings` maps a MIG device UUID (None: the whole GPU or a
    replica of it) to the containers holding it, in order. The shares add up to the whole GPU."""
    if reading.mig_slices <= 0:
        return tuple(_equal(list(holdings.get(None, ())), 1, 1, None))
    total = reading.mig_slices
    shares: list[Share] = []
    held = 0
    for mig in reading.mig_devices:
        containers = list(holdings.get(mig.uuid, ()))
        if not containers:
            continue
        held += mig.compute_slices
        shares += _equal(containers, mig.compute_slices, total, mig.utilization_ratio)
    free = total - held
    if free > 0:
        shares.append(Share(None, free, total, _remainder_utilization(reading, holdings)))
    return tuple(shares)


def _equal(containers: list[PodRef], parts: int, of: int, utilization: float | None) -> list[Share]:
    """`parts/of` split equally among the pods of `containers`, each pod's part equally among its
    containers."""
    pods: dict[tuple[str, str], list[PodRef]] = {}
    for c in containers:
        members = pods.setdefault((c.namespace, c.pod), [])
        if c not in members:
            members.append(c)
    return [
        Share(c, parts, of * len(pods) * len(members), utilization)
        for members in pods.values()
        for c in members
    ]


def _remainder_utilization(
    reading: GPUReading, holdings: Mapping[str | None, Iterable[PodRef]]
) -> float | None:
    """The unallocated slices' utilisation: where MIG devices are measured, that of the free
    devices weighted by slices (0 for slices carved into no device: nothing runs there); else
    None (the GPU's)."""
    if not any(m.utilization_ratio is not None for m in reading.mig_devices):
        return None
    free = [m for m in reading.mig_devices if not list(holdings.get(m.uuid, ()))]
    held = sum(m.compute_slices for m in reading.mig_devices if m not in free)
    slices = reading.mig_slices - held
    busy = sum(m.compute_slices * (m.utilization_ratio or 0.0) for m in free)
    return round(busy / slices, 4) if slices > 0 else None


class AllocatedSource:
    """A GPU source whose holders come from the kubelet's PodResources allocation."""

    def __init__(
        self,
        inner: GPUSource,
        client: PodResourcesClient,
        health: CollectorHealth,
        *,
        pod_labels: PodLabels | None = None,
        stale_seconds: float = 30.0,
        refresh_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = inner.name
        self._inner = inner
        self._client = client
        self._health = health
        self._pod_labels = pod_labels or (lambda _ns, _pod: _NO_LABELS)
        self._stale = stale_seconds
        self._refresh = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._last: Allocation | None = None
        self._last_at = 0.0
        self._failing: bool | None = None
        self._logged: set[str] = set()
        self._unresolved: dict[str, int] = {"device_plugin": 0, "dra": 0}
        # The last allocation resolved against this node's GPUs, and each GPU's split from it
        # (uuid -> (MIG devices it was split for, holders, shares)): recomputed only when the
        # allocation or a GPU's MIG layout (or a MIG device's utilisation) changes.
        self._resolved_for: Allocation | None = None
        self._layout: tuple[tuple[str, tuple[str, ...]], ...] = ()
        self._resolved: dict[str, dict[str | None, list[PodRef]]] = {}
        self._splits: dict[str, tuple[tuple[MIGDevice, ...], tuple[PodRef, ...], tuple[Share, ...]]]
        self._splits = {}

    def fetch(self) -> GPUSnapshot:
        """The wrapped source's GPUs with the allocation's holders; raises `SourceError` when the
        wrapped source fails (the allocation alone says nothing about the GPUs)."""
        snapshot = self._inner.fetch()
        allocation = self._allocation()
        with self._lock:
            if allocation is None:
                self._unresolved = {"device_plugin": 0, "dra": 0}
                return snapshot
            return GPUSnapshot(self._attribute(snapshot, allocation))

    def unresolved(self) -> dict[str, int]:
        """Device ids of the latest allocation that name no GPU here, per kind."""
        with self._lock:
            return dict(self._unresolved)

    def _allocation(self) -> Allocation | None:
        now = self._clock()
        if (
            self._failing is False
            and self._last is not None
            and now - self._last_at < self._refresh
        ):
            return self._last
        start = time.perf_counter()
        try:
            allocation = self._client.list()
        except PodResourcesError as exc:
            self._health.record(COLLECTOR, False, time.perf_counter() - start)
            if self._failing is not True:
                log.error(
                    "PodResources unavailable, keeping the last allocation for %.0f s, then "
                    "falling back to %s's own holders: %s",
                    self._stale,
                    self.name,
                    exc,
                )
            self._failing = True
            if self._last is not None and now - self._last_at <= self._stale:
                return self._last
            if self._last is not None:
                log.warning(
                    "last PodResources allocation older than %.0f s: no longer used", self._stale
                )
                self._last = None
            return None
        self._health.record(COLLECTOR, True, time.perf_counter() - start)
        if self._failing is not False:
            log.info(
                "GPU holders from the kubelet's PodResources API (%s)", self._client.socket_path
            )
        self._failing = False
        self._last, self._last_at = allocation, now
        return allocation

    def _attribute(self, snapshot: GPUSnapshot, allocation: Allocation) -> tuple[GPUReading, ...]:
        layout = tuple((g.uuid, tuple(m.uuid for m in g.mig_devices)) for g in snapshot.gpus)
        # A new `List` (every refresh) resolves again, which also re-reads the pods' labels.
        if allocation is not self._resolved_for or layout != self._layout:
            self._resolve(snapshot, allocation)
            self._layout = layout
        out = []
        for g in snapshot.gpus:
            cached = self._splits.get(g.uuid)
            if cached is None or cached[0] != g.mig_devices:
                shares = split(g, self._resolved.get(g.uuid, {}))
                holders = tuple(s.holder for s in shares if s.holder is not None)
                cached = self._splits[g.uuid] = (g.mig_devices, holders, shares)
            out.append(
                # Built, not dataclasses.replace()d: this runs for every GPU every interval.
                GPUReading(
                    node=g.node,
                    index=g.index,
                    uuid=g.uuid,
                    model=g.model,
                    utilization_ratio=g.utilization_ratio,
                    memory_used_bytes=g.memory_used_bytes,
                    memory_total_bytes=g.memory_total_bytes,
                    power_watts=g.power_watts,
                    holders=cached[1],
                    shares=cached[2],
                    mig_devices=g.mig_devices,
                    mig_slices=g.mig_slices,
                )
            )
        return tuple(out)

    def _resolve(self, snapshot: GPUSnapshot, allocation: Allocation) -> None:
        """Map every grant of `allocation` to this snapshot's GPUs (and MIG devices)."""
        index = DeviceIndex(snapshot.gpus)
        # GPU uuid -> MIG uuid (None: whole GPU) -> holding containers in order
        holdings: dict[str, dict[str | None, dict[tuple[str, str, str], PodRef]]] = {}
        refs: dict[tuple[str, str, str], PodRef] = {}
        unresolved = {"device_plugin": 0, "dra": 0}
        for grant in allocation.grants:
            target = index.resolve(grant)
            if target is None:
                unresolved[grant.kind] += 1
                self._log_unresolved(grant)
                continue
            key = (grant.namespace, grant.pod, grant.container)
            ref = refs.get(key)
            if ref is None:
                labels = self._pod_labels(grant.namespace, grant.pod)
                ref = refs[key] = PodRef(grant.namespace, grant.pod, grant.container, labels)
            mig = None if target.mig is None else target.mig.uuid
            holdings.setdefault(target.reading.uuid, {}).setdefault(mig, {})[key] = ref
        self._unresolved = unresolved
        self._resolved_for = allocation
        self._resolved = {
            uuid: {mig: list(c.values()) for mig, c in by_mig.items()}
            for uuid, by_mig in holdings.items()
        }
        self._splits = {}

    def _log_unresolved(self, grant: DeviceGrant) -> None:
        ident = f"{grant.resource}:{','.join(grant.device_ids)}"
        if ident in self._logged or len(self._logged) >= _MAX_LOGGED:
            return
        self._logged.add(ident)
        log.warning(
            "PodResources: %s device %s of %s/%s (container %s) is no GPU of this node; "
            "not charged (counted in %s)",
            grant.resource,
            ",".join(grant.device_ids) or "(no id)",
            grant.namespace,
            grant.pod,
            grant.container,
            UNRESOLVED_METRIC,
        )


class UnresolvedCollector(Collector):
    """`aifinops_gpu_unresolved_devices{kind}`: device ids in the latest allocation naming no GPU."""

    def __init__(self, source: AllocatedSource) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        """One gauge per kind (`device_plugin`, `dra`)."""
        family = GaugeMetricFamily(
            UNRESOLVED_METRIC,
            "GPU device ids in the kubelet's latest PodResources allocation that name no GPU of "
            "this node (not charged to anyone).",
            labels=["kind"],
        )
        for kind, n in sorted(self._source.unresolved().items()):
            family.add_metric([kind], n)
        yield family
