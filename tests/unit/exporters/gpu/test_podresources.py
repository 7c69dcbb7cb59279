"""GPU holders from the kubelet's PodResources API, through a real gRPC server on a unix socket in a
temporary directory (the project's kubelet simulator, or a raw gRPC handler for garbage) and the
exporter's real client. The GPUs come from the nvml source over a stand-in of pynvml's API with a
MIG GPU (no GPU here), so the MIG-to-parent mapping is the real code's.

Node n1: GPU 0 busy with a pod; GPU 1 allocated to a notebook that runs no process; GPU 2
time-sliced to three pods (one of them holding two replicas); GPU 3 split into MIG devices held by
two pods with one device and one slice free; GPU 4 held through a DRA claim; plus a device id of no
GPU here under each mechanism."""

from __future__ import annotations

import logging
import re
import socket
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import grpc
import pynvml
import pytest
import yaml

from aifinops.exporters.config import GPUPriceOverride
from aifinops.exporters.gpu.aggregate import GPUAggregator
from aifinops.exporters.gpu.allocation import AllocatedSource, UnresolvedCollector
from aifinops.exporters.gpu.attribution import ProcessAttributor
from aifinops.exporters.gpu.model import GPUReading, PodRef
from aifinops.exporters.gpu.nvml import NVMLSource
from aifinops.exporters.gpu.podresources.client import PodResourcesClient
from aifinops.exporters.gpu.podresources.simulator import (
    KubeletSimulator,
    claim,
    container,
    list_response,
    pod,
)
from aifinops.exporters.gpu.prices import GPUPricer, load_price_table
from aifinops.exporters.gpu.sampler import GPUSampler
from aifinops.exporters.gpu.teams import TeamResolver
from aifinops.exporters.runtime.poll import Poller
from aifinops.exporters.runtime.selfmetrics import CollectorHealth

REPO = Path(__file__).resolve().parents[4]
PRICE = Decimal("2.10")  # per GPU-hour, every GPU
STEP = 10  # seconds between reads
UUID = [f"GPU-0000000{i}-1111-2222-3333-444444444444" for i in range(5)]
MIG_A, MIG_B, MIG_C = (f"MIG-aaaaaaa{i}-1111-2222-3333-444444444444" for i in range(3))
TEAMS = {"ml": "research", "notebooks": "science", "chat": "platform", "dra": "inference"}


class MIGHandle(SimpleNamespace):
    """A MIG device handle of the stand-in."""


class StandInNVML:
    """pynvml's API over five GPUs; GPU 3 is MIG-enabled with three MIG devices (3g, 2g, 1g) of
    its 7 compute slices, whose own utilisation NVML reports (the GPU's own it does not)."""

    NVMLError = pynvml.NVMLError
    NVML_DEVICE_MIG_ENABLE = pynvml.NVML_DEVICE_MIG_ENABLE
    NVML_DEVICE_MIG_DISABLE = pynvml.NVML_DEVICE_MIG_DISABLE
    NVML_GPU_INSTANCE_PROFILE_7_SLICE = pynvml.NVML_GPU_INSTANCE_PROFILE_7_SLICE

    UTIL = (90, 0, 40, None, 55)
    MIGS = (
        MIGHandle(uuid=MIG_A, slices=3, mb=40192, util=60),
        MIGHandle(uuid=MIG_B, slices=2, mb=19968, util=20),
        None,  # an empty slot
        MIGHandle(uuid=MIG_C, slices=1, mb=9856, util=0),
    )

    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        pass

    def nvmlSystemGetDriverVersion(self):
        return "570.172.08"

    def nvmlDeviceGetCount(self):
        return 5

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetUUID(self, h):
        return h.uuid if isinstance(h, MIGHandle) else UUID[h]

    def nvmlDeviceGetName(self, h):
        return "NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetUtilizationRates(self, h):
        util = h.util if isinstance(h, MIGHandle) else self.UTIL[h]
        if util is None:
            raise pynvml.NVMLError_NotSupported()
        return SimpleNamespace(gpu=util, memory=0)

    def nvmlDeviceGetMemoryInfo(self, h):
        return SimpleNamespace(used=1 << 30, total=80 << 30, free=0)

    def nvmlDeviceGetPowerUsage(self, h):
        return 300_000

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        return []  # no process attribution here: every holder below comes from the kubelet

    def nvmlDeviceGetGraphicsRunningProcesses(self, h):
        return []

    def nvmlDeviceGetMigMode(self, h):
        on = self.NVML_DEVICE_MIG_ENABLE if h == 3 else self.NVML_DEVICE_MIG_DISABLE
        return (on, on)

    def nvmlDeviceGetGpuInstanceProfileInfo(self, h, profile):
        assert profile == self.NVML_GPU_INSTANCE_PROFILE_7_SLICE
        return SimpleNamespace(sliceCount=7)

    def nvmlDeviceGetMaxMigDeviceCount(self, h):
        return len(self.MIGS)

    def nvmlDeviceGetMigDeviceHandleByIndex(self, h, i):
        if self.MIGS[i] is None:
            raise pynvml.NVMLError_NotFound()
        return self.MIGS[i]

    def nvmlDeviceGetAttributes(self, h):
        return SimpleNamespace(
            computeInstanceSliceCount=h.slices, gpuInstanceSliceCount=h.slices, memorySizeMB=h.mb
        )


def node_allocation():
    """The kubelet's answer for node n1."""
    return list_response(
        [
            pod("ml", "train-0", container("main", {"nvidia.com/gpu": [UUID[0]]})),
            # Allocated, never used: no process on GPU 1.
            pod("notebooks", "nb-0", container("jupyter", {"nvidia.com/gpu": [UUID[1]]})),
            # Time-slicing (renamed resource): three pods, one with two replicas.
            pod(
                "chat",
                "api-0",
                container("server", {"nvidia.com/gpu.shared": [f"{UUID[2]}::0", f"{UUID[2]}::3"]}),
            ),
            pod("chat", "api-1", container("server", {"nvidia.com/gpu.shared": [f"{UUID[2]}::1"]})),
            pod("ml", "eval-0", container("main", {"nvidia.com/gpu.shared": [f"{UUID[2]}::2"]})),
            # MIG (mixed strategy): 3g and 2g held, the 1g device and one slice free.
            pod("ml", "ft-0", container("main", {"nvidia.com/mig-3g.40gb": [MIG_A]})),
            pod("chat", "embed-0", container("main", {"nvidia.com/mig-2g.20gb": [MIG_B]})),
            # DRA: NVIDIA's driver names the device gpu-4.
            pod(
                "dra",
                "infer-0",
                container("main", claims=[claim("gpu-4", ["k8s.gpu.nvidia.com/device=gpu-4"])]),
            ),
            # Not GPUs of this node: counted and logged, never guessed.
            pod(
                "ml",
                "ghost-0",
                container(
                    "main",
                    {"nvidia.com/gpu": ["GPU-deadbeef-0000-0000-0000-000000000000"]},
                    claims=[claim("gpu-9")],
                ),
            ),
            # Not a GPU resource at all: ignored.
            pod("net", "router-0", container("main", {"example.com/nic": ["nic-0"]})),
        ]
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Rig:
    """The nvml source over the stand-in, wrapped with the allocation, sampled into an aggregator
    through a poller, all on one injected clock."""

    def __init__(self, socket_path: str, stale_seconds: float = 30.0, step: float = STEP) -> None:
        self.step = step
        self.clock = Clock()
        self.health = CollectorHealth()
        self.source = AllocatedSource(
            NVMLSource("n1", ProcessAttributor(None), StandInNVML()),
            PodResourcesClient(socket_path, timeout_seconds=1.0),
            self.health,
            stale_seconds=stale_seconds,
            refresh_seconds=5.0,
            clock=self.clock,
        )
        self.aggregator = GPUAggregator(clock=self.clock, retention_seconds=3600)
        self.sampler = GPUSampler(
            self.aggregator,
            GPUPricer(load_price_table(), [GPUPriceOverride(PRICE)]),
            teams=TeamResolver("team", TEAMS),
            max_gap_seconds=120,
            clock=self.clock,
            wall=self.clock,
        )
        self.poller = Poller(
            "nvml", self.source, 1.0, self.health, on_snapshot=self.sampler.on_snapshot
        )

    def poll(self) -> GPUReading | None:
        assert self.poller.poll_once(), "the GPU source itself must not fail"
        self.clock.now += self.step

    def podresources_ok(self) -> bool:
        return self.health.snapshot()["podresources"].success

    def holders(self, gpu: int) -> set[tuple[str, str]]:
        snap = self.poller.latest
        assert snap is not None
        return {(h.namespace, h.pod) for h in snap.gpus[gpu].holders}


@pytest.fixture
def sock(tmp_path):
    return str(tmp_path / "pod-resources" / "kubelet.sock")


@pytest.fixture
def kubelet(sock):
    sim = KubeletSimulator(sock, node_allocation)
    sim.start()
    yield sim
    sim.stop()


def usd(seconds: int, parts: Fraction = Fraction(1)) -> Fraction:
    return Fraction(PRICE) * seconds / 3600 * parts


def test_every_gpu_is_charged_to_its_holders_exactly(kubelet, sock):
    rig = Rig(sock)
    for _ in range(4):  # three intervals of STEP seconds after the first read
        rig.poll()
    seconds = 3 * STEP
    snap = rig.aggregator.snapshot()
    assert rig.podresources_ok()

    def money(**labels):
        return snap.money_for(node="n1", **labels)

    # GPU 0: busy, one pod.
    assert money(gpu="0", pod="train-0", team="research") == (
        usd(seconds),
        usd(seconds) * Fraction(10, 100),
    )
    # GPU 1: allocated, no process, 0 % used: all of it is the notebook team's idle cost.
    assert money(gpu="1", namespace="notebooks", pod="nb-0", team="science") == (
        usd(seconds),
        usd(seconds),
    )
    # GPU 2: a third per pod (api-0's two replicas do not make it two thirds).
    for name in ("api-0", "api-1", "eval-0"):
        assert money(gpu="2", pod=name) == (
            usd(seconds, Fraction(1, 3)),
            usd(seconds, Fraction(1, 5)),
        )
    # GPU 3: MIG by compute slices, each slice's idle cost from its own utilisation; the free
    # 1g device and the uncarved slice are idle cost of no pod.
    assert money(gpu="3", pod="ft-0", team="research") == (
        usd(seconds, Fraction(3, 7)),
        usd(seconds, Fraction(3, 7) * Fraction(4, 10)),
    )
    assert money(gpu="3", pod="embed-0", team="platform") == (
        usd(seconds, Fraction(2, 7)),
        usd(seconds, Fraction(2, 7) * Fraction(8, 10)),
    )
    assert money(gpu="3", pod="") == (usd(seconds, Fraction(2, 7)), usd(seconds, Fraction(2, 7)))
    # GPU 4: the DRA claim's pod.
    assert money(gpu="4", namespace="dra", pod="infer-0", team="inference")[0] == usd(seconds)
    # Each GPU's shares add up to its price x time: to the micro-dollar and beyond (exact).
    for gpu in range(5):
        assert money(gpu=str(gpu))[0] == usd(seconds)
    # Per team across GPUs.
    assert snap.money_for(team="platform")[0] == usd(seconds, Fraction(2, 3) + Fraction(2, 7))
    # The exposition rounds only when rendering: each series within a micro-dollar.
    rendered = {(m.gpu, m.pod): m.cost_usd for m in snap.money}
    assert abs(float(rendered[("3", "ft-0")]) - float(usd(seconds, Fraction(3, 7)))) < 1e-6


def test_allocation_sets_holders_and_the_gpu_gauges(kubelet, sock):
    rig = Rig(sock)
    rig.poll()
    rig.poll()
    assert rig.holders(1) == {("notebooks", "nb-0")}  # no process, still held
    assert rig.holders(2) == {("chat", "api-0"), ("chat", "api-1"), ("ml", "eval-0")}
    assert rig.holders(3) == {("ml", "ft-0"), ("chat", "embed-0")}
    states = {s.sample.gpu: s for s in rig.aggregator.snapshot().gpus}
    assert {h[1] for h in states[1].holders} == {"nb-0"}
    # The MIG GPU's utilisation: its devices' slice-weighted mean (3x60 % + 2x20 % + 1x0) / 7.
    assert states[3].sample.utilization_ratio == pytest.approx(2.2 / 7, abs=1e-4)
    assert states[0].sample.utilization_ratio == 0.9


def test_unknown_device_ids_are_counted_and_logged_once(kubelet, sock, caplog):
    rig = Rig(sock)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            rig.poll()
    assert rig.source.unresolved() == {"device_plugin": 1, "dra": 1}
    logged = [r.getMessage() for r in caplog.records if "no GPU of this node" in r.getMessage()]
    assert len(logged) == 2
    assert any("GPU-deadbeef" in m for m in logged) and any("gpu-9" in m for m in logged)
    family = next(iter(UnresolvedCollector(rig.source).collect()))
    assert {s.labels["kind"]: s.value for s in family.samples} == {"device_plugin": 1, "dra": 1}
    # Nothing is charged to the ghost pod.
    assert rig.aggregator.snapshot().money_for(pod="ghost-0") == (0, 0)


def test_missing_socket_reports_failure_and_falls_back_to_process_holders(sock):
    rig = Rig(sock)
    rig.poll()
    rig.poll()
    assert rig.podresources_ok() is False
    assert rig.health.snapshot()["nvml"].success is True  # GPUs still exported
    assert rig.holders(1) == set()
    assert len(rig.aggregator.snapshot().gpus) == 5


def test_a_refusing_socket_is_a_failure(sock):
    import os

    os.makedirs(os.path.dirname(sock))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock)  # bound, never listening: connections are refused
    try:
        rig = Rig(sock)
        rig.poll()
        assert rig.podresources_ok() is False
        assert rig.holders(0) == set()
    finally:
        listener.close()


def test_a_garbage_answer_is_a_failure(sock):
    import os
    from concurrent import futures

    os.makedirs(os.path.dirname(sock))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    handler = grpc.method_handlers_generic_handler(
        "v1.PodResourcesLister",
        {"List": grpc.unary_unary_rpc_method_handler(lambda _req, _ctx: b"\xff\xff\xff\xff\x0f")},
    )
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"unix://{sock}")
    server.start()
    try:
        rig = Rig(sock)
        rig.poll()
        assert rig.podresources_ok() is False
        assert rig.holders(1) == set()
    finally:
        server.stop(0).wait(5)


def test_a_kubelet_restart_keeps_the_last_allocation_for_a_bounded_time_then_reconnects(
    kubelet, sock
):
    rig = Rig(sock, stale_seconds=25)
    rig.poll()
    rig.poll()
    assert rig.holders(1) == {("notebooks", "nb-0")}
    kubelet.stop()  # the socket is removed
    rig.poll()  # 10 s after the last good list
    assert rig.podresources_ok() is False
    assert rig.holders(1) == {("notebooks", "nb-0")}  # last good allocation
    rig.poll()  # 20 s
    assert rig.holders(1) == {("notebooks", "nb-0")}
    rig.poll()  # 30 s: past the bound, no holder
    assert rig.holders(1) == set()
    snap = rig.aggregator.snapshot()
    assert snap.money_for(gpu="1", pod="")[0] == usd(STEP)  # the unheld interval, to nobody
    kubelet.start()  # a new socket at the same path
    rig.poll()
    assert rig.podresources_ok() is True
    assert rig.holders(1) == {("notebooks", "nb-0")}
    assert rig.holders(3) == {("ml", "ft-0"), ("chat", "embed-0")}


def _share_rows(aggregator: GPUAggregator) -> dict[tuple[str, str], float]:
    """(gpu, pod) -> aifinops_gpu_allocation_share_ratio as the collector renders it."""
    from aifinops.exporters.gpu.aggregate import SHARE_METRIC, GPUCollector

    return {
        (s.labels["gpu"], s.labels["pod"]): s.value
        for family in GPUCollector(aggregator).collect()
        if family.name == SHARE_METRIC
        for s in family.samples
    }


def test_the_collector_exposes_each_pods_exact_share_of_its_gpu(kubelet, sock):
    """The share gauge the rules price pods with is what the counters charge: whole GPU 1,
    time-sliced 1/P per pod (api-0's two replicas are still one pod's third), MIG k/S per device
    with the free slices held by no pod."""
    rig = Rig(sock)
    rig.poll()
    rig.poll()
    shares = _share_rows(rig.aggregator)
    assert shares == {
        ("0", "train-0"): 1.0,
        ("1", "nb-0"): 1.0,
        ("2", "api-0"): pytest.approx(1 / 3, abs=1e-15),
        ("2", "api-1"): pytest.approx(1 / 3, abs=1e-15),
        ("2", "eval-0"): pytest.approx(1 / 3, abs=1e-15),
        ("3", "ft-0"): 3 / 7,
        ("3", "embed-0"): 2 / 7,
        ("4", "infer-0"): 1.0,
    }
    # The free 1g device and the uncarved slice: 2/7 of GPU 3 is nobody's share.
    assert sum(v for (gpu, _), v in shares.items() if gpu == "3") == pytest.approx(5 / 7)
    # Exact in the aggregator: each share equals the fraction of the GPU's money charged.
    states = {s.sample.gpu: s for s in rig.aggregator.snapshot().gpus}
    assert {h[1]: f for h, f in states[3].shares().items()} == {
        "ft-0": Fraction(3, 7),
        "embed-0": Fraction(2, 7),
    }
    assert sum(states[2].shares().values()) == 1


def test_container_shares_within_a_pod_and_replicas_add_up():
    """Two containers of one pod split that pod's part; the parts still sum to the GPU."""
    from aifinops.exporters.gpu.allocation import split

    g = GPUReading("n", 0, "GPU-x", "m", 0.5, 0, 1, None)
    a, b, c = PodRef("ns", "p", "a"), PodRef("ns", "p", "b"), PodRef("ns", "q", "main")
    shares = split(g, {None: [a, b, c]})
    assert [(s.holder.container, Fraction(s.parts, s.of)) for s in shares] == [
        ("a", Fraction(1, 4)),
        ("b", Fraction(1, 4)),
        ("main", Fraction(1, 2)),
    ]
    assert sum(Fraction(s.parts, s.of) for s in shares) == 1


def _series_labels(text: str) -> tuple[str, dict[str, str]]:
    name, _, rest = text.partition("{")
    return name, dict(re.findall(r'(\w+)="([^"]*)"', rest))


def test_the_promtool_test_feeds_the_series_this_exporter_produces(kubelet, sock):
    """tests/rules/podresources.test.yaml's GPUs 1 and 2 are this node's: its held series are
    exactly the exporter's (plus the scrape's job), so AIFinOpsGPUIdle fires on real output."""
    from aifinops.exporters.gpu.aggregate import GPUCollector

    rig = Rig(sock)
    rig.poll()
    rig.poll()
    produced = {
        (s.name, tuple(sorted(s.labels.items())))
        for family in GPUCollector(rig.aggregator).collect()
        for s in family.samples
    }
    doc = yaml.safe_load((REPO / "tests" / "rules" / "podresources.test.yaml").read_text())
    fed = []
    for test in doc["tests"]:
        for series in test["input_series"]:
            name, labels = _series_labels(series["series"])
            labels.pop("job")
            if labels["gpu"] in ("1", "2"):
                fed.append((name, tuple(sorted(labels.items()))))
    assert len(fed) == 15
    missing = [f for f in fed if f not in produced]
    assert missing == []


def test_the_allocation_is_read_every_refresh_seconds_and_a_new_holder_follows(sock):
    """`List` at most every 5 s (a kubelet request and ~250 us of the exporter's CPU each); a
    GPU handed to another pod is charged to it from the next read on."""
    answer = {"now": node_allocation()}
    kubelet = KubeletSimulator(sock, lambda: answer["now"])
    kubelet.start()
    try:
        rig = Rig(sock, step=1)
        for _ in range(10):  # t = 0..9 s
            rig.poll()
        assert kubelet.calls == 2  # t = 0 and t = 5
        assert rig.holders(1) == {("notebooks", "nb-0")}
        moved = node_allocation()
        moved.pod_resources[1].name = "nb-1"  # the notebook pod replaced by another
        answer["now"] = moved
        rig.poll()  # t = 10: read again
        assert kubelet.calls == 3
        assert rig.holders(1) == {("notebooks", "nb-1")}
        snap = rig.aggregator.snapshot()
        # The nine intervals up to t = 9 went to nb-0, the one ending at t = 10 to nb-1 (read at
        # the end of its interval, like utilisation).
        assert snap.money_for(gpu="1", pod="nb-0")[0] == usd(9)
        assert snap.money_for(gpu="1", pod="nb-1")[0] == usd(1)
    finally:
        kubelet.stop()


def test_the_exporter_serves_the_simulated_fleet_through_its_kubelet_and_reads_it_back(
    tmp_path, caplog
):
    from aifinops.exporters.config import Config
    from aifinops.exporters.gpu.app import build_gpu_exporter
    from aifinops.exporters.runtime.config import load_config

    sock = tmp_path / "kubelet.sock"
    path = tmp_path / "c.yaml"
    path.write_text(
        "gpu:\n"
        f"  pod_resources_socket: {sock}\n"
        "  namespace_teams: {research: science}\n"
        "  simulator: {nodes: 1, gpus_per_node: 3, patterns: [busy, unallocated, allocated],"
        " serve_pod_resources: true}\n"
    )
    config = load_config(Config, path, environ={}, overrides={"gpu.source": "simulated"})
    clock, health = Clock(), CollectorHealth()
    with caplog.at_level(logging.INFO):
        exporter = build_gpu_exporter(config, health, clock=clock, wall=clock)
    assert "GPU holders: the kubelet's PodResources allocation" in caplog.text
    assert isinstance(exporter.source, AllocatedSource)
    assert exporter.kubelet is not None and exporter.components[0] is exporter.kubelet
    exporter.kubelet.start()
    try:
        for _ in range(2):
            assert exporter.poller.poll_once()
            clock.now += 1
        assert health.snapshot()["podresources"].success is True
        held = {
            s.sample.gpu: {h[1] for h in s.holders} for s in exporter.aggregator.snapshot().gpus
        }
        # GPU 2 runs no process (process attribution sees nobody) but the kubelet allocated it.
        assert held == {0: {"llm-finetune-0-0"}, 1: set(), 2: {"notebook-0-2"}}
        cost, idle = exporter.aggregator.snapshot().money_for(gpu="2", team="science")
        assert cost > 0 and idle == cost
    finally:
        exporter.kubelet.stop()


@pytest.mark.parametrize(
    ("environ", "socket_setting", "allocated"),
    [
        ({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, None, True),  # in a pod: missing socket fails
        ({}, None, False),  # outside Kubernetes, no socket: process attribution
        ({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, "", False),  # turned off
    ],
    ids=["in-a-pod", "outside", "off"],
)
def test_which_holders_the_nvml_source_uses(tmp_path, environ, socket_setting, allocated):
    from aifinops.exporters.config import Config
    from aifinops.exporters.gpu.app import build_gpu_exporter
    from aifinops.exporters.runtime.config import load_config

    overrides = {
        "gpu.source": "nvml",
        "gpu.pod_resources_socket": str(tmp_path / "absent.sock")
        if socket_setting is None
        else socket_setting,
    }
    config = load_config(Config, None, environ={}, overrides=overrides)
    exporter = build_gpu_exporter(config, CollectorHealth(), environ=environ)
    assert isinstance(exporter.source, AllocatedSource) is allocated
    assert exporter.source.name == "nvml"


def test_a_refresh_interval_out_of_range_is_refused_by_path():
    from aifinops.exporters.config import Config
    from aifinops.exporters.runtime.config import ConfigError, load_config

    with pytest.raises(ConfigError) as err:
        load_config(Config, None, environ={"AIFINOPS_GPU_POD_RESOURCES_REFRESH_SECONDS": "0"})
    assert any("gpu.pod_resources_refresh_seconds" in p for p in err.value.problems)
