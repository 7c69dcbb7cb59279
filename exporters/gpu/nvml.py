"""The `nvml` source: reads every GPU of this node through NVML (nvidia-ml-py) and attributes its
processes to pods. Without the NVML library or a GPU, `fetch()` raises `SourceError` with one clear
reason, so the collector reports `aifinops_collector_success{collector="nvml"} 0` and the daemon
keeps serving; NVML is initialised again on the next fetch (a driver installed later is picked up).

MIG: a MIG-enabled GPU is reported as the whole GPU (device-level utilisation is what NVML gives);
its processes are attributed all the same.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from types import ModuleType
from typing import Any

from .attribution import ProcessAttributor
from .model import GPUReading, GPUSnapshot, SourceError

log = logging.getLogger(__name__)


def _load_pynvml() -> ModuleType:
    import pynvml  # nvidia-ml-py; imported lazily so the exporter starts without it

    return pynvml


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class NVMLSource:
    """GPUs read through NVML. `nvml` is the pynvml module (a stand-in in unit tests)."""

    name = "nvml"

    def __init__(
        self, node: str, attributor: ProcessAttributor, nvml: ModuleType | Any | None = None
    ) -> None:
        self._node = node
        self._attributor = attributor
        self._nvml = nvml
        self._initialised = False
        self._lock = threading.Lock()

    def _ensure(self) -> Any:
        if self._nvml is None:
            try:
                self._nvml = _load_pynvml()
            except ImportError as exc:
                raise SourceError(
                    f"NVML unavailable: nvidia-ml-py is not installed ({exc})"
                ) from exc
        nvml = self._nvml
        if not self._initialised:
            try:
                nvml.nvmlInit()
            except nvml.NVMLError as exc:
                raise SourceError(
                    f"NVML unavailable: {exc} (no NVIDIA driver or libnvidia-ml.so.1 on this node?); "
                    "serving without GPU metrics, retrying every interval"
                ) from exc
            self._initialised = True
            log.info("NVML initialised, driver %s", _text(nvml.nvmlSystemGetDriverVersion()))
        return nvml

    def fetch(self) -> GPUSnapshot:
        """Every GPU now, with its holders; raises `SourceError`."""
        with self._lock:
            nvml = self._ensure()
            try:
                return GPUSnapshot(
                    tuple(self._read(nvml, i) for i in range(nvml.nvmlDeviceGetCount()))
                )
            except nvml.NVMLError as exc:
                # A lost GPU or a driver reload: start again from nvmlInit next time.
                self._initialised = False
                with contextlib.suppress(nvml.NVMLError):
                    nvml.nvmlShutdown()
                raise SourceError(f"NVML read failed: {exc}") from exc

    def _read(self, nvml: Any, index: int) -> GPUReading:
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        try:
            power: float | None = nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0
        except nvml.NVMLError:
            power = None  # not supported on this board
        pids: list[int] = []
        for getter in (
            "nvmlDeviceGetComputeRunningProcesses",
            "nvmlDeviceGetGraphicsRunningProcesses",
        ):
            try:
                pids += [p.pid for p in getattr(nvml, getter)(handle)]
            except nvml.NVMLError:
                continue
        return GPUReading(
            node=self._node,
            index=index,
            uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
            model=_text(nvml.nvmlDeviceGetName(handle)),
            utilization_ratio=min(1.0, nvml.nvmlDeviceGetUtilizationRates(handle).gpu / 100.0),
            memory_used_bytes=int(memory.used),
            memory_total_bytes=int(memory.total),
            power_watts=power,
            holders=self._attributor.holders(pids),
        )
