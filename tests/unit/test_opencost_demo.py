"""The demo's OpenCost endpoint: its exposition uses OpenCost's exact family names, help texts and
label sets (those of the fixture taken from OpenCost's metrics.go), the GPU exporter's OpenCost
source reads it, and the server serves it at /metrics."""

from __future__ import annotations

import urllib.request
from decimal import Decimal
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from aifinops.cli.demo.opencost import OpenCostDemo, exposition
from aifinops.exporters.gpu.opencost import parse_opencost

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "opencost" / "metrics.prom"


def _shape(text: str) -> dict[str, tuple[str, set[frozenset[str]]]]:
    return {
        f.name: (f.documentation, {frozenset(s.labels) for s in f.samples})
        for f in text_string_to_metric_families(text)
    }


def test_the_demo_exposition_has_opencosts_names_help_and_labels():
    demo, fixture = _shape(exposition()), _shape(FIXTURE.read_text())
    for name, (help_text, label_sets) in demo.items():
        assert name in fixture, name
        assert help_text == fixture[name][0], name
        assert label_sets == fixture[name][1], name
    assert {
        "container_cpu_allocation",
        "container_memory_allocation_bytes",
        "container_gpu_allocation",
        "node_cpu_hourly_cost",
        "node_ram_hourly_cost",
        "node_gpu_hourly_cost",
        "kubecost_node_is_spot",
        "pod_pvc_allocation",
        "pv_hourly_cost",
    } <= set(demo)


def test_the_demo_prices_one_gpu_node_and_leaves_the_other_to_the_table():
    prices = parse_opencost(exposition(), 0)
    assert {n: p.usd_per_hour for n, p in prices.nodes.items()} == {"sim-node-0": Decimal("6.88")}


def test_the_demo_endpoint_serves_the_exposition():
    server = OpenCostDemo()
    server.start()
    try:
        with urllib.request.urlopen(server.url, timeout=5) as resp:
            assert resp.read().decode() == exposition()
    finally:
        server.stop()
