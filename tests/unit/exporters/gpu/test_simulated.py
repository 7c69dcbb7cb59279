"""The simulated fleet through the whole exporter (config -> source -> sampler -> aggregator ->
/metrics), with time driven by an injected clock: exact dollars, holder labels, the patterns, the
schedule and the control hook, and what the sampler publishes."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from aifinops.exporters.config import Config
from aifinops.exporters.events import GPU_SAMPLE_TYPE, parse_envelope, parse_gpu_sample
from aifinops.exporters.gpu.aggregate import GPUAggregator
from aifinops.exporters.gpu.app import build_gpu_exporter
from aifinops.exporters.gpu.model import GPUReading, GPUSnapshot, PodRef
from aifinops.exporters.gpu.prices import GPUPricer, load_price_table
from aifinops.exporters.gpu.sampler import GPUSampler
from aifinops.exporters.gpu.simulated import ScheduledChange, SimulatedSource, SimulatorError
from aifinops.exporters.gpu.teams import TeamResolver
from aifinops.exporters.runtime.config import load_config
from aifinops.exporters.runtime.selfmetrics import CollectorHealth
from aifinops.exporters.sink import COUNTED_IN_HEADER


class Clock:
    def __init__(self, now: float = 5000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _config(tmp_path, yaml_text: str) -> Config:
    path = tmp_path / "c.yml"
    path.write_text(yaml_text)
    return load_config(Config, path, environ={})


def _metrics(collectors) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry(auto_describe=False)
    for c in collectors:
        registry.register(c)
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _find(metrics, name: str, **labels: str) -> list[float]:
    return [
        v
        for (n, lbls), v in metrics.items()
        if n == name and all(dict(lbls).get(k) == want for k, want in labels.items())
    ]


ONE_STEADY_GPU = """
cluster: test
gpu:
  source: simulated
  price_overrides: [{usd_per_hour: 2.00}]
  simulator: {nodes: 1, gpus_per_node: 1, patterns: [steady], utilization: 0.25}
"""


def test_one_gpu_at_2_dollars_an_hour_held_1800_s_at_25_percent_costs_1_dollar_and_75_cents_idle(
    tmp_path,
):
    clock = Clock()
    exporter = build_gpu_exporter(
        _config(tmp_path, ONE_STEADY_GPU), CollectorHealth(), clock=clock, wall=clock
    )
    for _ in range(1801):  # reads at t = 0, 1, ..., 1800
        assert exporter.poller.poll_once()
        clock.now += 1.0
    metrics = _metrics(exporter.collectors)
    (cost,) = _find(metrics, "aifinops_gpu_cost_usd_total", node="sim-node-0")
    (idle,) = _find(metrics, "aifinops_gpu_idle_cost_usd_total", node="sim-node-0")
    assert cost == pytest.approx(1.00, abs=1e-6)
    assert idle == pytest.approx(0.75, abs=1e-6)
    # Exact, not merely close: the aggregator holds the rational amounts.
    assert exporter.aggregator.snapshot().money_for(node="sim-node-0") == (
        Fraction(1),
        Fraction(3, 4),
    )
    (held,) = _find(metrics, "aifinops_gpu_allocated", node="sim-node-0")
    assert held == 1.0
    assert _find(metrics, "aifinops_gpu_hourly_cost_usd") == [2.0]
    assert _find(metrics, "aifinops_gpu_utilization_ratio") == [0.25]


def test_an_irregular_float_clock_charges_exactly_the_time_watched(tmp_path):
    clock = Clock(0.1)
    exporter = build_gpu_exporter(
        _config(tmp_path, ONE_STEADY_GPU), CollectorHealth(), clock=clock, wall=clock
    )
    start = clock.now
    for i in range(5000):
        exporter.poller.poll_once()
        clock.now += (0.7, 1.3, 0.1, 1.9)[i % 4]  # float steps: the sum drifts in binary
    end = clock.now - (0.7, 1.3, 0.1, 1.9)[4999 % 4]
    watched_us = round(end * 1e6) - round(start * 1e6)
    cost, idle = exporter.aggregator.snapshot().money_for()
    assert cost == Fraction(2) * Fraction(watched_us, 1_000_000) / 3600
    assert idle == cost * Fraction(3, 4)


def test_an_unallocated_gpu_has_empty_holder_labels_and_no_allocation(tmp_path):
    clock = Clock()
    config = _config(
        tmp_path,
        "gpu:\n  source: simulated\n  simulator: {nodes: 1, gpus_per_node: 1, patterns: [unallocated]}\n",
    )
    exporter = build_gpu_exporter(config, CollectorHealth(), clock=clock, wall=clock)
    for _ in range(11):
        exporter.poller.poll_once()
        clock.now += 1.0
    metrics = _metrics(exporter.collectors)
    money = [lbls for (n, lbls), _ in metrics.items() if n == "aifinops_gpu_cost_usd_total"]
    assert len(money) == 1
    labels = dict(money[0])
    assert (labels["namespace"], labels["pod"], labels["team"]) == ("", "", "")
    assert labels["node"] == "sim-node-0" and labels["gpu"] == "0"
    assert _find(metrics, "aifinops_gpu_allocated") == []
    # An unallocated H100 costs its catalogue price, all of it idle: 10 s at $6.88/h.
    (cost,) = _find(metrics, "aifinops_gpu_cost_usd_total")
    (idle,) = _find(metrics, "aifinops_gpu_idle_cost_usd_total")
    assert cost == pytest.approx(6.88 * 10 / 3600, abs=1e-9)
    assert idle == cost


def _by_index(snapshot: GPUSnapshot) -> dict[int, GPUReading]:
    return {g.index: g for g in snapshot.gpus}


def test_the_patterns_look_like_their_names():
    clock = Clock(0.0)
    source = SimulatedSource(
        nodes=1,
        gpus_per_node=5,
        patterns=["busy", "bursty", "idle", "unallocated", "crashed"],
        crash_after_seconds=100,
        clock=clock,
    )
    busy_bursts = []
    for t in range(0, 240):
        clock.now = float(t)
        g = _by_index(source.fetch())
        assert 0.85 <= g[0].utilization_ratio <= 0.99 and g[0].holders
        busy_bursts.append(g[1].utilization_ratio > 0.5)
        assert g[2].utilization_ratio <= 0.02 and g[2].holders and g[2].memory_used_bytes > 0
        assert g[3].utilization_ratio == 0 and g[3].holders == () and g[3].memory_used_bytes == 0
        if t < 100:
            assert g[4].utilization_ratio >= 0.85
        else:  # crashed: idle, memory still held, the pod still holds it
            assert g[4].utilization_ratio == 0 and g[4].holders and g[4].memory_used_bytes > 0
    assert 0.2 < sum(busy_bursts) / len(busy_bursts) < 0.3  # 30 s of every 120 s


def test_the_fleet_is_deterministic():
    a = SimulatedSource(nodes=3, gpus_per_node=2, seed=7, clock=Clock(0.0))
    b = SimulatedSource(nodes=3, gpus_per_node=2, seed=7, clock=Clock(0.0))
    assert a.fetch() == b.fetch()
    assert (
        SimulatedSource(seed=8, clock=Clock(0.0)).fetch()
        != SimulatedSource(seed=7, clock=Clock(0.0)).fetch()
    )


def test_the_schedule_and_the_control_hook_leave_a_gpu_idle_at_a_chosen_time():
    clock = Clock(0.0)
    source = SimulatedSource(
        nodes=1,
        gpus_per_node=2,
        patterns=["busy"],
        schedule=[ScheduledChange(60, "sim-node-0", 1, "idle")],
        clock=clock,
    )
    clock.now = 59.0
    assert _by_index(source.fetch())[1].utilization_ratio >= 0.85
    clock.now = 60.0
    assert _by_index(source.fetch())[1].utilization_ratio <= 0.02
    state = source.set_pattern("sim-node-0", 0, "unallocated")
    assert state["pattern"] == "unallocated"
    assert _by_index(source.fetch())[0].holders == ()
    with pytest.raises(SimulatorError, match="no simulated GPU 9"):
        source.set_pattern("sim-node-0", 9, "idle")
    with pytest.raises(SimulatorError, match="unknown pattern"):
        source.set_pattern("sim-node-0", 0, "melting")
    with pytest.raises(SimulatorError, match="schedule: no simulated GPU"):
        SimulatedSource(nodes=1, gpus_per_node=1, schedule=[ScheduledChange(1, "x", 0, "idle")])


class RecordingSink:
    def __init__(self, fail: bool = False) -> None:
        self.published: list[tuple[str, str, dict, dict]] = []
        self.fail = fail

    def publish(self, topic, key, event, headers):
        if self.fail:
            raise RuntimeError("broken sink")
        self.published.append((topic, key, dict(event), dict(headers)))


def _reading(**kw) -> GPUReading:
    base = dict(
        node="n1",
        index=0,
        uuid="GPU-a",
        model="NVIDIA H100 80GB HBM3",
        utilization_ratio=0.5,
        memory_used_bytes=1,
        memory_total_bytes=10,
        power_watts=100.0,
    )
    base.update(kw)
    return GPUReading(**base)


def test_a_shared_gpu_is_split_between_holders_and_each_sample_is_published(tmp_path):
    clock = Clock(0.0)
    agg = GPUAggregator(clock=clock)
    sink = RecordingSink()
    sampler = GPUSampler(
        agg,
        GPUPricer(load_price_table()),
        teams=TeamResolver("team", {"research": "science"}),
        sink=sink,
        topic="gpu-utilization-events",
        cluster="eu-1",
        max_gap_seconds=3600,
        clock=clock,
        wall=lambda: 1_764_300_000.0,
    )
    shared = _reading(
        holders=(PodRef("ml", "a", "main", {"team": "nlp"}), PodRef("research", "b", "main"))
    )
    sampler.on_snapshot(GPUSnapshot((shared,)))
    assert sink.published == []  # first read: nothing to charge yet
    clock.now = 3600.0
    sampler.on_snapshot(GPUSnapshot((shared,)))
    snap = agg.snapshot()
    assert snap.money_for(pod="a") == (Fraction(344, 100), Fraction(172, 100))  # 6.88 / 2
    assert snap.money_for(team="science")[0] == Fraction(344, 100)
    assert len(sink.published) == 2
    for topic, key, event, headers in sink.published:
        assert (topic, key) == ("gpu-utilization-events", "n1/GPU-a")
        assert headers == {COUNTED_IN_HEADER: b"eu-1"}
        env = parse_envelope(event, types=frozenset({GPU_SAMPLE_TYPE}))
        sample = parse_gpu_sample(env.data)
        assert sample.holders == 2 and sample.interval_seconds == Decimal(3600)
        assert sample.hourly_cost_usd == Decimal("6.88")
        assert env.source == "aifinops-gpu-exporter/eu-1/n1"
    # The events carry exactly what the exporter counted: a bridge applying them agrees.
    bridge = GPUAggregator(clock=clock)
    for _, _, event, _ in sink.published:
        bridge.apply(parse_gpu_sample(event["data"]), 1.0)
    assert bridge.snapshot().money == snap.money


def test_a_gap_longer_than_max_gap_is_not_charged_and_a_broken_sink_does_not_stop_sampling():
    clock = Clock(0.0)
    agg = GPUAggregator(clock=clock, gpu_ttl_seconds=100, retention_seconds=1000)
    sampler = GPUSampler(
        agg,
        GPUPricer(load_price_table()),
        sink=RecordingSink(fail=True),
        max_gap_seconds=30,
        clock=clock,
    )
    snap = GPUSnapshot((_reading(),))
    sampler.on_snapshot(snap)
    clock.now = 10.0
    sampler.on_snapshot(snap)  # 10 s charged
    clock.now = 70.0
    sampler.on_snapshot(snap)  # 60 s gap: not charged, the watch restarts
    clock.now = 75.0
    sampler.on_snapshot(snap)  # 5 s charged
    assert agg.snapshot().money_for()[0] == Fraction(688, 100) * 15 / 3600
    assert sampler.samples_applied == 2


def test_an_unknown_model_exports_gauges_but_no_money(caplog):
    clock = Clock(0.0)
    agg = GPUAggregator(clock=clock)
    sampler = GPUSampler(agg, GPUPricer(load_price_table()), clock=clock)
    snap = GPUSnapshot((_reading(model="NVIDIA GeForce RTX 4090"),))
    sampler.on_snapshot(snap)
    clock.now = 1.0
    sampler.on_snapshot(snap)
    clock.now = 2.0
    sampler.on_snapshot(snap)
    assert agg.snapshot().money == ()
    assert len(agg.snapshot().gpus) == 1
    assert [r.message for r in caplog.records].count(
        "no price for GPU model 'NVIDIA GeForce RTX 4090' (node n1): its utilisation is exported "
        "but no money is counted; add a gpu.price_overrides entry"
    ) == 1
