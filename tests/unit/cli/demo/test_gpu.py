"""The demo's GPU parts: the simulated fleet is served through the kubelet simulator with one GPU
allocated to a pod that runs no process, and the live view names that pod, its team and the idle
cost it is charged once the exporter reports it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from aifinops.cli.demo.command import allocated_gpu_anomaly
from aifinops.cli.demo.demostack import ALLOCATED_GPU, NAMESPACE_TEAMS, SIMULATOR
from aifinops.exporters.gpu.simulated import SimulatedSource


class FakePrometheus:
    """Answers the queries the note makes (allocation, price, exchange rate) as Prometheus's API
    shapes them."""

    def __init__(self, held: list, price: list, fx: list | None = None) -> None:
        self.held, self.price, self.fx = held, price, fx or []

    def query(self, expr: str) -> list:
        if expr.startswith("aifinops_gpu_allocated"):
            return self.held
        return self.fx if "aifinops_fx_rate" in expr else self.price


def test_the_demo_fleet_allocates_one_gpu_to_a_pod_without_a_process():
    sim = SimulatedSource(
        nodes=SIMULATOR["nodes"],
        gpus_per_node=SIMULATOR["gpus_per_node"],
        models=SIMULATOR["models"],
        patterns=SIMULATOR["patterns"],
    )
    assert SIMULATOR["serve_pod_resources"] is True
    node, gpu = ALLOCATED_GPU
    (reading,) = [g for g in sim.fetch().gpus if (g.node, g.index) == (node, gpu)]
    assert reading.holders == () and reading.utilization_ratio == 0.0  # no process on it
    allocated = {
        (p.namespace, p.name): [
            d for c in p.containers for dev in c.devices for d in dev.device_ids
        ]
        for p in sim.allocation().pod_resources
    }
    assert allocated[("research", "notebook-1-1")] == [reading.uuid]  # the kubelet knows
    assert NAMESPACE_TEAMS["research"] == "research"


def test_the_view_names_the_pod_its_team_and_its_idle_cost_once_reported():
    stack = SimpleNamespace(prometheus=FakePrometheus([], []))
    assert allocated_gpu_anomaly(stack, *ALLOCATED_GPU, onset=1.0, onset_wall=2.0) is None
    labels = {"namespace": "research", "pod": "notebook-1-1", "team": "research"}
    stack.prometheus = FakePrometheus([{"metric": labels}], [{"value": [0, "3.43"]}])
    note = allocated_gpu_anomaly(stack, *ALLOCATED_GPU, onset=1.0, onset_wall=2.0)
    assert note is not None and note.kind == "gpu" and note.team == "research"
    assert "research/notebook-1-1" in note.description and "$3.43/h" in note.description
    assert note.matches({"alertname": "AIFinOpsGPUIdle", "team": "research"})


def test_the_idle_cost_is_in_the_reporting_currency_at_the_served_rate():
    labels = {"namespace": "research", "pod": "notebook-1-1", "team": "research"}
    price = [{"value": [0, "3.43"]}]
    stack = SimpleNamespace(currency="GBP", prometheus=FakePrometheus([{"metric": labels}], price))
    note = allocated_gpu_anomaly(stack, *ALLOCATED_GPU, onset=1.0, onset_wall=2.0)
    assert note is not None and "$3.43/h" in note.description  # no rate served yet: dollars
    stack.prometheus.fx = [{"value": [0, "0.8"]}]
    note = allocated_gpu_anomaly(stack, *ALLOCATED_GPU, onset=1.0, onset_wall=2.0)
    assert note is not None and "£2.74/h" in note.description and "$" not in note.description


def test_the_kubelet_socket_path_fits_a_unix_socket(tmp_path: Path):
    from aifinops.cli.demo.demostack import DemoStack

    deep = tmp_path / ("d" * 60) / ("e" * 60)
    stack = DemoStack(deep, gpu_source="simulated")
    assert len(str(stack.kubelet_socket)) <= 100
    assert stack.kubelet_socket.parent.is_dir()
    stack.stop()
    assert not stack.kubelet_socket.parent.exists()


def test_the_kubelet_socket_fits_when_tmpdir_itself_is_deep(tmp_path: Path, monkeypatch):
    # A test's TMPDIR under pytest-xdist's basetemp was deep enough that a socket folder made
    # under it could not be bound either.
    import tempfile

    from aifinops.cli.demo.demostack import DemoStack

    deep = tmp_path / ("t" * 90)
    deep.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    stack = DemoStack(deep / "work", gpu_source="simulated")
    assert len(str(stack.kubelet_socket)) <= 107
    assert stack.kubelet_socket.parent.is_dir()
    stack.stop()
    assert not stack.kubelet_socket.parent.exists()
