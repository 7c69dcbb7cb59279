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
class GPUReading:
    """One GPU as read now. `holders` lists the containers using it (empty when none)."""

    node: str
    index: int
    uuid: str
    model: str
    utilization_ratio: float
    memory_used_bytes: int
    memory_total_bytes: int
    power_watts: float | None
    holders: tuple[PodRef, ...] = ()


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
