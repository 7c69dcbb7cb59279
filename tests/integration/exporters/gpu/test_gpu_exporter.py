"""`aifinops-gpu-exporter` end to end: the real daemon for each source, scraped over HTTP and by a real
Prometheus; the simulator's control hook; failing sources keep the daemon serving."""

from __future__ import annotations

import json
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from aifinops.cli.demo.stack import Process, free_port, http_ok, wait_until
from support.static_http import StaticHTTPServer

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent / "aifinops-gpu-exporter"
FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "gpu"


def _samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


class Daemon:
    """The exporter as a child process on a free port."""

    def __init__(self, tmp: Path, args: list[str], config: str = "") -> None:
        self.port = free_port()
        tmp.mkdir(parents=True, exist_ok=True)
        cfg = tmp / "gpu.yml"
        cfg.write_text(config or "{}\n")
        self.process = Process(
            "gpu-exporter",
            [
                str(BIN),
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--config.file={cfg}",
                "--log.level=debug",
                *args,
            ],
            tmp,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process.start()
        try:
            wait_until(lambda: http_ok(f"{self.url}/-/healthy"), 20, "gpu exporter up")
        except Exception:
            raise AssertionError(self.process.log_tail()) from None

    def scrape(self) -> list[tuple[str, dict[str, str], float]]:
        self.process.check_alive()
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as resp:
            return _samples(resp.read().decode())

    def wait_for(self, what: str, pred: Callable[[list], bool], timeout: float = 20) -> list:
        found: list = []

        def check() -> bool:
            nonlocal found
            found = self.scrape()
            return pred(found)

        try:
            wait_until(check, timeout, what, interval=0.2)
        except Exception:
            raise AssertionError(f"{what}\n{self.process.log_tail()}") from None
        return found


@pytest.fixture
def daemon(tmp_path) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def start(args: list[str], config: str = "") -> Daemon:
        d = Daemon(tmp_path / f"d{len(started)}", args, config)
        d.start()
        started.append(d)
        return d

    yield start
    for d in started:
        d.process.stop()


def _values(samples, name: str, **labels: str) -> list[float]:
    return [
        v
        for n, lbls, v in samples
        if n == name and all(lbls.get(k) == x for k, x in labels.items())
    ]


SIM = """
gpu:
  interval_seconds: 0.2
  simulator: {nodes: 2, gpus_per_node: 3}
"""


def test_simulated_daemon_exports_every_gpu_family_and_obeys_the_control_hook(daemon):
    d = daemon(["--source=simulated"], SIM)
    samples = d.wait_for(
        "six GPUs with money", lambda s: len(_values(s, "aifinops_gpu_cost_usd_total")) == 6
    )
    assert len(_values(samples, "aifinops_gpu_info")) == 6
    assert _values(samples, "aifinops_collector_success", collector="simulated") == [1.0]
    # The catalogue prices the simulated H100s.
    assert set(_values(samples, "aifinops_gpu_hourly_cost_usd")) == {6.88}
    # Patterns in turn: sim-node-1 GPU 0 is the 4th GPU, unallocated: no allocation, empty holder.
    assert _values(samples, "aifinops_gpu_allocated", node="sim-node-1", gpu="0") == []
    assert _values(samples, "aifinops_gpu_cost_usd_total", node="sim-node-1", gpu="0", pod="")
    held = [lbls for n, lbls, _ in samples if n == "aifinops_gpu_allocated"]
    assert len(held) == 5 and all(lbls["pod"] and lbls["namespace"] for lbls in held)

    # The demo's hook: leave sim-node-0 GPU 0 (busy) idle from now on.
    req = urllib.request.Request(
        f"{d.url}/-/simulator",
        data=json.dumps({"node": "sim-node-0", "gpu": 0, "pattern": "idle"}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert json.loads(resp.read())["pattern"] == "idle"
    d.wait_for(
        "sim-node-0 GPU 0 idle",
        lambda s: (
            _values(s, "aifinops_gpu_utilization_ratio", node="sim-node-0", gpu="0")
            in ([0.0], [0.01], [0.02])
        ),
    )
    bad = urllib.request.Request(
        f"{d.url}/-/simulator", data=b'{"node": "nope", "gpu": 0, "pattern": "idle"}', method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(bad, timeout=5)
    assert err.value.code == 400


def test_nvml_without_a_gpu_reports_collector_failure_and_keeps_serving(daemon):
    pytest.importorskip("pynvml")
    import pynvml

    try:
        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        pytest.skip("this machine has NVML: the no-driver path cannot be shown here")
    except pynvml.NVMLError:
        pass
    d = daemon(["--source=nvml"], "gpu: {interval_seconds: 0.2}\n")
    d.wait_for(
        "nvml collector failing",
        lambda s: _values(s, "aifinops_collector_success", collector="nvml") == [0.0],
    )
    wait_until(lambda: "fetch still failing" in d.process.log_tail(200), 10, "retries logged")
    assert http_ok(f"{d.url}/-/ready")
    log = d.process.log_tail(400)
    errors = [line for line in log.splitlines() if "level=error" in line]
    assert len(errors) == 1, log
    assert "NVML unavailable" in errors[0]


def test_dcgm_daemon_adds_money_to_a_dcgm_exporter_and_survives_it_failing(daemon):
    dcgm = StaticHTTPServer((FIXTURES / "dcgm-4.x-hostname-pods-timeslicing.prom").read_text())
    try:
        d = daemon(
            ["--source=dcgm", f"--dcgm.url={dcgm.url}"],
            "gpu:\n  interval_seconds: 0.2\n  namespace_teams: {research: science}\n",
        )
        samples = d.wait_for(
            "money per holder",
            lambda s: len(_values(s, "aifinops_gpu_cost_usd_total")) == 4,
        )
        node = "ip-10-0-3-17.ec2.internal"
        teams = {
            lbls["pod"]: lbls["team"]
            for n, lbls, _ in samples
            if n == "aifinops_gpu_cost_usd_total" and lbls["pod"]
        }
        assert teams == {
            "llama-ft-7d9c8-0": "nlp",  # the pod label dcgm-exporter copied
            "notebook-ana-0": "science",  # the namespace map
            "chat-api-6f7b9-x2kq": "platform",
        }
        assert _values(samples, "aifinops_gpu_hourly_cost_usd", node=node) == [3.43088125] * 3
        assert len(_values(samples, "aifinops_gpu_allocated", node=node, gpu="0")) == 2

        dcgm.body = b"<html><body>502 Bad Gateway</body></html>"
        samples = d.wait_for(
            "dcgm collector failing",
            lambda s: _values(s, "aifinops_collector_success", collector="dcgm") == [0.0],
        )
        assert http_ok(f"{d.url}/-/healthy")
    finally:
        dcgm.close()


def test_a_real_prometheus_scrapes_gpu_dollars_that_grow_with_time(daemon, prometheus_factory):
    d = daemon(["--source=simulated"], SIM)
    prom = prometheus_factory(
        scrape_configs=[
            {
                "job_name": "gpu",
                "scrape_interval": "1s",
                "static_configs": [{"targets": [f"127.0.0.1:{d.port}"]}],
            }
        ]
    )
    first = prom.wait_for("sum(aifinops_gpu_cost_usd_total)", timeout=30)
    later = prom.wait_for(
        "sum(aifinops_gpu_cost_usd_total)",
        lambda r: bool(r) and float(r[0]["value"][1]) > float(first[0]["value"][1]),
        timeout=30,
    )
    assert float(later[0]["value"][1]) > 0
    # Idle spend is part of total spend, per GPU and holder.
    worse = prom.query("aifinops_gpu_idle_cost_usd_total > aifinops_gpu_cost_usd_total")
    assert worse == []
    held = prom.query('count(aifinops_gpu_allocated{job="gpu"})')
    assert held[0]["value"][1] == "5"


def test_samples_published_by_the_exporter_arrive_on_kafka_keyed_by_gpu_with_the_counted_in_header(
    daemon, kafka_session_logs, topic_name, tmp_path
):
    from aifinops.exporters.events import GPU_SAMPLE_TYPE, parse_envelope, parse_gpu_sample
    from support.kafka_helpers import consume, create_topics

    bootstrap = kafka_session_logs.bootstrap
    topic = topic_name("gpu-utilization-events")
    create_topics(bootstrap, {topic: 10})
    d = daemon(
        ["--source=simulated", f"--kafka.bootstrap-servers={bootstrap}"],
        f"""
cluster: it-1
kafka: {{topics: {{gpu: {{name: {topic}, partitions: 10, retention_ms: 86400000}}}}}}
producer: {{spool_dir: {tmp_path / "spool"}}}
gpu:
  interval_seconds: 0.2
  simulator: {{nodes: 1, gpus_per_node: 3, patterns: [busy, unallocated, idle]}}
""",
    )
    # Every GPU over at least three intervals, acknowledged by the broker.
    samples = d.wait_for(
        "nine samples produced",
        lambda s: sum(_values(s, "aifinops_bridge_produced_total", topic=topic)) >= 9,
    )
    produced = int(sum(_values(samples, "aifinops_bridge_produced_total", topic=topic)))
    gpus = {lbls["uuid"]: lbls for n, lbls, _ in samples if n == "aifinops_gpu_info"}
    d.process.stop()

    records = consume(bootstrap, topic, produced, timeout=30)
    assert len(records) >= produced
    seen: dict[str, list] = {}
    for r in records:
        env = parse_envelope(json.loads(r.value), types=frozenset({GPU_SAMPLE_TYPE}))
        sample = parse_gpu_sample(env.data)
        assert r.key == f"{sample.node}/{sample.uuid}".encode()
        assert dict(r.headers) == {"aifinops-counted-in": b"it-1"}
        assert env.source == f"aifinops-gpu-exporter/it-1/{sample.node}"
        seen.setdefault(sample.uuid, []).append(sample)
    assert set(seen) == set(gpus)
    for uuid, got in seen.items():
        assert {s.gpu for s in got} == {int(gpus[uuid]["gpu"])}
        assert all(s.hourly_cost_usd is not None and s.interval_seconds > 0 for s in got)
    held = {uuid for uuid, got in seen.items() if all(s.pod for s in got)}
    assert len(held) == 2  # busy and idle are held; the unallocated GPU's samples carry no pod
    # One GPU's messages share a key, so they land on one partition, in order.
    for uuid in seen:
        parts = {r.partition for r in records if r.key.endswith(uuid.encode())}
        assert len(parts) == 1


ALLOCATED = """
gpu:
  interval_seconds: 0.2
  namespace_teams: {{research: science}}
  pod_resources_socket: {socket}
  simulator:
    nodes: 1
    gpus_per_node: 3
    patterns: [busy, unallocated, allocated]
    serve_pod_resources: {serve}
"""


def test_a_gpu_allocated_to_a_pod_without_a_process_is_charged_to_it_through_pod_resources(
    daemon, prometheus_factory
):
    """The simulator's fleet served as the kubelet's PodResources API and read back through the
    real gRPC client: GPU 2, allocated to research/notebook-0-2 with no process on it, is held by
    that pod and all its cost is the pod's idle cost; without the allocation nobody holds it."""
    sock = Path(tempfile.mkdtemp(prefix="aifinops-kubelet-")) / "kubelet.sock"
    d = daemon(["--source=simulated"], ALLOCATED.format(socket=sock, serve="true"))
    samples = d.wait_for(
        "GPU 2 held through the allocation",
        lambda s: _values(s, "aifinops_gpu_allocated", gpu="2", pod="notebook-0-2") == [1.0],
    )
    assert _values(samples, "aifinops_collector_success", collector="podresources") == [1.0]
    assert _values(samples, "aifinops_gpu_unresolved_devices") == [0.0, 0.0]
    assert "GPU holders: the kubelet's PodResources allocation" in d.process.log_tail(200)
    prom = prometheus_factory(
        scrape_configs=[
            {
                "job_name": "gpu",
                "scrape_interval": "1s",
                "static_configs": [{"targets": [f"127.0.0.1:{d.port}"]}],
            }
        ]
    )
    where = 'job="gpu", gpu="2", namespace="research", pod="notebook-0-2", team="science"'
    prom.wait_for(
        f"aifinops_gpu_idle_cost_usd_total{{{where}}} > 0",
        lambda r: bool(r),
        timeout=30,
    )
    # No process, 0 % utilised: every dollar the pod is charged for the GPU is idle.
    same = prom.query(
        f"aifinops_gpu_idle_cost_usd_total{{{where}}} == aifinops_gpu_cost_usd_total{{{where}}}"
    )
    assert len(same) == 1

    # The same fleet read through process attribution only (today's nvml behaviour): no holder.
    plain = daemon(
        ["--source=simulated"], ALLOCATED.format(socket=sock.parent / "x.sock", serve="false")
    )
    samples = plain.wait_for(
        "money for GPU 2",
        lambda s: bool(_values(s, "aifinops_gpu_cost_usd_total", gpu="2")),
    )
    assert _values(samples, "aifinops_gpu_allocated", gpu="2") == []
    assert _values(samples, "aifinops_gpu_cost_usd_total", gpu="2", pod="") != []
    assert _values(samples, "aifinops_collector_success", collector="podresources") == []
