"""Label values stay bounded per metric and label; the overflow is counted, never silent."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from aifinops.exporters.cardinality import OTHER, LabelLimiter, OverflowCollector


def test_values_beyond_the_limit_fold_into_other_and_are_counted():
    limiter = LabelLimiter(max_values=2, per_label={"model": 3})
    names = ("team", "model")
    assert limiter.fold("m", names, ("a", "x")) == ("a", "x")
    assert limiter.fold("m", names, ("b", "y")) == ("b", "y")
    assert limiter.fold("m", names, ("c", "z")) == (OTHER, "z")
    assert limiter.fold("m", names, ("a", "w")) == ("a", OTHER)
    # Values admitted earlier keep their own series.
    assert limiter.fold("m", names, ("b", "x")) == ("b", "x")
    # Limits are per metric.
    assert limiter.fold("other", names, ("c", "w")) == ("c", "w")
    assert limiter.overflow() == {"m": 2}


def test_overflow_is_exposed_per_metric():
    limiter = LabelLimiter(max_values=1)
    limiter.fold("aifinops_llm_tokens_total", ("team",), ("a",))
    limiter.fold("aifinops_llm_tokens_total", ("team",), ("b",))
    registry = CollectorRegistry()
    registry.register(OverflowCollector([limiter]))
    value = registry.get_sample_value(
        "aifinops_series_overflow_total", {"metric": "aifinops_llm_tokens_total"}
    )
    assert value == 1
