"""The demo's OpenCost endpoint: its exposition uses OpenCost's exact family names, help texts and
label sets (those of the fixture taken from OpenCost's metrics.go), the GPU exporter's OpenCost
source reads it, its pod labels give each GPU pod the team the GPU exporter gives it, and the server
serves it at /metrics."""

from __future__ import annotations

import urllib.request
from decimal import Decimal
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from aifinops.cli.demo.opencost import CONTAINERS, OpenCostDemo, exposition
from aifinops.exporters.gpu.opencost import parse_opencost

FIXTURE = Path(__file__).resolve().parents[3] / "fixtures" / "opencost" / "metrics.prom"


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
        "kube_pod_labels",
    } <= set(demo)


def test_the_demo_gives_each_gpu_pod_the_labels_the_gpu_exporter_sees():
    from aifinops.cli.demo.demostack import demo_fleet

    fleet = demo_fleet()
    served = {
        (s.labels["namespace"], s.labels["pod"]): {
            k.removeprefix("label_"): v for k, v in s.labels.items() if k.startswith("label_")
        }
        for f in text_string_to_metric_families(exposition())
        if f.name == "kube_pod_labels"
        for s in f.samples
    }
    gpu_pods = {
        (ns, pod) for (ns, pod, _ctr, _node), (_cores, _gib, gpus) in CONTAINERS.items() if gpus
    }
    assert gpu_pods and gpu_pods <= served.keys()
    for ns, pod in gpu_pods:
        assert served[(ns, pod)] == dict(fleet.pod_labels(ns, pod)), (ns, pod)
    # Every pod OpenCost allocates has its labels (with or without a team) served.
    assert {(ns, pod) for ns, pod, _c, _n in CONTAINERS} == served.keys()


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
