"""Turns GPU samples into the GPU metric families: exact money per GPU and holder, gauges per GPU,
with bounded label sets that expire when pods and GPUs go away.

The GPU exporter applies the samples it takes; the bridge applies the `io.aifinops.gpu.sample.v1`
events it consumes. Both expose the same families through `GPUCollector`:

    agg = GPUAggregator()
    agg.apply(sample, time=event_time_seconds)      # one GPU over one interval (GPUSample)
    registry.register(GPUCollector(agg))             # aifinops_gpu_* families
    OverflowCollector([agg])                         # its label folds, like a LabelLimiter's

Money is exact: each sample adds `price * interval / 3600 / holders` (and that times
`1 - utilisation` for idle) as a `Fraction` built from the sample's decimals, so no rounding happens
until a value is rendered for a scrape, and the bridge's totals from events equal the exporter's own.
`apply(sample, time, parts)` counts `parts` identical samples at once (a MIG device of several
compute slices, see `sampler`).

Utilisation. Samples of one interval may carry different utilisations (a MIG device's own); the
GPU's `aifinops_gpu_utilization_ratio` is then their mean weighted by each sample's part of the
GPU (`parts / holders`), which for ordinary samples is simply the GPU's utilisation.

Shares. `aifinops_gpu_allocation_share_ratio{node,gpu,uuid,namespace,pod,team}` is each pod's part of
its GPU over the latest interval: the sum of `parts / holders` of its samples (its containers'),
exactly what its money counters are charged. A time-sliced GPU of P holders gives each 1/P; a MIG
device of k of S compute slices gives k/S; a GPU's shares add up to at most 1, the rest (free MIG
slices) held by no pod. The rules price a pod's GPU time with it.

Time. `apply(sample, time)` takes the sample's own timestamp (the event's `time`, in epoch seconds)
to tell intervals apart: the gauges and the `aifinops_gpu_allocated` holder set of a GPU show its
latest interval (all samples of one interval carry the same time, one per holder); a sample older
than the latest only adds money. Expiry uses the aggregator's own clock (when a sample was applied),
so a producer's clock skew cannot expire anything early:

- a GPU not sampled for `gpu_ttl_seconds` loses its gauges and holders (the source stopped seeing
  it, or the source failed): a value that is no longer measured is not exported;
- a money series (GPU * holder) not sampled for `retention_seconds` is dropped. Pods come and go,
  so holder label sets churn; a finished pod's counters are kept long enough for every Prometheus
  to scrape their final value many times (15 min by default against 5-60 s scrape intervals) and
  then removed, so live series stay bounded by the pods that ran in the last retention window.
  `increase()` and `rate()` over any window still see every cent the series counted while it
  existed. A pod that comes back after its series was dropped starts a fresh series.

Bounds beyond expiry: `namespace`, `container` and `team` values go through a `LabelLimiter`
(stable sets; overflow folds into `__other__`); at most `max_pods` pods and `max_gpus` GPUs are live
at once, and newcomers beyond that fold into `__other__` (pods: `pod="__other__"`; GPUs:
`node=gpu=uuid="__other__"`, money only). The money families hold at most the limiter's
`max_series` series (GPU x holder sets within the retention window); a new set beyond that counts
under the one series whose every label is `__other__`. Every fold is counted in `overflow()` per
metric name.
"""

from __future__ import annotations

import threading
import time as _time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from ..cardinality import OTHER, LabelLimiter
from ..events.gpu import GPUSample
from ..runtime.exposition import Row, RowsMetricFamily

GPU_LABELS = ("node", "gpu", "uuid")
MONEY_LABELS = (*GPU_LABELS, "namespace", "pod", "team")
ALLOCATED_LABELS = (*GPU_LABELS, "namespace", "pod", "container", "team")

COST_METRIC = "aifinops_gpu_cost_usd_total"
IDLE_COST_METRIC = "aifinops_gpu_idle_cost_usd_total"
ALLOCATED_METRIC = "aifinops_gpu_allocated"
SHARE_METRIC = "aifinops_gpu_allocation_share_ratio"
INFO_METRIC = "aifinops_gpu_info"

DEFAULT_GPU_TTL_SECONDS = 60.0
DEFAULT_RETENTION_SECONDS = 900.0
DEFAULT_MAX_GPUS = 10_000
DEFAULT_MAX_PODS = 10_000
DEFAULT_MAX_LABEL_VALUES = 1_000
_ALL_OTHER_MONEY = (OTHER,) * 6

_SECONDS_PER_HOUR = 3600
# Integer money: amounts counted in units of 1/MONEY_DEN USD, exact for every price and interval
# of up to 9 decimals, utilisation of up to 6 and holder count dividing _HOLDERS_LCM (the lcm of
# 1..16: every count up to 16, and MIG's 7 x pods); other samples add exact Fractions. Integers
# add without a gcd per sample, which a GPU shared by several pods (one sample each) needs.
_E6, _E9 = 10**6, 10**9
_HOLDERS_LCM = 720_720
# A holder's share of its GPU is counted in units of 1/_HOLDERS_LCM (a Fraction of units where a
# sample's holder count does not divide it).
SHARE_DEN = _HOLDERS_LCM
MONEY_DEN = _E9 * _E9 * _E6 * _SECONDS_PER_HOUR * _HOLDERS_LCM
_PURGE_EVERY_SECONDS = 1.0

Holder = tuple[str, str, str, str]  # namespace, pod, container, team


@dataclass(frozen=True)
class GPUState:
    """One GPU's latest interval: its latest sample (what it did, the price of one hour of it),
    every holder of that interval (namespace, pod, container, team), after label folding, and
    each holder's part of the GPU (`parts[i]` for `holders[i]`, in units of 1/`SHARE_DEN`)."""

    sample: GPUSample
    holders: tuple[Holder, ...]
    parts: tuple[int | Fraction, ...] = ()

    def shares(self) -> dict[Holder, Fraction]:
        """Each holder's exact share of the GPU over the interval (0..1)."""
        return {h: Fraction(p) / SHARE_DEN for h, p in zip(self.holders, self.parts, strict=True)}


@dataclass(frozen=True)
class MoneyTotal:
    """Money counted for one GPU and holder (holder fields `""` while no pod held it), exact: in
    integer units of 1/`MONEY_DEN` USD plus the rest the units could not hold exactly."""

    node: str
    gpu: str
    uuid: str
    namespace: str
    pod: str
    team: str
    cost_units: int
    idle_units: int
    cost_rest: Fraction | int = 0
    idle_rest: Fraction | int = 0

    @property
    def cost_usd(self) -> Fraction:
        """The money spent, in USD."""
        return Fraction(self.cost_units, MONEY_DEN) + self.cost_rest

    @property
    def idle_cost_usd(self) -> Fraction:
        """The part of it spent idle, in USD."""
        return Fraction(self.idle_units, MONEY_DEN) + self.idle_rest

    def floats(self) -> tuple[float, float]:
        """(cost, idle cost) in USD as floats, for rendering (no Fraction built: a scrape renders
        every series)."""
        cost, idle = self.cost_units / MONEY_DEN, self.idle_units / MONEY_DEN
        if self.cost_rest or self.idle_rest:
            cost, idle = cost + float(self.cost_rest), idle + float(self.idle_rest)
        return cost, idle


@dataclass(frozen=True)
class GPUAggregateSnapshot:
    """What the collector renders: live GPUs and every retained money series."""

    gpus: tuple[GPUState, ...]
    money: tuple[MoneyTotal, ...]

    def money_for(self, **labels: str) -> tuple[Fraction, Fraction]:
        """Sum of (cost, idle cost) over the money series matching `labels` (e.g. `team="ml"`)."""
        cost = idle = Fraction(0)
        for m in self.money:
            if all(getattr(m, k) == v for k, v in labels.items()):
                cost += m.cost_usd
                idle += m.idle_cost_usd
        return cost, idle


class _LiveGPU:
    __slots__ = (
        "holders",
        "mixed",
        "seen",
        "state",
        "time",
        "util_first",
        "util_sum",
        "util_weight",
    )

    def __init__(self, state: GPUState, time: float, seen: float) -> None:
        self.state = state
        self.time = time
        self.seen = seen
        # holder -> its part of the GPU this interval, in units of 1/SHARE_DEN
        self.holders: dict[Holder, int | Fraction] = {}
        # Part-weighted utilisation of the latest interval, needed only when its samples differ.
        self.mixed = False
        self.util_first = 0.0
        self.util_sum = 0.0
        self.util_weight = 0.0

    def gauge_state(self) -> GPUState:
        """The state with the interval's part-weighted utilisation where its samples differ."""
        if not self.mixed or self.util_weight <= 0:
            return self.state
        mean = round(self.util_sum / self.util_weight, 6)
        sample = replace(self.state.sample, utilization_ratio=mean)
        return GPUState(sample, self.state.holders, self.state.parts)


class GPUAggregator:
    """Applies GPU samples (one GPU over one interval) and keeps exact totals under a lock.

    Thread-safe: a sampler or consumer thread applies while scrapes take snapshots.
    """

    def __init__(
        self,
        *,
        gpu_ttl_seconds: float = DEFAULT_GPU_TTL_SECONDS,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        max_gpus: int = DEFAULT_MAX_GPUS,
        max_pods: int = DEFAULT_MAX_PODS,
        limiter: LabelLimiter | None = None,
        clock: Callable[[], float] = _time.monotonic,
    ) -> None:
        if retention_seconds < gpu_ttl_seconds:
            raise ValueError("retention_seconds must be at least gpu_ttl_seconds")
        self._gpu_ttl = gpu_ttl_seconds
        self._retention = retention_seconds
        self._max_gpus = max_gpus
        self._max_pods = max_pods
        self._limiter = limiter or LabelLimiter(DEFAULT_MAX_LABEL_VALUES)
        self._clock = clock
        self._lock = threading.Lock()
        self._gpus: dict[tuple[str, str, str], _LiveGPU] = {}
        # (node, gpu, uuid, namespace, pod, team) -> [cost units, idle units, last applied,
        # cost rest, idle rest]: ints, a float and Fractions, added to in place.
        self._money: dict[tuple[str, ...], list[Any]] = {}
        self._pods: dict[tuple[str, str], float] = {}
        self._overflow: dict[str, int] = {}
        self._ratios: dict[object, tuple[int, int]] = {}
        # (namespace, team, container) the limiter admitted: admitted values stay admitted.
        self._admitted: set[tuple[str, str, str]] = set()
        self._last_purge = clock()

    def apply(self, sample: GPUSample, time: float, parts: int = 1) -> None:
        """Count one sample (`parts` identical ones). `time` is the sample's timestamp in seconds
        (the event's `time`)."""
        self.apply_many(((sample, parts),), time)

    def apply_many(self, samples: Sequence[tuple[GPUSample, int]], time: float) -> None:
        """Count the samples of one GPU over one interval (same node, gpu and uuid), each with
        its number of identical parts, under one lock: the same as applying them in turn."""
        if not samples:
            return
        if len(samples) == 1:
            monies = [self._money_of(samples[0][0])]
        else:
            # The pods sharing a GPU have the same price, interval, utilisation and holder
            # count: one computation for all of them.
            memo: dict[tuple[object, ...], tuple[int | Fraction | None, int | Fraction | None]] = {}
            monies = []
            for sample, _ in samples:
                key = (
                    sample.hourly_cost_usd,
                    sample.interval_seconds,
                    sample.utilization_ratio,
                    sample.holders,
                )
                money = memo.get(key)
                if money is None:
                    money = memo[key] = self._money_of(sample)
                monies.append(money)
        first = samples[0][0]
        now = self._clock()
        with self._lock:
            if now - self._last_purge >= _PURGE_EVERY_SECONDS:
                self._purge(now)
            gkey = (first.node, str(first.gpu), first.uuid)
            live = self._gpus.get(gkey)
            if live is None:
                if len(self._gpus) >= self._max_gpus:
                    self._count_overflow(INFO_METRIC, COST_METRIC)
                    gkey = (OTHER, OTHER, OTHER)
                else:
                    live = _LiveGPU(GPUState(first, ()), time, now)
                    self._gpus[gkey] = live
            current = live is not None and time >= live.time
            if live is not None:
                live.seen = now
                if time > live.time:
                    live.time = time
                    live.holders = {}
                    live.mixed = False
                    live.util_sum = live.util_weight = 0.0
            sample = first
            for (sample, parts), (cost, idle) in zip(samples, monies, strict=True):
                holder = self._holder(sample, now) if sample.pod else None
                if current:
                    assert live is not None
                    if holder is not None:
                        units = parts * SHARE_DEN
                        part = (
                            units // sample.holders
                            if units % sample.holders == 0
                            else Fraction(units, sample.holders)
                        )
                        live.holders[holder] = live.holders.get(holder, 0) + part
                    weight = parts / sample.holders
                    if live.util_weight and sample.utilization_ratio != live.util_first:
                        live.mixed = True
                    elif not live.util_weight:
                        live.util_first = sample.utilization_ratio
                    live.util_sum += weight * sample.utilization_ratio
                    live.util_weight += weight
                if cost is None or idle is None:
                    continue
                if parts != 1:
                    cost, idle = cost * parts, idle * parts
                mkey = (
                    *gkey,
                    *(("", "", "") if holder is None else (holder[0], holder[1], holder[3])),
                )
                entry = self._money.get(mkey)
                if entry is None and len(self._money) >= self._limiter.max_series:
                    # The money families' series budget is spent: the dollars still count,
                    # whole under the one all-__other__ series.
                    self._count_overflow(COST_METRIC, IDLE_COST_METRIC)
                    mkey = _ALL_OTHER_MONEY
                    entry = self._money.get(mkey)
                if entry is None:
                    # [cost units, idle units, last applied, cost Fraction, idle Fraction]
                    entry = self._money[mkey] = [0, 0, now, 0, 0]
                if type(cost) is int:
                    entry[0] += cost
                    entry[1] += idle
                else:
                    entry[3] += cost
                    entry[4] += idle
                entry[2] = now
            if current:
                assert live is not None
                live.state = GPUState(sample, tuple(live.holders), tuple(live.holders.values()))

    def snapshot(self) -> GPUAggregateSnapshot:
        """Live GPUs and retained money totals, as an immutable value."""
        now = self._clock()
        with self._lock:
            self._purge(now)
            gpus = tuple(live.gauge_state() for live in self._gpus.values())
            money = tuple(
                MoneyTotal(
                    node, gpu, uuid, namespace, pod, team, entry[0], entry[1], entry[3], entry[4]
                )
                for (node, gpu, uuid, namespace, pod, team), entry in self._money.items()
            )
        return GPUAggregateSnapshot(gpus, money)

    def overflow(self) -> dict[str, int]:
        """Observations folded into `__other__` per metric (for `OverflowCollector`)."""
        with self._lock:
            totals = dict(self._overflow)
        for metric, n in self._limiter.overflow().items():
            totals[metric] = totals.get(metric, 0) + n
        return totals

    def _money_of(self, sample: GPUSample) -> tuple[int | Fraction | None, int | Fraction | None]:
        """(cost, idle cost) of one sample: integers in units of 1/MONEY_DEN USD where they are
        exact, else Fractions of a USD; None without a price."""
        if sample.hourly_cost_usd is None:
            return None, None
        pn, pd = self._ratio(sample.hourly_cost_usd)
        inn, ind = sample.interval_seconds.as_integer_ratio()
        un, ud = self._ratio(sample.utilization_ratio)
        holders = sample.holders
        if not (_E9 % pd or _E9 % ind or _E6 % ud or _HOLDERS_LCM % holders):
            base = pn * (_E9 // pd) * inn * (_E9 // ind) * (_HOLDERS_LCM // holders)
            return base * _E6, base * (_E6 - un * (_E6 // ud))
        # One exact fraction each: numerators and denominators of the price, the interval and the
        # idle share (1 - utilisation), multiplied as integers.
        num = pn * inn
        den = pd * ind * _SECONDS_PER_HOUR * sample.holders
        return Fraction(num, den), Fraction(num * (ud - un), den * ud)

    def _ratio(self, value: Decimal | float) -> tuple[int, int]:
        """The exact value a price or utilisation was written as, as (numerator, denominator);
        cached, since there are few distinct ones."""
        cached = self._ratios.get(value)
        if cached is None:
            # repr() of a float is its shortest decimal form: 0.07 counts as 7/100.
            frac = Fraction(repr(value)) if isinstance(value, float) else Fraction(value)
            cached = (frac.numerator, frac.denominator)
            if len(self._ratios) > 100_000:
                self._ratios.clear()
            self._ratios[value] = cached
        return cached

    def _holder(self, sample: GPUSample, now: float) -> Holder:
        namespace, team, container = sample.namespace, sample.team, sample.container
        if (namespace, team, container) not in self._admitted:
            namespace, team = self._limiter.fold(
                COST_METRIC, ("namespace", "team"), (namespace, team)
            )
            (container,) = self._limiter.fold(ALLOCATED_METRIC, ("container",), (container,))
            if OTHER not in (namespace, team, container) and len(self._admitted) < 100_000:
                self._admitted.add((namespace, team, container))
        pod = sample.pod
        key = (namespace, pod)
        if key in self._pods:
            self._pods[key] = now
        elif len(self._pods) >= self._max_pods:
            self._count_overflow(COST_METRIC, IDLE_COST_METRIC, ALLOCATED_METRIC, SHARE_METRIC)
            pod = OTHER
        else:
            self._pods[key] = now
        return (namespace, pod, container, team)

    def _count_overflow(self, *metrics: str) -> None:
        for metric in metrics:
            self._overflow[metric] = self._overflow.get(metric, 0) + 1

    def _purge(self, now: float) -> None:
        """Drop GPUs not sampled within the TTL and money series and pods past retention."""
        self._last_purge = now
        gpu_cutoff = now - self._gpu_ttl
        for gkey in [k for k, live in self._gpus.items() if live.seen < gpu_cutoff]:
            del self._gpus[gkey]
        cutoff = now - self._retention
        for mkey in [k for k, entry in self._money.items() if entry[2] < cutoff]:
            del self._money[mkey]
        for pkey in [k for k, seen in self._pods.items() if seen < cutoff]:
            del self._pods[pkey]


class GPUCollector(Collector):
    """Renders a `GPUAggregator`'s snapshot as the GPU families of docs/architecture.md.

    # TYPE aifinops_gpu_cost_usd_total counter
    aifinops_gpu_cost_usd_total{node="n1",gpu="0",uuid="GPU-…",namespace="ml",pod="train-0",team="research"} 1.0
    """

    def __init__(self, aggregator: GPUAggregator) -> None:
        self._aggregator = aggregator

    def collect(self) -> Iterable[Metric]:
        """One family per GPU metric; GPUs without a price have no `hourly_cost_usd` sample.

        Families are `RowsMetricFamily` (label tuples, no per-series dict), which the daemons'
        exposition renders fast; stock encoders see ordinary samples.
        """
        snap = self._aggregator.snapshot()
        info: list[Row] = []
        utilization: list[Row] = []
        used: list[Row] = []
        total: list[Row] = []
        power: list[Row] = []
        price: list[Row] = []
        allocated: list[Row] = []
        shares: list[Row] = []
        for state in snap.gpus:
            g = state.sample
            ids = (g.node, str(g.gpu), g.uuid)
            info.append(((*ids, g.model), 1))
            utilization.append((ids, g.utilization_ratio))
            used.append((ids, g.memory_used_bytes))
            total.append((ids, g.memory_total_bytes))
            if g.power_watts is not None:
                power.append((ids, g.power_watts))
            if g.hourly_cost_usd is not None:
                price.append(((*ids, g.model), float(g.hourly_cost_usd)))
            for holder in state.holders:
                allocated.append(((*ids, *holder), 1))
            # A pod's share is its containers' together (the money labels have no container).
            by_pod: dict[tuple[str, str, str], int | Fraction] = {}
            for (namespace, pod, _container, team), part in zip(
                state.holders, state.parts, strict=True
            ):
                key = (namespace, pod, team)
                by_pod[key] = by_pod.get(key, 0) + part
            for key, part in by_pod.items():
                shares.append(((*ids, *key), float(part / SHARE_DEN)))
        cost: list[Row] = []
        idle: list[Row] = []
        for m in snap.money:
            labels = (m.node, m.gpu, m.uuid, m.namespace, m.pod, m.team)
            c, i = m.floats()
            cost.append((labels, c))
            idle.append((labels, i))
        model_labels = (*GPU_LABELS, "model")
        yield RowsMetricFamily(INFO_METRIC, "GPU identity; always 1.", "gauge", model_labels, info)
        yield RowsMetricFamily(
            "aifinops_gpu_utilization_ratio",
            "Share of the latest sampling interval a kernel was running on the GPU (0..1).",
            "gauge",
            GPU_LABELS,
            utilization,
        )
        yield RowsMetricFamily(
            "aifinops_gpu_memory_used_bytes", "GPU memory in use.", "gauge", GPU_LABELS, used
        )
        yield RowsMetricFamily(
            "aifinops_gpu_memory_total_bytes", "GPU memory installed.", "gauge", GPU_LABELS, total
        )
        yield RowsMetricFamily(
            "aifinops_gpu_power_watts", "GPU power draw.", "gauge", GPU_LABELS, power
        )
        yield RowsMetricFamily(
            "aifinops_gpu_hourly_cost_usd",
            "Price of one hour of this GPU, in US dollars (catalogue or override).",
            "gauge",
            model_labels,
            price,
        )
        yield RowsMetricFamily(
            ALLOCATED_METRIC,
            "1 while a pod's container holds the GPU.",
            "gauge",
            ALLOCATED_LABELS,
            allocated,
        )
        yield RowsMetricFamily(
            SHARE_METRIC,
            "A pod's share of the GPU over the latest interval, what its cost counters are "
            "charged (0..1; a GPU's shares add up to at most 1, the rest held by no pod).",
            "gauge",
            MONEY_LABELS,
            shares,
        )
        yield RowsMetricFamily(
            COST_METRIC,
            "Money spent on the GPU, in US dollars, per holder (holder labels empty while no pod held it).",
            "counter",
            MONEY_LABELS,
            cost,
        )
        yield RowsMetricFamily(
            IDLE_COST_METRIC,
            "The part of aifinops_gpu_cost_usd_total spent while the GPU was idle: cost * (1 - utilisation).",
            "counter",
            MONEY_LABELS,
            idle,
        )
