"""The dcgm source reads real dcgm-exporter expositions (old `Hostname` and new `hostname` label
styles, with and without pod labels, time-slicing), and a dcgm-exporter that is down or answers
garbage makes the collector fail cleanly while the exporter keeps serving."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from aifinops.cli.demo.stack import free_port
from aifinops.exporters.gpu.aggregate import GPUAggregator, GPUCollector
from aifinops.exporters.gpu.dcgm import DCGMSource, parse_dcgm
from aifinops.exporters.gpu.model import SourceError
from aifinops.exporters.gpu.prices import GPUPricer, load_price_table
from aifinops.exporters.gpu.sampler import GPUSampler
from aifinops.exporters.runtime.http import HTTPServer
from aifinops.exporters.runtime.poll import Poller
from aifinops.exporters.runtime.selfmetrics import CollectorHealth, SelfCollector
from support.static_http import StaticHTTPServer

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "gpu"
OLD = (FIXTURES / "dcgm-3.x-Hostname-pods.prom").read_text()
NEW = (FIXTURES / "dcgm-4.x-hostname-nopods.prom").read_text()
SHARED = (FIXTURES / "dcgm-4.x-hostname-pods-timeslicing.prom").read_text()
MIB = 1 << 20


def test_old_style_hostname_label_with_pods():
    snap = parse_dcgm(OLD, node=None, default_node="fallback")
    g0, g1 = snap.gpus
    assert (g0.node, g0.index, g0.uuid, g0.model) == (
        "nvidia-dcgm-exporter-ml2wh",
        0,
        "GPU-e1200d64-e918-4277-cad9-75da90b9f618",
        "Tesla T4",
    )
    assert g0.utilization_ratio == 0.97
    assert g0.memory_used_bytes == 251 * MIB
    assert g0.memory_total_bytes == (251 + 15109) * MIB
    assert g0.power_watts == pytest.approx(69.417)
    assert [(h.namespace, h.pod, h.container) for h in g0.holders] == [
        ("default", "dcgmproftester", "dcgmproftester11")
    ]
    # Empty pod labels (a free GPU under dcgm-exporter's Kubernetes mode) are no holder.
    assert g1.holders == () and g1.utilization_ratio == 0.0


def test_the_configured_node_name_wins_over_the_hostname_label():
    # Old dcgm-exporters report their own pod's name as Hostname unless NODE_NAME is set.
    snap = parse_dcgm(OLD, node="ip-10-0-1-5.ec2.internal", default_node="fallback")
    assert {g.node for g in snap.gpus} == {"ip-10-0-1-5.ec2.internal"}


def test_new_style_hostname_label_without_pods_and_reserved_memory():
    g0, g1 = parse_dcgm(NEW, node=None, default_node="fallback").gpus
    assert (g0.node, g0.model) == ("gpu-node-7", "NVIDIA H100 80GB HBM3")
    assert g0.utilization_ratio == 0.88  # DCGM_FI_DEV_GPU_UTIL wins over the profiling ratio
    assert g0.memory_total_bytes == (60559 + 20011 + 511) * MIB
    assert g0.holders == () and g1.holders == ()


def test_time_slicing_series_become_several_holders_with_their_pod_labels():
    g0, g1, g2 = parse_dcgm(SHARED, node=None, default_node="fallback").gpus
    assert g0.node == "ip-10-0-3-17.ec2.internal"
    assert [(h.namespace, h.pod, h.container) for h in g0.holders] == [
        ("ml-training", "llama-ft-7d9c8-0", "trainer"),
        ("research", "notebook-ana-0", "notebook"),
    ]
    assert g0.holders[0].labels == {"team": "nlp"}  # a pod label dcgm-exporter copied
    assert g0.holders[1].labels == {}
    assert [h.pod for h in g1.holders] == ["chat-api-6f7b9-x2kq"]
    assert g2.holders == ()
    assert g1.utilization_ratio == 1.0


def test_the_profiling_ratio_stands_in_when_gpu_util_is_not_exported():
    text = "\n".join(line for line in NEW.splitlines() if "DCGM_FI_DEV_GPU_UTIL" not in line)
    g0, _ = parse_dcgm(text, node=None, default_node="x").gpus
    assert g0.utilization_ratio == pytest.approx(0.872341)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("<html><body><h1>404 Not Found</h1></body></html>", "not a Prometheus text exposition"),
        ("# TYPE node_load1 gauge\nnode_load1 0.42\n", "no GPU in the exposition"),
        ("", "no GPU in the exposition"),
        ('DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-1"} fast\n', "not a Prometheus text exposition"),
    ],
)
def test_garbage_is_a_source_error(body, reason):
    with pytest.raises(SourceError, match=reason):
        parse_dcgm(body, node=None, default_node="x")


@pytest.fixture
def dcgm() -> Iterator[StaticHTTPServer]:
    """A dcgm-exporter's /metrics as a real HTTP server (the 4.x fixture until a test changes it)."""
    server = StaticHTTPServer(NEW)
    yield server
    server.close()


def test_fetch_over_http(dcgm):
    snap = DCGMSource(dcgm.url, node=None, default_node="x").fetch()
    assert [g.uuid for g in snap.gpus] == [
        "GPU-3f1c2a9b-77d0-4e8a-9b51-0c6d2e4f8a11",
        "GPU-a8e4b0c2-19f5-4d3e-8f26-5b7c9d1e2f33",
    ]


def test_down_error_status_and_garbage_fail_with_the_reason(dcgm):
    source = DCGMSource(dcgm.url, node=None, default_node="x", timeout_seconds=1)
    dcgm.status = 503
    with pytest.raises(SourceError, match="HTTP 503"):
        source.fetch()
    dcgm.status, dcgm.body = 200, b"\xff\xfe not text"
    with pytest.raises(SourceError, match="not UTF-8"):
        source.fetch()
    closed = DCGMSource(f"http://127.0.0.1:{free_port()}/metrics", node=None, default_node="x")
    with pytest.raises(SourceError, match="unreachable"):
        closed.fetch()


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.status == 200
        return resp.read().decode()


def test_a_failing_dcgm_exporter_sets_collector_success_0_and_the_exporter_keeps_serving(dcgm):
    now = [0.0]
    health = CollectorHealth()
    agg = GPUAggregator(gpu_ttl_seconds=3, clock=lambda: now[0])
    sampler = GPUSampler(agg, GPUPricer(load_price_table()), clock=lambda: now[0])
    source = DCGMSource(dcgm.url, node=None, default_node="x", timeout_seconds=1)
    poller = Poller("dcgm", source, 1.0, health, on_snapshot=sampler.on_snapshot)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SelfCollector(health))
    registry.register(GPUCollector(agg))
    server = HTTPServer("127.0.0.1:0", registry)
    server.start()
    try:
        for t in (0.0, 1.0):
            now[0] = t
            assert poller.poll_once()
        text = _scrape(f"{server.url}/metrics")
        assert 'aifinops_collector_success{collector="dcgm"} 1.0' in text
        assert 'aifinops_gpu_utilization_ratio{node="gpu-node-7",gpu="0"' in text

        dcgm.body = b"<html>oops</html>"
        for t in (2.0, 3.0, 4.0, 5.0):
            now[0] = t
            assert not poller.poll_once()
        text = _scrape(f"{server.url}/metrics")
        assert 'aifinops_collector_success{collector="dcgm"} 0.0' in text
        # Values no longer measured are not exported; the money counted so far still is.
        assert "aifinops_gpu_utilization_ratio{" not in text
        assert "aifinops_gpu_cost_usd_total{" in text

        dcgm.body = NEW.encode()
        now[0] = 6.0
        assert poller.poll_once()
        assert 'aifinops_collector_success{collector="dcgm"} 1.0' in _scrape(
            f"{server.url}/metrics"
        )
    finally:
        server.stop()
