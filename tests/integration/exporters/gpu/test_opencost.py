"""The whole bill with OpenCost: the real GPU exporter prices GPUs from a served OpenCost page (the
spot price, then the table once OpenCost has been down past the grace period, its collector at 0);
a real Prometheus scraping an OpenCost-format exposition, two kube-state-metrics replicas (pod team
labels), the token exporter (namespace -> team) and the GPU exporter records each team's Kubernetes
$/s and its whole bill with the shipped burn rules."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from aifinops.cli.demo.stack import Process, free_port, http_ok, wait_until
from support.static_http import StaticHTTPServer
from support.token_daemon import TokenDaemon

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[4]
OPENCOST = (REPO / "tests" / "fixtures" / "opencost" / "metrics.prom").read_text()
GPU_BIN = Path(sys.executable).parent / "aifinops-gpu-exporter"
TEAMS = {"ml-training": "nlp", "inference": "platform", "research": "research", "search": "search"}
# kube-state-metrics (v2, --metric-labels-allowlist=pods=[team]) for the fixture's pods: the same
# team labels as OpenCost's own kube_pod_labels there (search-web says team=web, its namespace maps
# to search), so with two replicas each labelled pod has three series that must count once.
KSM = """# HELP kube_pod_labels [STABLE] Kubernetes labels converted to Prometheus labels.
# TYPE kube_pod_labels gauge
kube_pod_labels{namespace="ml-training",pod="llm-finetune-0-0",uid="6f1d2c3b-0a9e-4b8d-9c7f-1e2d3c4b5a60",label_team="nlp"} 1
kube_pod_labels{namespace="inference",pod="chat-api-0-1",uid="7a2e3d4c-1b0f-4c9e-8d6a-2f3e4d5c6b71",label_team="platform"} 1
kube_pod_labels{namespace="research",pod="notebook-1-1",uid="8b3f4e5d-2c1a-4dae-9e7b-3a4f5e6d7c82"} 1
kube_pod_labels{namespace="search",pod="search-web-7d9c8-x2kq",uid="9c4a5f6e-3d2b-4ebf-8f8c-4b5a6f7e8d93",label_team="web"} 1
kube_pod_labels{namespace="batch",pod="nightly-29001",uid="ad5b6a7f-4e3c-4fc0-9a9d-5c6b7a8f9ea4"} 1
"""


def _gpu_exporter(tmp: Path, config: str) -> tuple[Process, str, int]:
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "gpu.yml").write_text(config)
    process = Process(
        "gpu-exporter",
        [
            str(GPU_BIN),
            f"--web.listen-address=127.0.0.1:{port}",
            f"--config.file={tmp / 'gpu.yml'}",
            "--source=simulated",
            "--log.level=debug",
        ],
        tmp,
    )
    process.start()
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: http_ok(f"{url}/-/healthy"), 20, "gpu exporter up")
    return process, url, port


def _gpu_config(opencost_url: str, max_age: int) -> str:
    return (
        "gpu:\n  interval_seconds: 0.2\n  simulator: {nodes: 2, gpus_per_node: 2}\n"
        f"  prices:\n    opencost_url: {opencost_url}\n"
        f"    opencost_refresh_seconds: 1\n    opencost_max_age_seconds: {max_age}\n"
    )


def test_gpu_exporter_takes_the_spot_price_from_opencost_then_the_table_when_it_is_down(
    tmp_path, prometheus_factory
):
    opencost = StaticHTTPServer(OPENCOST)
    process, _url, port = _gpu_exporter(tmp_path / "gpu", _gpu_config(opencost.url, 4))
    try:
        prom = prometheus_factory(
            scrape_configs=[
                {
                    "job_name": "aifinops-gpu-exporter",
                    "scrape_interval": "1s",
                    "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
                }
            ]
        )

        def price(node: str) -> list[tuple[str, str]]:
            rows = prom.query(
                f'aifinops_gpu_hourly_cost_usd{{node="{node}"}}'
                f' * on (node, gpu, uuid) group_left (source) aifinops_gpu_price_info{{node="{node}"}}'
            )
            return sorted((r["metric"]["source"], r["value"][1]) for r in rows)

        # sim-node-0 is a spot node OpenCost prices at $2.50/GPU-hour; OpenCost has no GPU
        # price for sim-node-1 (0): the table's H100 price.
        wait_until(
            lambda: price("sim-node-0") == [("opencost_spot", "2.5")] * 2, 30, "spot price used"
        )
        assert price("sim-node-1") == [("table", "6.88")] * 2
        assert prom.query('aifinops_collector_success{collector="opencost"}')[0]["value"][1] == "1"

        # OpenCost down: the collector says so at once; the last good price holds for the
        # grace period (4 s), then the table prices the node.
        opencost.status = 503
        wait_until(
            lambda: prom.query('aifinops_collector_success{collector="opencost"} == 0') != [],
            15,
            "collector opencost at 0",
        )
        wait_until(
            lambda: price("sim-node-0") == [("table", "6.88")] * 2, 30, "table after the grace"
        )
        process.check_alive()
    finally:
        process.stop()
        opencost.close()


def test_prometheus_records_each_teams_kubernetes_cost_and_whole_bill_from_opencost(
    tmp_path, prometheus_factory
):
    opencost = StaticHTTPServer(OPENCOST)
    # Prometheus' own view of OpenCost answers 503 until the exporters' series are in: before
    # then a GPU node looks like one no GPU exporter covers (its CPU, memory and GPUs rightly come
    # from OpenCost), and the 5-minute averages would carry that start for 5 minutes.
    opencost_scrape = StaticHTTPServer(OPENCOST, status=503)
    ksm = [StaticHTTPServer(KSM), StaticHTTPServer(KSM)]
    teams = "".join(f"    {ns}: {team}\n" for ns, team in TEAMS.items())
    tokens = TokenDaemon(tmp_path / "tokens", f"gpu:\n  namespace_teams:\n{teams}")
    tokens.start()
    # The GPU exporter runs on both simulated nodes: their GPUs are its, never OpenCost's.
    gpu, _, gpu_port = _gpu_exporter(tmp_path / "gpu", _gpu_config(opencost.url, 60))
    try:
        burn = tmp_path / "aifinops-burn.yaml"
        shipped = (REPO / "rules" / "aifinops-burn.yaml").read_text()
        burn.write_text(re.sub(r'interval: "\w+"', 'interval: "1s"', shipped))

        def job(name: str, *ports: int, honor: bool = False) -> dict:
            return {
                "job_name": name,
                "scrape_interval": "1s",
                "honor_labels": honor,
                "static_configs": [{"targets": [f"127.0.0.1:{port}" for port in ports]}],
            }

        opencost_port = int(opencost_scrape.base_url.rsplit(":", 1)[1])
        prom = prometheus_factory(
            rule_files=[burn],
            scrape_configs=[
                # As OpenCost's docs scrape it: its namespace/pod/instance labels kept.
                job("opencost", opencost_port, honor=True),
                # As kube-prometheus-stack scrapes it: the pods' namespace and pod labels kept.
                job(
                    "kube-state-metrics",
                    *(int(k.base_url.rsplit(":", 1)[1]) for k in ksm),
                    honor=True,
                ),
                job("aifinops-token-exporter", tokens.port),
                job("aifinops-gpu-exporter", gpu_port),
            ],
        )

        def per_hour(expr: str) -> dict[str, float]:
            return {
                r["metric"].get("team", ""): round(float(r["value"][1]) * 3600, 6)
                for r in prom.query(expr)
            }

        wait_until(
            lambda: bool(
                prom.query("aifinops_gpu_price_info")
                and prom.query("aifinops_namespace_team_info")
                and len(prom.query('kube_pod_labels{job="kube-state-metrics"}')) == 10
            ),
            60,
            "the exporters' series in Prometheus",
        )
        opencost_scrape.status = 200
        expected = {
            "nlp": 0.66,  # 8 cores, 64 GiB on sim-node-0, 100 GiB of a PV
            "platform": 0.24,  # 4 cores, 16 GiB on sim-node-0
            # research's notebook runs on sim-node-1, whose GPUs the exporter prices from the
            # table (all-in: the node's CPU and memory included): nothing more from OpenCost.
            # search-web: 2 cores, 4 GiB on cpu-node-0; its pod label team=web wins over its
            # namespace's team (search).
            "web": 0.14,
            "": 0.07,  # batch: no team label, no team for the namespace
        }
        query = 'team_source:aifinops_spend_usd_per_second:avg5m{source="kubernetes"}'
        try:
            wait_until(
                lambda: per_hour(query) == pytest.approx(expected, abs=1e-6),
                60,
                "Kubernetes $/h per team",
            )
        except Exception:
            raise AssertionError(
                f"{per_hour(query)} != {expected}; "
                f"{prom.query('aifinops_namespace_team_info')}; "
                f"{prom.query('namespace_resource:aifinops_kubernetes_cost_usd_per_second:sum')}"
            ) from None
        # The GPU exporter's dollars are in the same bill, under source="gpu"; the whole bill
        # per team is their sum.
        wait_until(
            lambda: (
                "nlp" in per_hour('team_source:aifinops_spend_usd_per_second:avg5m{source="gpu"}')
            ),
            60,
            "GPU spend recorded",
        )
        total = per_hour("team:aifinops_spend_usd_per_second:avg5m")
        by_source = per_hour(
            'sum by (team) (team_source:aifinops_spend_usd_per_second:avg5m{source=~"gpu|kubernetes"})'
        )
        assert total["web"] == pytest.approx(0.14) and "search" not in total
        assert total["nlp"] == pytest.approx(by_source["nlp"], rel=0.05)
        # No GPU dollars from OpenCost: the GPU exporter runs on every GPU node here.
        assert (
            prom.query(
                'namespace_resource:aifinops_kubernetes_cost_usd_per_second:sum{resource="gpu"}'
            )
            == []
        )
    finally:
        gpu.stop()
        tokens.stop()
        opencost.close()
        opencost_scrape.close()
        for k in ksm:
            k.close()


def test_the_demos_opencost_endpoint_gives_each_demo_team_its_kubernetes_bill(
    tmp_path, prometheus_factory
):
    from aifinops.cli.demo.demostack import NAMESPACE_TEAMS
    from aifinops.cli.demo.opencost import OpenCostDemo

    opencost = OpenCostDemo()
    opencost.start()
    teams = "".join(f"    {ns}: {team}\n" for ns, team in NAMESPACE_TEAMS.items())
    tokens = TokenDaemon(tmp_path / "tokens", f"gpu:\n  namespace_teams:\n{teams}")
    tokens.start()
    try:
        burn = tmp_path / "aifinops-burn.yaml"
        shipped = (REPO / "rules" / "aifinops-burn.yaml").read_text()
        burn.write_text(re.sub(r'interval: "\w+"', 'interval: "1s"', shipped))
        prom = prometheus_factory(
            rule_files=[burn],
            scrape_configs=[
                {
                    "job_name": name,
                    "scrape_interval": "1s",
                    "honor_labels": name == "opencost",
                    "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
                }
                for name, port in (
                    ("opencost", opencost.port),
                    ("aifinops-token-exporter", tokens.port),
                )
            ],
        )
        # No GPU exporter here: the GPUs come from OpenCost (sim-node-0's at $6.88/h each,
        # sim-node-1's unpriced there).
        expected = {
            "nlp": 16 * 0.04 + 128 * 0.005 + 500 * 0.000109589 + 6.88,
            "platform": 8 * 0.04 + 32 * 0.005 + 6.88 + 2 * 0.048 + 4 * 0.0064,
            "research": 4 * 0.04 + 16 * 0.005,
            "search": 6 * 0.048 + 12 * 0.0064,
            "support": 4 * 0.048 + 8 * 0.0064,
            "": 0.1 * 0.048 + 0.07 * 0.0064,  # kube-system: no team
        }
        query = 'team_source:aifinops_spend_usd_per_second:avg5m{source="kubernetes"}'

        def per_hour() -> dict[str, float]:
            return {
                r["metric"].get("team", ""): float(r["value"][1]) * 3600 for r in prom.query(query)
            }

        wait_until(
            lambda: per_hour() == pytest.approx(expected, abs=1e-6),
            60,
            "the demo's Kubernetes bill",
        )
    finally:
        tokens.stop()
        opencost.stop()
