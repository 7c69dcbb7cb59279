"""The savings tier in a real Prometheus 2.42 over the demo's recorded history: the demo fleet's GPU
exporter (the real daemon, simulated fleet served through the kubelet's PodResources API) scraped
live, three days of the savings group's per-GPU steps backfilled from the same fleet
(`cli/demo/history.py`), and the shipped rules recommend each GPU action for the GPU whose pattern
calls for it, and nothing for the bursty GPU saturated at its peaks."""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from aifinops.cli.demo.demostack import NAMESPACE_TEAMS, SIMULATOR, demo_fleet
from aifinops.cli.demo.history import backfill
from aifinops.cli.demo.stack import Process, Prometheus, free_port, http_ok, wait_until
from support.dashboards import load_dashboards, panels_without_data

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
RULES = [REPO / "rules" / "aifinops-fast.yaml", REPO / "rules" / "aifinops-savings.yaml"]
BIN = Path(sys.executable).parent / "aifinops-gpu-exporter"


@pytest.fixture
def gpu_exporter(tmp_path: Path) -> Iterator[int]:
    """The demo's GPU exporter (its fleet and namespace teams) on a free port."""
    # A Unix socket path must stay under about 100 bytes; pytest's tmp_path may not.
    with tempfile.TemporaryDirectory(prefix="k") as sockets:
        config = {
            "gpu": {
                "source": "simulated",
                "namespace_teams": NAMESPACE_TEAMS,
                "simulator": SIMULATOR,
                "pod_resources_socket": f"{sockets}/kubelet.sock",
            }
        }
        (tmp_path / "gpu.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        process = Process(
            "gpu-exporter",
            [
                str(BIN),
                f"--web.listen-address=127.0.0.1:{port}",
                f"--config.file={tmp_path / 'gpu.yml'}",
            ],
            tmp_path,
        )
        process.start()
        try:
            wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/-/healthy"), 20, "gpu exporter up")
            yield port
        finally:
            process.stop()


def test_the_demo_fleet_gets_each_gpu_recommendation_from_its_recorded_history(
    gpu_exporter: int, tmp_path: Path
):
    # The shipped groups, evaluated every 5 s (the fast group) and 15 s (savings, instead of 5
    # minutes, so the test sees its first evaluations); its 5-minute steps and windows unchanged.
    copies = []
    for path in RULES:
        copy = tmp_path / path.name
        copy.write_text(re.sub(r'interval: "5m"', 'interval: "15s"', path.read_text()))
        copies.append(copy)
    prom = Prometheus(
        tmp_path / "prometheus",
        scrape_configs=[
            {
                "job_name": "aifinops-gpu-exporter",
                "scrape_interval": "5s",
                "static_configs": [{"targets": [f"127.0.0.1:{gpu_exporter}"]}],
            }
        ],
        rule_files=copies,
    )
    # What the demo writes before Prometheus starts: the steps the shipped (5-minute) group
    # would have recorded over the last 3 days.
    written = backfill(tmp_path / "prometheus" / "data", RULES, [], hours=0, fleet=demo_fleet())
    assert written == 6 * 8  # six step series for each of the 8 GPUs
    prom.start()
    try:
        expr = 'aifinops_savings_usd_per_month{action=~"release|share|schedule"}'

        def recommended(result: list) -> bool:
            return {s["metric"]["action"] for s in result} == {"release", "share", "schedule"}

        result = prom.wait_for(expr, recommended, timeout=90)
        found = {
            (
                s["metric"]["action"],
                s["metric"]["node"],
                s["metric"]["gpu"],
                f"{s['metric']['namespace']}/{s['metric']['pod']}",
                s["metric"].get("profile", ""),
            ): float(s["value"][1])
            for s in result
        }
        assert set(found) == {
            # idle: a model loaded, 0-2 % utilised
            ("release", "sim-node-0", "2", "research/notebook-0-2", ""),
            # allocated to a notebook that never started a process (the kubelet says who)
            ("release", "sim-node-1", "1", "research/notebook-1-1", ""),
            # light: 8-16 % in 6.4 GB of an A100 80GB: the 2g.20gb profile
            ("share", "sim-node-1", "2", "ml-training/llm-finetune-1-2", "2g.20gb"),
            # office: busy in working hours only
            ("schedule", "sim-node-1", "3", "inference/chat-api-1-3", ""),
        }
        # The bursty GPU (sim-node-0 GPU 1) is saturated at its peaks: no recommendation, though
        # its 5-minute averages would fit a profile.
        (peak,) = prom.query(
            'gpu:aifinops_gpu_utilization_peak_ratio:p95_7d{gpu="1", node="sim-node-0"}'
        )
        (average,) = prom.query(
            'gpu:aifinops_gpu_utilization_ratio:p95_7d{gpu="1", node="sim-node-0"}'
        )
        assert float(peak["value"][1]) > 0.9 and 0.05 < float(average["value"][1]) < 3 / 7 * 0.8
        # Dollars: the pod's $/h share x 730, 5/7 of it for 2g.20gb.
        hourly = {
            (s["metric"]["node"], s["metric"]["gpu"]): float(s["value"][1])
            for s in prom.query("pod_gpu:aifinops_gpu_hourly_cost_usd:share")
        }
        for (action, node, gpu, _, _), monthly in found.items():
            if action == "release":
                assert monthly == pytest.approx(hourly[(node, gpu)] * 730)
            elif action == "share":
                assert monthly == pytest.approx(hourly[(node, gpu)] * 730 * 5 / 7)
            else:
                assert 0 < monthly < hourly[(node, gpu)] * 730
        total = prom.query("team:aifinops_savings_usd_per_month:sum")
        assert sum(float(s["value"][1]) for s in total) == pytest.approx(sum(found.values()))
        # Every panel of the savings dashboard has data but the LLM tables (no LLM traffic here).
        savings = load_dashboards()["aifinops-savings.json"]
        assert panels_without_data(prom, [savings]) == [
            "AI FinOps / Savings: Opportunities by team and model",
            "AI FinOps / Savings: Cache hit ratio by team and model",
        ]
    finally:
        prom.stop()
