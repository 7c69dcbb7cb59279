"""Keeps every metric's label values bounded: values beyond a limit fold into `__other__` and are counted."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

OTHER = "__other__"
DEFAULT_MAX_VALUES = 500


class LabelLimiter:
    """Admits at most `max_values` distinct values per label per metric (a per-label limit may
    override it); a value arriving once a label is full becomes `__other__`.

    Values seen first keep their own series for the life of the process, so a series never
    changes its meaning; the overflow is visible in `aifinops_series_overflow_total{metric}`,
    which counts the observations folded.
    """

    def __init__(
        self, max_values: int = DEFAULT_MAX_VALUES, per_label: Mapping[str, int] | None = None
    ) -> None:
        self._max_values = max_values
        self._per_label = dict(per_label or {})
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], set[str]] = {}
        self._overflow: dict[str, int] = {}

    def fold(self, metric: str, names: Sequence[str], values: Sequence[str]) -> tuple[str, ...]:
        """The label values to record for one observation of `metric`."""
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
            if folded:
                self._overflow[metric] = self._overflow.get(metric, 0) + 1
        return tuple(out)

    def overflow(self) -> dict[str, int]:
        """Folded observations per metric so far."""
        with self._lock:
            return dict(self._overflow)


class OverflowCollector(Collector):
    """Exposes the limiter's overflow counts.

    # TYPE aifinops_series_overflow_total counter
    aifinops_series_overflow_total{metric="aifinops_llm_tokens_total"} 12
    """

    def __init__(self, limiters: Iterable[LabelLimiter]) -> None:
        self._limiters = list(limiters)

    def collect(self) -> Iterable[Metric]:
        """One sample per metric that has folded anything (summed over the limiters)."""
        family = CounterMetricFamily(
            "aifinops_series_overflow",
            "Observations whose label values were folded into __other__ because a label reached its limit.",
            labels=["metric"],
        )
        totals: dict[str, int] = {}
        for limiter in self._limiters:
            for metric, n in limiter.overflow().items():
                totals[metric] = totals.get(metric, 0) + n
        for metric, n in sorted(totals.items()):
            family.add_metric([metric], n)
        yield family
