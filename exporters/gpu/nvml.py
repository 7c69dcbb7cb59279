"""The `nvml` source: reads every GPU of this node through NVML (nvidia-ml-py) and attributes its
processes to pods. Without the NVML library or a GPU, `fetch()` raises `SourceError` with one clear
reason, so the collector reports `aifinops_collector_success{collector="nvml"} 0` and the daemon
keeps serving; NVML is initialised again on the next fetch (a driver installed later is picked up).

MIG: a MIG-enabled GPU is reported as the whole GPU, with its MIG devices (`MIG-…` UUID, compute
slices, profile) and its total compute slices, so the kubelet's allocation of MIG devices maps to
their parent GPU (`allocation`). NVML gives no utilisation for a MIG-enabled GPU on most drivers;
where a MIG device's own is readable it is used, and the GPU's is then the slice-weighted mean of
its devices' (0 when none is readable). The NVML module is injectable, so this mapping is tested
with a stand-in of pynvml's API (no GPU on the CI machine).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from types import ModuleType
from typing import Any

from .attribution import ProcessAttributor
from .model import GPUReading, GPUSnapshot, MIGDevice, SourceError

log = logging.getLogger(__name__)


def _load_pynvml() -> ModuleType:
    import pynvml  # nvidia-ml-py; imported lazily so the exporter starts without it

    module: ModuleType = pynvml  # untyped library: mypy sees Any
    return module


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
        mig_devices, mig_slices = _mig(nvml, handle)
        try:
            utilization = min(1.0, nvml.nvmlDeviceGetUtilizationRates(handle).gpu / 100.0)
        except nvml.NVMLError:
            if not mig_slices:
                raise
            # MIG mode: no device-level utilisation; the measured devices' slice-weighted mean.
            utilization = round(
                sum(m.compute_slices * (m.utilization_ratio or 0.0) for m in mig_devices)
                / mig_slices,
                4,
            )
        return GPUReading(
            node=self._node,
            index=index,
            uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
            model=_text(nvml.nvmlDeviceGetName(handle)),
            utilization_ratio=utilization,
            memory_used_bytes=int(memory.used),
            memory_total_bytes=int(memory.total),
            power_watts=power,
            holders=self._attributor.holders(pids),
            mig_devices=mig_devices,
            mig_slices=mig_slices,
        )


# GPU-instance profiles spanning a whole GPU, largest first: the first one the GPU supports gives
# its compute slices (7 on A100/H100/H200, 4 on A30).
_WHOLE_GPU_PROFILES = (
    "NVML_GPU_INSTANCE_PROFILE_8_SLICE",
    "NVML_GPU_INSTANCE_PROFILE_7_SLICE",
    "NVML_GPU_INSTANCE_PROFILE_6_SLICE",
    "NVML_GPU_INSTANCE_PROFILE_4_SLICE",
)


def _mig(nvml: Any, handle: Any) -> tuple[tuple[MIGDevice, ...], int]:
    """The MIG devices of a GPU and its total compute slices; `((), 0)` when MIG is off."""
    try:
        current, _pending = nvml.nvmlDeviceGetMigMode(handle)
    except nvml.NVMLError:
        return (), 0  # not MIG-capable
    if current != getattr(nvml, "NVML_DEVICE_MIG_ENABLE", 1):
        return (), 0
    total = 0
    for name in _WHOLE_GPU_PROFILES:
        profile = getattr(nvml, name, None)
        if profile is None:
            continue
        try:
            total = int(nvml.nvmlDeviceGetGpuInstanceProfileInfo(handle, profile).sliceCount)
            break
        except nvml.NVMLError:
            continue
    devices = []
    for i in range(nvml.nvmlDeviceGetMaxMigDeviceCount(handle)):
        try:
            mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, i)
        except nvml.NVMLError:
            continue  # an empty slot
        attrs = nvml.nvmlDeviceGetAttributes(mig)
        compute, instance = int(attrs.computeInstanceSliceCount), int(attrs.gpuInstanceSliceCount)
        memory_gb = -(-int(attrs.memorySizeMB) // 1024)
        profile = f"{instance}g.{memory_gb}gb"
        if compute != instance:
            profile = f"{compute}c.{profile}"
        try:
            util: float | None = min(1.0, nvml.nvmlDeviceGetUtilizationRates(mig).gpu / 100.0)
        except nvml.NVMLError:
            util = None  # not supported on MIG devices by most drivers
        devices.append(MIGDevice(_text(nvml.nvmlDeviceGetUUID(mig)), profile, compute, util))
    if total <= 0:
        total = sum(d.compute_slices for d in devices)
        log.warning("MIG GPU's compute slices unknown; counting its devices' (%d)", total)
    return tuple(devices), total
