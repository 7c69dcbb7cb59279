"""The nvml source. Without the NVML library (this machine) the collector fails cleanly with one clear
log line; the reading logic is checked against a stand-in with pynvml's API; the tests marked `nvml`
read a real GPU and run only where one exists (tests/nvml_device_check.sh runs them there)."""

from __future__ import annotations

import logging
from fractions import Fraction
from types import SimpleNamespace

import pynvml
import pytest

from aifinops.exporters.config import Config
from aifinops.exporters.gpu.app import build_gpu_exporter
from aifinops.exporters.gpu.attribution import ProcessAttributor
from aifinops.exporters.gpu.model import SourceError
from aifinops.exporters.gpu.nvml import NVMLSource
from aifinops.exporters.runtime.config import load_config
from aifinops.exporters.runtime.poll import Poller
from aifinops.exporters.runtime.selfmetrics import CollectorHealth


def _nvml_works() -> bool:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return False
    try:
        return pynvml.nvmlDeviceGetCount() > 0
    finally:
        pynvml.nvmlShutdown()


HAVE_GPU = _nvml_works()
needs_gpu = pytest.mark.skipif(not HAVE_GPU, reason="no NVIDIA GPU/driver here (NVML unavailable)")


class NoLibrary:
    """pynvml as it behaves on a node without the driver: nvmlInit raises LibraryNotFound."""

    NVMLError = pynvml.NVMLError

    def __init__(self) -> None:
        self.inits = 0

    def nvmlInit(self) -> None:
        self.inits += 1
        raise pynvml.NVMLError_LibraryNotFound()


def test_without_the_nvml_library_fetch_fails_with_a_clear_reason():
    source = NVMLSource("n1", ProcessAttributor(None), NoLibrary())
    with pytest.raises(SourceError) as err:
        source.fetch()
    assert str(err.value).startswith("NVML unavailable: NVML Shared Library Not Found")
    assert "no NVIDIA driver or libnvidia-ml.so.1 on this node?" in str(err.value)


@pytest.mark.skipif(HAVE_GPU, reason="checks the real library's absence; this machine has a GPU")
def test_the_real_pynvml_without_a_driver_is_a_source_error():
    with pytest.raises(SourceError, match="NVML unavailable"):
        NVMLSource("n1", ProcessAttributor(None)).fetch()


def test_the_poller_reports_failure_logs_once_and_retries_init(caplog):
    nvml = NoLibrary()
    health = CollectorHealth()
    poller = Poller("nvml", NVMLSource("n1", ProcessAttributor(None), nvml), 1.0, health)
    with caplog.at_level(logging.DEBUG):
        for _ in range(3):
            assert poller.poll_once() is False
    assert health.snapshot()["nvml"].success is False
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "collector nvml: fetch failed: NVML unavailable" in errors[0].getMessage()
    assert nvml.inits == 3  # a driver installed later is picked up


class StandInNVML:
    """pynvml's API over two fixed GPUs: one with a process, one whose board has no power sensor."""

    NVMLError = pynvml.NVMLError

    def __init__(self) -> None:
        self.init_calls = 0

    def nvmlInit(self):
        self.init_calls += 1

    def nvmlShutdown(self):
        pass

    def nvmlSystemGetDriverVersion(self):
        return "570.172.08"

    def nvmlDeviceGetCount(self):
        return 2

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetUUID(self, h):
        return f"GPU-0000000{h}-aaaa-bbbb-cccc-dddddddddddd"

    def nvmlDeviceGetName(self, h):
        return b"NVIDIA H100 80GB HBM3" if h == 0 else "NVIDIA L4"

    def nvmlDeviceGetUtilizationRates(self, h):
        return SimpleNamespace(gpu=(73, 0)[h], memory=10)

    def nvmlDeviceGetMemoryInfo(self, h):
        return SimpleNamespace(used=(40 << 30, 0)[h], total=(80 << 30, 24 << 30)[h], free=0)

    def nvmlDeviceGetPowerUsage(self, h):
        if h == 1:
            raise pynvml.NVMLError_NotSupported()
        return 512_345  # milliwatts

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        return [SimpleNamespace(pid=4242, usedGpuMemory=1 << 30)] if h == 0 else []

    def nvmlDeviceGetGraphicsRunningProcesses(self, h):
        raise pynvml.NVMLError_NotSupported()

    def nvmlDeviceGetMigMode(self, h):
        if h == 1:
            raise pynvml.NVMLError_NotSupported()  # the L4 is not MIG-capable
        return (pynvml.NVML_DEVICE_MIG_DISABLE, pynvml.NVML_DEVICE_MIG_DISABLE)


class RecordingAttributor(ProcessAttributor):
    def __init__(self) -> None:
        super().__init__(None)
        self.asked: list[list[int]] = []

    def holders(self, pids):
        self.asked.append(list(pids))
        return ()


def test_readings_are_converted_from_nvml_units():
    attributor = RecordingAttributor()
    snap = NVMLSource("node-a", attributor, StandInNVML()).fetch()
    h100, l4 = snap.gpus
    assert (h100.node, h100.index, h100.model) == ("node-a", 0, "NVIDIA H100 80GB HBM3")
    assert h100.utilization_ratio == 0.73
    assert h100.memory_used_bytes == 40 << 30 and h100.memory_total_bytes == 80 << 30
    assert h100.power_watts == pytest.approx(512.345)
    assert l4.power_watts is None  # not supported: no power sample, not a failure
    assert attributor.asked == [[4242], []]


def test_an_nvml_error_while_reading_reinitialises_next_time():
    nvml = StandInNVML()
    source = NVMLSource("n", ProcessAttributor(None), nvml)
    source.fetch()

    def lost(_h):
        raise pynvml.NVMLError_GpuIsLost()

    nvml.nvmlDeviceGetUUID = lost
    with pytest.raises(SourceError, match="NVML read failed"):
        source.fetch()
    del nvml.nvmlDeviceGetUUID
    source.fetch()
    assert nvml.init_calls == 2


@pytest.mark.nvml
@needs_gpu
def test_real_gpus_are_read():
    source = NVMLSource("this-node", ProcessAttributor(None))
    snap = source.fetch()
    pynvml.nvmlInit()
    try:
        assert len(snap.gpus) == pynvml.nvmlDeviceGetCount()
    finally:
        pynvml.nvmlShutdown()
    for g in snap.gpus:
        assert g.uuid.startswith(("GPU-", "MIG-"))
        assert g.model
        assert 0.0 <= g.utilization_ratio <= 1.0
        assert 0 <= g.memory_used_bytes <= g.memory_total_bytes and g.memory_total_bytes > 0
        assert g.power_watts is None or 0 < g.power_watts < 2000
        print(
            f"GPU {g.index} {g.uuid} {g.model}: util {g.utilization_ratio:.2f}, "
            f"mem {g.memory_used_bytes >> 20}/{g.memory_total_bytes >> 20} MiB, power {g.power_watts} W"
        )


@pytest.mark.nvml
@needs_gpu
def test_real_gpus_are_priced_and_counted_through_the_whole_exporter(tmp_path):
    now = [0.0]
    config = load_config(Config, None, environ={}, overrides={"gpu.source": "nvml"})
    exporter = build_gpu_exporter(
        config, CollectorHealth(), clock=lambda: now[0], wall=lambda: 1_764_300_000.0 + now[0]
    )
    for t in (0.0, 10.0):
        now[0] = t
        assert exporter.poller.poll_once()
    snap = exporter.aggregator.snapshot()
    assert len(snap.gpus) >= 1
    for g in (state.sample for state in snap.gpus):
        if g.hourly_cost_usd is None:
            continue  # a model the table does not know (e.g. a workstation card)
        cost, idle = snap.money_for(uuid=g.uuid)
        assert cost == Fraction(g.hourly_cost_usd) * 10 / 3600  # 10 s watched at the table price
        assert 0 <= idle <= cost
        print(
            f"{g.model}: ${g.hourly_cost_usd}/h, 10 s cost ${float(cost):.6f}, idle ${float(idle):.6f}"
        )


def test_the_demo_counts_nvml_gpus_so_auto_picks_nvml_where_there_is_one(monkeypatch):
    from aifinops.cli.demo import demostack
    from aifinops.exporters.gpu import nvml as nvml_module

    monkeypatch.setattr(nvml_module, "_load_pynvml", StandInNVML)
    assert demostack.nvml_gpu_count() == 2
    monkeypatch.setattr(nvml_module, "_load_pynvml", NoLibrary)
    assert demostack.nvml_gpu_count() == 0
