"""Keeps every metric's label values bounded: values beyond a limit, and label sets beyond a family's
series budget, fold into `__other__` and are counted."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

OTHER = "__other__"
DEFAULT_MAX_VALUES = 500
# Series per metric family (docs/token-exporter.md, "Series budget", has the sizing).
DEFAULT_MAX_SERIES = 40_000


class LabelLimiter:
    """Admits at most `max_values` distinct values per label per metric (a per-label limit may
    override it), and at most `max_series` series per metric family; a value arriving once its
    label is full becomes `__other__`, and a new label set arriving once the family's budget is
    spent becomes `__other__` in every label.

    Each label caps its own values, but their product can still be huge (500 teams x 400 apps);
    the budget bounds what the product may cost in memory and scrape time. Values and label sets
    seen first keep their own series for the life of the process, so a series never changes its
    meaning; the overflow is visible in `aifinops_series_overflow_total{metric}`, which counts
    the observations folded. A family may exceed its budget by the series of the one all-
    `__other__` label set, which is always admitted.
    """

    def __init__(
        self,
        max_values: int = DEFAULT_MAX_VALUES,
        per_label: Mapping[str, int] | None = None,
        max_series: int = DEFAULT_MAX_SERIES,
    ) -> None:
        self._max_values = max_values
        self._per_label = dict(per_label or {})
        self.max_series = max_series
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], set[str]] = {}
        # Per metric: the label sets admitted, and the series they make.
        self._sets: dict[str, set[tuple[str, ...]]] = {}
        self._series: dict[str, int] = {}
        self._overflow: dict[str, int] = {}

    def fold(
        self, metric: str, names: Sequence[str], values: Sequence[str], series: int = 1
    ) -> tuple[str, ...]:
        """The label values to record for one observation of `metric`; a new label set makes
        `series` series of the family (e.g. one per `token_type`)."""
        out = list(values)
        folded = False
        with self._lock:
            for i, (name, value) in enumerate(zip(names, values, strict=True)):
                seen = self._seen.setdefault((metric, name), set())
                if value in seen:
                    continue
                if len(seen) < self._per_label.get(name, self._max_values):
                    seen.add(value)
                    continue
                out[i] = OTHER
                folded = True
            result = tuple(out)
            sets = self._sets.setdefault(metric, set())
            if result not in sets:
                total = self._series.get(metric, 0)
                if total + series > self.max_series:
                    result = (OTHER,) * len(out)
                    folded = True
                if result not in sets:
                    sets.add(result)
                    self._series[metric] = total + series
            if folded:
                self._overflow[metric] = self._overflow.get(metric, 0) + 1
        return result

    def fold_all(self, metric: str, size: int, series: int = 1) -> tuple[str, ...]:
        """Record one observation of `metric` in its all-`__other__` label set of `size` labels
        (a related family's budget folded it), counted as folded."""
        result = (OTHER,) * size
        with self._lock:
            sets = self._sets.setdefault(metric, set())
            if result not in sets:
                sets.add(result)
                self._series[metric] = self._series.get(metric, 0) + series
            self._overflow[metric] = self._overflow.get(metric, 0) + 1
        return result

    def series(self) -> dict[str, int]:
        """Series admitted per metric family so far."""
        with self._lock:
            return dict(self._series)

    def overflow(self) -> dict[str, int]:
        """Folded observations per metric so far."""
        with self._lock:
            return dict(self._overflow)


class FoldCounter(Protocol):
    """Anything that counts observations folded into `__other__` per metric: a `LabelLimiter`,
    or an aggregator that folds on its own too (`GPUAggregator`)."""

    def overflow(self) -> dict[str, int]:
        """Folded observations per metric family name."""
        ...


class OverflowCollector(Collector):
    """Exposes the overflow counts of limiters and aggregators (summed per metric).

    # TYPE aifinops_series_overflow_total counter
    aifinops_series_overflow_total{metric="aifinops_llm_tokens_total"} 12
    """

    def __init__(self, limiters: Iterable[FoldCounter]) -> None:
        self._limiters = list(limiters)

    def collect(self) -> Iterable[Metric]:
        """One sample per metric that has folded anything (summed over the limiters)."""
        family = CounterMetricFamily(
            "aifinops_series_overflow",
            "Observations whose label values were folded into __other__ because a label reached "
            "its limit or the metric family its series budget.",
            labels=["metric"],
        )
        totals: dict[str, int] = {}
        for limiter in self._limiters:
            for metric, n in limiter.overflow().items():
                totals[metric] = totals.get(metric, 0) + n
        for metric, n in sorted(totals.items()):
            family.add_metric([metric], n)
        yield family
