"""GPU exporter costs: sampling per GPU per interval for the simulated and dcgm sources, and
`/metrics` for 512 GPUs with holders.

- Sampling: a poll round is `fetch()` plus the sampler (price, team, exact money in the aggregator);
  the figure is the round's time divided by its GPUs. The peer is the same round accumulating money
  as floats (what exactness costs).
- dcgm: a dcgm-exporter exposition (4.x format, 8 GPUs per node with pods, as one exporter per node
  serves) fetched over loopback HTTP, parsed and sampled; and one exposition with all 512 GPUs.
- PodResources: one node of 8 GPUs whose holders come from a real kubelet PodResources gRPC server
  on a unix socket (the kubelet simulator): whole GPUs, a GPU allocated with no process, two
  GPUs time-sliced to 3 and 4 pods, two MIG GPUs (four and two MIG devices, slices free) and a DRA
  claim. A round is the GPU fetch, the allocation (a `List` every 10 s, as the exporter's
  default `gpu.pod_resources_refresh_seconds`, against a kubelet simulator in its own process),
  the exact split and the sampler; figures are means, so the `List` rounds count, in wall-clock
  and CPU time. Peers: 8 simulated GPUs with one process holder each (the first figure above),
  and this node's readings with the same holders given by process attribution (equal split).
- `/metrics`: 512 GPUs (64 nodes x 8) after pods churned (each GPU held by 4 pods in turn within the
  retention window), scraped over HTTP, with prometheus_client's `generate_latest` on the same
  registry as the peer.

    .venv/bin/python bench/gpu.py [--gpus 512] [--rounds 30] [--scrapes 20]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, generate_latest

from aifinops.exporters.events.gpu import GPUSample
from aifinops.exporters.gpu.aggregate import GPUAggregator, GPUCollector
from aifinops.exporters.gpu.allocation import AllocatedSource
from aifinops.exporters.gpu.dcgm import DCGMSource
from aifinops.exporters.gpu.model import GPUSnapshot, MIGDevice
from aifinops.exporters.gpu.podresources.client import PodResourcesClient, PodResourcesError
from aifinops.exporters.gpu.podresources.simulator import claim, container, list_response, pod
from aifinops.exporters.gpu.prices import GPUPricer, load_price_table
from aifinops.exporters.gpu.sampler import GPUSampler
from aifinops.exporters.gpu.simulated import SimulatedSource
from aifinops.exporters.runtime.http import HTTPServer
from aifinops.exporters.runtime.poll import Poller
from aifinops.exporters.runtime.selfmetrics import CollectorHealth


class Clock:
    """Sampling time advances one interval per round, so every round charges a real interval."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FloatAggregator(GPUAggregator):
    """The peer: the same bookkeeping with float money (drifts; here only to price exactness)."""

    def _money_of(self, sample: GPUSample):  # type: ignore[override]
        if sample.hourly_cost_usd is None:
            return None, None
        cost = (
            float(sample.hourly_cost_usd) * float(sample.interval_seconds) / 3600 / sample.holders
        )
        return cost, cost * (1.0 - sample.utilization_ratio)


def _round_times(
    poll: Callable[[], bool], clock: Clock, rounds: int, timer: Callable[[], float] | None = None
) -> list[float]:
    """Each round's time on `timer` (wall clock by default)."""
    timer = timer or time.perf_counter
    poll()  # first read: nothing to charge yet
    times = []
    for _ in range(rounds):
        clock.now += 1.0
        start = timer()
        assert poll(), "fetch failed"
        times.append(timer() - start)
    return times


class DiscardSink:
    """A sink that is not NullSink, so the sampler builds every event as it would for Kafka."""

    def publish(self, topic, key, event, headers) -> None:
        pass


def _sampling(
    source_factory,
    gpus: int,
    rounds: int,
    aggregator_cls=GPUAggregator,
    sink=None,
    stat=None,
    timer=None,
) -> float:
    """Median (or `stat` of the rounds) microseconds per GPU per interval, on `timer`."""
    clock = Clock()
    agg = aggregator_cls(clock=clock)
    sampler = GPUSampler(agg, GPUPricer(load_price_table()), sink=sink, clock=clock, wall=clock)
    source = source_factory(clock)
    poller = Poller("bench", source, 1.0, CollectorHealth(), on_snapshot=sampler.on_snapshot)
    times = _round_times(poller.poll_once, clock, rounds, timer)
    return (stat or statistics.median)(times) / gpus * 1e6


def simulated_factory(gpus: int):
    nodes = max(1, gpus // 8)
    return lambda clock: SimulatedSource(
        nodes=nodes,
        gpus_per_node=min(8, gpus),
        patterns=("busy", "bursty", "idle", "crashed", "busy", "busy", "idle", "unallocated"),
        clock=clock,
    )


class MIGNode:
    """Eight simulated GPUs; GPUs 5 and 6 are MIG-enabled (7 compute slices each)."""

    name = "simulated"
    MIG = {
        5: (("3g.40gb", 3), ("2g.20gb", 2), ("1g.10gb", 1), ("1g.10gb", 1)),
        6: (("3g.40gb", 3), ("3g.40gb", 3)),
    }

    def __init__(self, clock: Clock) -> None:
        self._sim = simulated_factory(8)(clock)

    def fetch(self) -> GPUSnapshot:
        gpus = []
        for g in self._sim.fetch().gpus:
            if g.index in self.MIG:
                devices = tuple(
                    MIGDevice(f"MIG-{g.index}-{i}-{g.uuid[4:]}", profile, slices)
                    for i, (profile, slices) in enumerate(self.MIG[g.index])
                )
                g = replace(g, mig_devices=devices, mig_slices=7)
            gpus.append(g)
        return GPUSnapshot(tuple(gpus))

    def allocation(self):
        """The kubelet's view of the node: every sharing mechanism at once."""
        uuid = [g.uuid for g in self._sim.fetch().gpus]

        def gpu(ns: str, name: str, resource: str, *ids: str):
            return pod(ns, name, container("main", {resource: list(ids)}))

        def mig(index: int, i: int) -> str:
            return f"MIG-{index}-{i}-{uuid[index][4:]}"

        return list_response(
            [
                gpu("ml", "train-0", "nvidia.com/gpu", uuid[0]),
                gpu("ml", "train-1", "nvidia.com/gpu", uuid[1]),
                gpu("research", "nb-0", "nvidia.com/gpu", uuid[2]),  # no process
                gpu("chat", "api-0", "nvidia.com/gpu.shared", f"{uuid[3]}::0", f"{uuid[3]}::3"),
                gpu("chat", "api-1", "nvidia.com/gpu.shared", f"{uuid[3]}::1"),
                gpu("chat", "api-2", "nvidia.com/gpu.shared", f"{uuid[3]}::2"),
                *(
                    gpu("embed", f"e-{i}", "nvidia.com/gpu.shared", f"{uuid[4]}::{i}")
                    for i in range(4)
                ),
                gpu("ml", "ft-0", "nvidia.com/mig-3g.40gb", mig(5, 0)),
                gpu("ml", "ft-1", "nvidia.com/mig-2g.20gb", mig(5, 1)),
                gpu("ml", "ft-2", "nvidia.com/mig-1g.10gb", mig(5, 2)),
                gpu("ml", "ft-3", "nvidia.com/mig-3g.40gb", mig(6, 0)),
                pod("dra", "infer-0", container("main", claims=[claim("gpu-7")])),
            ]
        )


class SameHolders:
    """The peer: the same node's readings with the same holders as process attribution would
    give them (equal split, no PodResources)."""

    name = "simulated"

    def __init__(self, node: MIGNode, holders: dict) -> None:
        self._node = node
        self._holders = holders

    def fetch(self) -> GPUSnapshot:
        return GPUSnapshot(
            tuple(replace(g, holders=self._holders[g.uuid]) for g in self._node.fetch().gpus)
        )


def _best_of(runs: int, measure: Callable[[], tuple[float, float]]) -> tuple[float, float]:
    """Each figure's lowest over `runs` measurements."""
    results = [measure() for _ in range(runs)]
    return min(r[0] for r in results), min(r[1] for r in results)


# The kubelet runs in a process of its own, as on a node: its work is not the exporter's.
_KUBELET = """
import sys, time
from aifinops.exporters.gpu.podresources import api_pb2
from aifinops.exporters.gpu.podresources.simulator import KubeletSimulator
answer = api_pb2.ListPodResourcesResponse.FromString(open(sys.argv[2], "rb").read())
kubelet = KubeletSimulator(sys.argv[1], lambda: answer)
kubelet.start()
time.sleep(3600)
"""


def podresources_sampling(rounds: int, sink=None, timer=None) -> tuple[float, float]:
    """Mean microseconds per GPU per interval for the 8-GPU node read through PodResources (the
    mean, so the `List` every 10 rounds counts), and for the peer with the same holders."""
    tmp = tempfile.mkdtemp(prefix="aifinops-bench-")
    answer = f"{tmp}/answer.pb"
    with open(answer, "wb") as f:
        f.write(MIGNode(Clock()).allocation().SerializeToString())
    kubelet = subprocess.Popen([sys.executable, "-c", _KUBELET, f"{tmp}/kubelet.sock", answer])
    client = PodResourcesClient(f"{tmp}/kubelet.sock")
    deadline = time.monotonic() + 30
    while True:
        try:
            client.list()
            break
        except PodResourcesError:
            if time.monotonic() > deadline:
                kubelet.kill()
                raise
            time.sleep(0.1)
    sources: list[AllocatedSource] = []

    def factory(clock: Clock) -> AllocatedSource:
        source = AllocatedSource(
            MIGNode(clock),
            PodResourcesClient(f"{tmp}/kubelet.sock"),
            CollectorHealth(),
            clock=clock,
        )
        sources.append(source)
        return source

    try:
        allocated = _sampling(factory, 8, rounds, sink=sink, stat=statistics.mean, timer=timer)
        holders = {g.uuid: g.holders for g in sources[0].fetch().gpus}
        peer = _sampling(
            lambda clock: SameHolders(MIGNode(clock), holders),
            8,
            rounds,
            sink=sink,
            stat=statistics.mean,
            timer=timer,
        )
        return allocated, peer
    finally:
        kubelet.terminate()
        kubelet.wait()


def dcgm_exposition(nodes: int, gpus_per_node: int) -> bytes:
    """A dcgm-exporter 4.x /metrics: the default counters, one pod per GPU (one in 8 free)."""
    fields = [
        ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz).", "1980"),
        ("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz).", "2619"),
        ("DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C).", "0"),
        ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).", "61"),
        ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", "612.345000"),
        (
            "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
            "counter",
            "Total energy (in mJ).",
            "918273645512",
        ),
        ("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "Total number of PCIe retries.", "0"),
        ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", "88"),
        ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %).", "41"),
        ("DCGM_FI_DEV_ENC_UTIL", "gauge", "Encoder utilization (in %).", "0"),
        ("DCGM_FI_DEV_DEC_UTIL", "gauge", "Decoder utilization (in %).", "0"),
        ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered.", "0"),
        ("DCGM_FI_DEV_FB_FREE", "gauge", "Frame buffer memory free (in MiB).", "20011"),
        ("DCGM_FI_DEV_FB_USED", "gauge", "Frame buffer memory used (in MiB).", "60559"),
        ("DCGM_FI_DEV_FB_RESERVED", "gauge", "Frame buffer memory reserved (in MiB).", "511"),
        (
            "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
            "gauge",
            "Ratio of time the graphics engine is active.",
            "0.87",
        ),
    ]
    lines: list[str] = []
    for name, typ, help_text, value in fields:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {typ}"]
        for n in range(nodes):
            for i in range(gpus_per_node):
                pod = "" if i == 7 else f"job-{n}-{i}"
                labels = (
                    f'gpu="{i}",UUID="GPU-{n:08x}-0000-4000-8000-{i:012x}",pci_bus_id="00000000:{i:02X}:00.0",'
                    f'device="nvidia{i}",modelName="NVIDIA H100 80GB HBM3",hostname="node-{n}",'
                    f'DCGM_FI_DRIVER_VERSION="570.172.08",container="{"main" if pod else ""}",'
                    f'namespace="{"ml" if pod else ""}",pod="{pod}"'
                )
                lines.append(f"{name}{{{labels}}} {value}")
    return ("\n".join(lines) + "\n").encode()


class Serve:
    """A loopback HTTP server answering every GET with `body`."""

    def __init__(self, body: bytes) -> None:
        # One write per response, as Go's net/http does: separate header and body writes would
        # measure the kernel's delayed-ACK wait (about 40 ms), not the exporter.
        response = (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self.wfile.write(response)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/metrics"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def dcgm_factory(url: str):
    return lambda clock: DCGMSource(url, node=None, default_node="bench")


def churned_aggregator(gpus: int, pods_per_gpu: int) -> GPUAggregator:
    """512 GPUs whose holders changed `pods_per_gpu` times within the retention window."""
    clock = Clock()
    agg = GPUAggregator(clock=clock, gpu_ttl_seconds=1e9, retention_seconds=1e9)
    price = Decimal("6.88")
    for round_ in range(pods_per_gpu):
        for g in range(gpus):
            node, index = f"node-{g // 8}", g % 8
            agg.apply(
                GPUSample(
                    node=node,
                    gpu=index,
                    uuid=f"GPU-{g // 8:08x}-0000-4000-8000-{index:012x}",
                    model="NVIDIA H100 80GB HBM3",
                    utilization_ratio=0.37,
                    memory_used_bytes=40 << 30,
                    memory_total_bytes=80 << 30,
                    power_watts=400.0,
                    hourly_cost_usd=price,
                    interval_seconds=Decimal(1),
                    namespace=f"team-{g % 16}",
                    pod=f"job-{g}-{round_}",
                    container="main",
                    team=f"team-{g % 16}",
                ),
                time=float(round_),
            )
    return agg


def scrape_ms(url: str, scrapes: int) -> tuple[float, int]:
    host, port = url.split("//")[1].split("/")[0].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    times, size = [], 0
    for _ in range(scrapes):
        start = time.perf_counter()
        conn.request("GET", "/metrics")
        body = conn.getresponse().read()
        times.append(time.perf_counter() - start)
        size = len(body)
    conn.close()
    return statistics.median(times) * 1e3, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--scrapes", type=int, default=20)
    args = parser.parse_args()
    gpus = args.gpus

    print("== sampling cost per GPU per interval (median of rounds; fetch + price + exact money)")
    for n in (8, gpus):
        exact = _sampling(simulated_factory(n), n, args.rounds)
        floats = _sampling(simulated_factory(n), n, args.rounds, FloatAggregator)
        print(
            f"simulated, {n:4d} GPUs: {exact:7.1f} us/GPU/interval "
            f"(float-money peer {floats:6.1f} us, exact/float {exact / floats:4.2f}x)"
        )
    # Means (a List every 10th round counts), the best of 5 runs (other load on the machine only
    # ever adds time); wall clock, and this process's CPU time (waiting for the kubelet is not
    # the exporter's work).
    for label, timer in (("wall", time.perf_counter), ("CPU", time.process_time)):
        plain = min(
            _sampling(simulated_factory(8), 8, args.rounds * 10, stat=statistics.mean, timer=timer)
            for _ in range(5)
        )
        allocated, peer = _best_of(
            5, lambda t=timer: podresources_sampling(args.rounds * 10, timer=t)
        )
        print(
            f"PodResources node, 8 GPUs (whole, no process, time-sliced, MIG, DRA; List every 10 s), "
            f"{label}: {allocated:6.1f} us/GPU/interval vs {plain:6.1f} us for 8 simulated GPUs "
            f"with process holders ({allocated / plain:4.2f}x) and {peer:6.1f} us for the same "
            f"holders without PodResources ({allocated / peer:4.2f}x)"
        )
    allocated, peer = _best_of(
        3, lambda: podresources_sampling(args.rounds * 10, sink=DiscardSink())
    )
    print(
        f"the same, building the Kafka events too, wall: {allocated:6.1f} us/GPU/interval "
        f"(same holders without PodResources {peer:6.1f} us)"
    )
    events = _sampling(simulated_factory(gpus), gpus, args.rounds, sink=DiscardSink())
    print(
        f"simulated, {gpus:4d} GPUs, building the Kafka events too: {events:7.1f} us/GPU/interval"
    )
    for nodes, per_node in ((1, 8), (gpus // 8, 8)):
        body = dcgm_exposition(nodes, per_node)
        server = Serve(body)
        try:
            n = nodes * per_node
            exact = _sampling(dcgm_factory(server.url), n, args.rounds)
            floats = _sampling(dcgm_factory(server.url), n, args.rounds, FloatAggregator)
            print(
                f"dcgm over HTTP, {n:4d} GPUs ({len(body) / 1024:.0f} KiB exposition): "
                f"{exact:7.1f} us/GPU/interval (float-money peer {floats:6.1f} us, "
                f"exact/float {exact / floats:4.2f}x)"
            )
        finally:
            server.close()

    print(f"== /metrics, {gpus} GPUs with holders (4 pods per GPU within retention)")
    agg = churned_aggregator(gpus, 4)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GPUCollector(agg))
    snap = agg.snapshot()
    series = 5 * len(snap.gpus) + sum(len(g.holders) for g in snap.gpus) + 2 * len(snap.money)
    series += sum(1 for g in snap.gpus if g.sample.hourly_cost_usd is not None)
    server = HTTPServer("127.0.0.1:0", registry)
    server.start()
    try:
        scrape, size = scrape_ms(server.url + "/metrics", args.scrapes)
    finally:
        server.stop()
    stock = []
    for _ in range(args.scrapes):
        start = time.perf_counter()
        generate_latest(registry)
        stock.append(time.perf_counter() - start)
    stock_ms = statistics.median(stock) * 1e3
    print(
        f"{series} series, {size / 1024:.0f} KiB: {scrape:.1f} ms per scrape over HTTP "
        f"(generate_latest on the same registry {stock_ms:.1f} ms, ratio {scrape / stock_ms:.2f}x)"
    )
    snapshot_times = []
    for _ in range(args.scrapes):
        start = time.perf_counter()
        agg.snapshot()
        snapshot_times.append(time.perf_counter() - start)
    print(f"aggregator snapshot alone: {statistics.median(snapshot_times) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
