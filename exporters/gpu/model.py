"""What every GPU source returns: an immutable snapshot of GPU readings and the pods holding them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol


class SourceError(Exception):
    """A source could not read its GPUs (no driver, exporter down, garbage); the message says why."""


@dataclass(frozen=True)
class PodRef:
    """A Kubernetes container holding a GPU, with its pod's labels (for the team)."""

    namespace: str
    pod: str
    container: str = ""
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class MIGDevice:
    """A MIG device carved out of a GPU: its UUID (`MIG-…`, the id the device plugin hands out),
    its profile (`3g.40gb`), its compute slices and, where the source measures it, its own
    utilisation."""

    uuid: str
    profile: str
    compute_slices: int
    utilization_ratio: float | None = None


@dataclass(frozen=True)
class Share:
    """`parts / of` of a GPU's cost over an interval, charged to `holder` (None: to no pod, the
    unallocated remainder of a MIG GPU). `utilization_ratio` is the slice's own where measured
    (its idle cost follows it), else None: the GPU's."""

    holder: PodRef | None
    parts: int
    of: int
    utilization_ratio: float | None = None


@dataclass(frozen=True)
class GPUReading:
    """One GPU as read now. `holders` lists the containers using it (empty when none); without
    `shares` they split its cost equally. `shares`, when set (by the PodResources allocation),
    says exactly who is charged which part and adds up to the whole GPU. `mig_devices` and
    `mig_slices` (the GPU's compute slices) describe a MIG-enabled GPU."""

    node: str
    index: int
    uuid: str
    model: str
    utilization_ratio: float
    memory_used_bytes: int
    memory_total_bytes: int
    power_watts: float | None
    holders: tuple[PodRef, ...] = ()
    shares: tuple[Share, ...] = ()
    mig_devices: tuple[MIGDevice, ...] = ()
    mig_slices: int = 0


@dataclass(frozen=True)
class GPUSnapshot:
    """Every GPU a source sees at one instant."""

    gpus: tuple[GPUReading, ...]


class GPUSource(Protocol):
    """A GPU source: `fetch()` does all the I/O and returns a snapshot or raises `SourceError`."""

    name: str

    def fetch(self) -> GPUSnapshot:
        """Read every GPU now."""
        ...
