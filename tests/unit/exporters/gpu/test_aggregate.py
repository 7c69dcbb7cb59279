"""The GPU sample aggregator: exact money per GPU and holder, latest-interval gauges, bounded and
expiring label sets, and the families its collector renders."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from aifinops.exporters.cardinality import OTHER, LabelLimiter, OverflowCollector
from aifinops.exporters.events import GPUSample
from aifinops.exporters.gpu import GPUAggregator, GPUCollector
from aifinops.exporters.gpu.aggregate import COST_METRIC


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sample(**kw) -> GPUSample:
    base = dict(
        node="n1",
        gpu=0,
        uuid="GPU-a",
        model="NVIDIA H100 80GB HBM3",
        utilization_ratio=0.25,
        memory_used_bytes=10,
        memory_total_bytes=100,
        power_watts=300.0,
        hourly_cost_usd=Decimal("2.00"),
        interval_seconds=Decimal(1),
    )
    base.update(kw)
    return GPUSample(**base)


def test_money_is_exact_over_many_small_intervals():
    agg = GPUAggregator(clock=Clock())
    # 1,800 s in 1 ms steps: a float accumulator would drift; this must not.
    for i in range(1800 * 10):
        agg.apply(
            sample(interval_seconds=Decimal("0.1"), pod="p", namespace="ml", team="t"), time=i
        )
    cost, idle = agg.snapshot().money_for(pod="p")
    assert cost == Fraction(1)
    assert idle == Fraction(3, 4)


def test_a_shared_gpu_splits_its_cost_among_holders_and_sums_to_the_gpu_cost():
    agg = GPUAggregator(clock=Clock())
    for t in range(3):
        for pod in ("a", "b", "c"):
            agg.apply(
                sample(
                    hourly_cost_usd=Decimal("3.6"),
                    interval_seconds=Decimal(1000),
                    namespace="ml",
                    pod=pod,
                    holders=3,
                ),
                time=t,
            )
    snap = agg.snapshot()
    per_pod = {m.pod: m.cost_usd for m in snap.money}
    assert per_pod == {"a": Fraction(1), "b": Fraction(1), "c": Fraction(1)}
    assert snap.money_for(uuid="GPU-a")[0] == Fraction(3)  # 3 * 3.6 $/h * 1000 s
    assert len(snap.gpus[0].holders) == 3


def test_holders_without_exact_shares_split_the_gpu_equally_in_the_share_gauge():
    """The dcgm and nvml process-attribution path: each of N containers' samples carries 1/N, so
    a pod's share is its containers' together, and a later interval replaces the shares."""
    agg = GPUAggregator(clock=Clock())
    for pod, container in (("a", "main"), ("b", "main"), ("b", "sidecar"), ("c", "main")):
        agg.apply(sample(namespace="ml", pod=pod, container=container, team="t", holders=4), 1)
    text = _render(agg)
    share = 'aifinops_gpu_allocation_share_ratio{gpu="0",namespace="ml",node="n1",pod="%s",team="t",uuid="GPU-a"}'
    assert share % "a" + " 0.25" in text
    assert share % "b" + " 0.5" in text
    assert share % "c" + " 0.25" in text
    # Next interval: one holder left, the whole GPU.
    agg.apply(sample(namespace="ml", pod="a", container="main", team="t"), 2)
    text = _render(agg)
    assert share % "a" + " 1.0" in text
    assert share % "b" not in text
    # No holder: no share series (the allocated gauge has none either).
    agg.apply(sample(), 3)
    assert "aifinops_gpu_allocation_share_ratio{" not in _render(agg)


def test_share_gauge_counts_mig_parts_and_odd_holder_counts_exactly():
    """A MIG device of 3 of 7 slices is 3 samples of 1/7 (`parts`); 17 holders do not divide
    the integer unit and still give exact sevenths and seventeenths."""
    agg = GPUAggregator(clock=Clock())
    agg.apply_many(
        [
            (sample(namespace="ml", pod="big", team="t", holders=7), 3),
            (sample(namespace="ml", pod="small", team="t", holders=7), 1),
            (sample(holders=7), 3),  # free slices: no holder
        ],
        time=1,
    )
    (state,) = agg.snapshot().gpus
    assert {h[1]: f for h, f in state.shares().items()} == {
        "big": Fraction(3, 7),
        "small": Fraction(1, 7),
    }
    agg.apply_many([(sample(namespace="ml", pod=f"p{i}", holders=17), 1) for i in range(17)], 2)
    (state,) = agg.snapshot().gpus
    assert set(state.shares().values()) == {Fraction(1, 17)}
    assert sum(state.shares().values()) == 1


def test_gauges_and_holders_show_the_latest_interval_and_late_samples_only_add_money():
    agg = GPUAggregator(clock=Clock())
    agg.apply(sample(namespace="ml", pod="old", utilization_ratio=0.9), time=10)
    agg.apply(sample(utilization_ratio=0.0), time=11)  # pod gone: unallocated
    agg.apply(sample(namespace="ml", pod="old", utilization_ratio=0.5), time=10.5)  # late
    snap = agg.snapshot()
    (gpu,) = snap.gpus
    assert gpu.holders == ()
    assert gpu.sample.utilization_ratio == 0.0
    assert snap.money_for(pod="old")[0] == 2 * Fraction(2, 3600)


def test_unpriced_gpus_have_gauges_but_no_money():
    agg = GPUAggregator(clock=Clock())
    agg.apply(sample(hourly_cost_usd=None), time=1)
    snap = agg.snapshot()
    assert len(snap.gpus) == 1 and snap.money == ()
    text = _render(agg)
    assert "aifinops_gpu_utilization_ratio{" in text
    assert "aifinops_gpu_hourly_cost_usd{" not in text


def test_gpus_expire_after_the_ttl_and_money_after_retention():
    clock = Clock()
    agg = GPUAggregator(gpu_ttl_seconds=3, retention_seconds=60, clock=clock)
    agg.apply(sample(namespace="ml", pod="p"), time=1)
    clock.now += 4
    snap = agg.snapshot()
    assert snap.gpus == () and len(snap.money) == 1
    clock.now += 57
    assert agg.snapshot().money == ()


def test_pods_beyond_the_limit_fold_into_other_and_are_counted():
    clock = Clock()
    agg = GPUAggregator(max_pods=2, retention_seconds=100, gpu_ttl_seconds=10, clock=clock)
    for i, pod in enumerate(["a", "b", "c", "d"]):
        agg.apply(sample(namespace="ml", pod=pod), time=i)
    pods = sorted(m.pod for m in agg.snapshot().money)
    assert pods == [OTHER, "a", "b"]
    assert agg.overflow()["aifinops_gpu_cost_usd_total"] == 2
    # The share gauge is bounded the same way: pods beyond the limit share one __other__ row.
    agg.apply_many([(sample(namespace="ml", pod=p, holders=4), 1) for p in "abcd"], time=5)
    text = _render(agg)
    rows = [ln for ln in text.splitlines() if ln.startswith("aifinops_gpu_allocation_share_ratio{")]
    assert len(rows) == 3
    assert f'pod="{OTHER}"' in next(r for r in rows if r.endswith(" 0.5"))
    assert agg.overflow()["aifinops_gpu_allocation_share_ratio"] == 4
    # Once a and b are past retention, new pods get their own series again.
    clock.now += 101
    agg.apply(sample(namespace="ml", pod="e"), time=10)
    assert [m.pod for m in agg.snapshot().money] == ["e"]


def test_gpus_beyond_the_limit_keep_counting_money_under_other():
    agg = GPUAggregator(max_gpus=1, clock=Clock())
    agg.apply(sample(uuid="GPU-a"), time=1)
    agg.apply(sample(uuid="GPU-b", gpu=1), time=1)
    snap = agg.snapshot()
    assert [g.sample.uuid for g in snap.gpus] == ["GPU-a"]
    assert {m.uuid for m in snap.money} == {"GPU-a", OTHER}
    assert agg.overflow()["aifinops_gpu_info"] == 1


def test_namespaces_and_teams_are_bounded_by_the_label_limiter():
    agg = GPUAggregator(limiter=LabelLimiter(max_values=1), clock=Clock())
    agg.apply(sample(namespace="ml", pod="p", team="x"), time=1)
    agg.apply(sample(namespace="web", pod="q", team="y"), time=1)
    assert {(m.namespace, m.team) for m in agg.snapshot().money} == {("ml", "x"), (OTHER, OTHER)}
    registry = CollectorRegistry()
    registry.register(OverflowCollector([agg]))  # type: ignore[list-item]
    assert 'aifinops_series_overflow_total{metric="aifinops_gpu_cost_usd_total"} 1.0' in (
        generate_latest(registry).decode()
    )


def test_the_collector_renders_every_family_of_the_design():
    agg = GPUAggregator(clock=Clock())
    agg.apply(sample(namespace="ml", pod="p", container="c", team="t"), time=1)
    agg.apply(sample(gpu=1, uuid="GPU-b", power_watts=None), time=1)
    text = _render(agg)
    for line in (
        'aifinops_gpu_info{gpu="0",model="NVIDIA H100 80GB HBM3",node="n1",uuid="GPU-a"} 1.0',
        'aifinops_gpu_utilization_ratio{gpu="0",node="n1",uuid="GPU-a"} 0.25',
        'aifinops_gpu_memory_used_bytes{gpu="0",node="n1",uuid="GPU-a"} 10.0',
        'aifinops_gpu_memory_total_bytes{gpu="0",node="n1",uuid="GPU-a"} 100.0',
        'aifinops_gpu_power_watts{gpu="0",node="n1",uuid="GPU-a"} 300.0',
        'aifinops_gpu_hourly_cost_usd{gpu="0",model="NVIDIA H100 80GB HBM3",node="n1",uuid="GPU-a"} 2.0',
        'aifinops_gpu_allocated{container="c",gpu="0",namespace="ml",node="n1",pod="p",team="t",uuid="GPU-a"} 1.0',
        'aifinops_gpu_allocation_share_ratio{gpu="0",namespace="ml",node="n1",pod="p",team="t",uuid="GPU-a"} 1.0',
        'aifinops_gpu_cost_usd_total{gpu="1",namespace="",node="n1",pod="",team="",uuid="GPU-b"}',
        'aifinops_gpu_idle_cost_usd_total{gpu="0",namespace="ml",node="n1",pod="p",team="t",uuid="GPU-a"}',
    ):
        assert line in text, line
    assert 'aifinops_gpu_power_watts{gpu="1"' not in text
    assert "# TYPE aifinops_gpu_cost_usd_total counter" in text


def test_retention_shorter_than_the_ttl_is_refused():
    with pytest.raises(ValueError):
        GPUAggregator(gpu_ttl_seconds=10, retention_seconds=5)


def _render(agg: GPUAggregator) -> str:
    registry = CollectorRegistry()
    registry.register(GPUCollector(agg))
    return generate_latest(registry).decode()


def test_money_series_beyond_the_budget_count_whole_under_other():
    agg = GPUAggregator(limiter=LabelLimiter(max_values=1000, max_series=3), clock=Clock())
    for n in range(5):
        agg.apply(sample(pod=f"p-{n}", namespace="ml", team="t"), time=float(n + 1))
    money = {m.pod: m.cost_usd for m in agg.snapshot().money}
    assert sorted(money) == [OTHER, "p-0", "p-1", "p-2"]
    # Nothing is lost: the two folded samples' dollars are in the __other__ series.
    assert money[OTHER] == 2 * money["p-0"] > 0
    assert agg.overflow()[COST_METRIC] == 2


@pytest.mark.parametrize(
    "odd",
    [
        {"holders": 17},  # no divisor of the integer path's holder lcm
        {"utilization_ratio": 0.12345678},  # more than 6 decimals
        {"hourly_cost_usd": Decimal("1.0000000001")},  # more than 9 decimals
    ],
    ids=["holders", "utilisation", "price"],
)
def test_integer_and_fraction_money_agree_and_mix_exactly(odd):
    """Samples the integer units cannot hold exactly add as Fractions to the same series."""
    agg = GPUAggregator(clock=Clock())
    plain = sample(pod="p", namespace="ml", team="t", holders=7, utilization_ratio=0.3)
    unusual = sample(**{"pod": "p", "namespace": "ml", "team": "t", **odd})
    agg.apply(plain, time=1, parts=3)
    agg.apply(unusual, time=2)

    def exact(s: GPUSample) -> tuple[Fraction, Fraction]:
        cost = Fraction(s.hourly_cost_usd) * Fraction(s.interval_seconds) / 3600 / s.holders
        return cost, cost * (1 - Fraction(repr(s.utilization_ratio)))

    want = [a * 3 + b for a, b in zip(exact(plain), exact(unusual), strict=True)]
    assert list(agg.snapshot().money_for(pod="p")) == want


def test_applying_a_gpus_samples_at_once_equals_applying_them_in_turn():
    """The sampler's `apply_many` (one lock per GPU) and the bridge's `apply` (one event at a
    time) give the same totals, holders and part-weighted utilisation."""
    batches = [
        (
            1.0,
            [
                (sample(pod="a", namespace="ml", team="t", holders=7, utilization_ratio=0.6), 3),
                (sample(pod="b", namespace="ml", team="u", holders=7, utilization_ratio=0.2), 2),
                (sample(holders=7, utilization_ratio=0.0), 2),
            ],
        ),
        (
            2.0,
            [
                (sample(pod="a", namespace="ml", team="t", holders=2), 1),
                (sample(pod="c", namespace="ml", team="t", holders=2), 1),
            ],
        ),
        (1.5, [(sample(pod="z", namespace="ml", team="t"), 1)]),  # late: money only
    ]
    one, many = GPUAggregator(clock=Clock()), GPUAggregator(clock=Clock())
    for time, samples in batches:
        for s, parts in samples:
            one.apply(s, time, parts)
        many.apply_many(samples, time)
        a, b = one.snapshot(), many.snapshot()
        assert sorted(a.money, key=repr) == sorted(b.money, key=repr)
        assert a.gpus == b.gpus
    (state,) = many.snapshot().gpus
    assert {h[1] for h in state.holders} == {"a", "c"}
    assert many.snapshot().money_for(pod="z")[0] == Fraction(2, 3600)
