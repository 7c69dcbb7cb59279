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


def test_new_label_sets_beyond_the_series_budget_fold_whole_and_are_counted():
    limiter = LabelLimiter(max_values=1000, max_series=8)
    names = ("team", "app")
    assert limiter.fold("m", names, ("a", "x"), 4) == ("a", "x")
    assert limiter.fold("m", names, ("a", "y"), 4) == ("a", "y")
    # The budget is spent: a new set folds whole; admitted sets keep their series.
    assert limiter.fold("m", names, ("b", "x"), 4) == (OTHER, OTHER)
    assert limiter.fold("m", names, ("a", "x"), 4) == ("a", "x")
    assert limiter.overflow() == {"m": 1}
    # Only the all-__other__ set is ever admitted beyond the budget.
    assert limiter.series() == {"m": 12}
    assert limiter.fold_all("n", 2, 4) == (OTHER, OTHER)
    assert limiter.overflow() == {"m": 1, "n": 1}


def test_500_teams_by_400_apps_stay_within_the_series_budget():
    from datetime import UTC, datetime

    from aifinops.exporters.config import CardinalityConfig, LLMConfig
    from aifinops.exporters.llm import UsageIngest
    from aifinops.exporters.llm.aggregator import COST, REQUESTS, TOKENS

    budget = 4000
    ingest = UsageIngest.from_config(
        LLMConfig(cardinality=CardinalityConfig(max_series=budget)), sources=("http",)
    )
    now = datetime.now(UTC)
    for team in range(500):
        for app in range(0, 400, 4):  # 50,000 label sets, a quarter of the 200,000
            event = {
                "specversion": "1.0",
                "id": f"{team}-{app}",
                "source": "t",
                "type": "io.aifinops.llm.usage.v1",
                "data": {
                    "provider": "openai",
                    "model": "gpt-4o",
                    "team": f"team-{team}",
                    "app": f"app-{app}",
                    "input_tokens": 10,
                    "output_tokens": 1,
                },
            }
            ingest.apply(ingest.prepare(event, now=now), "http")
    snap = ingest.aggregator.snapshot()
    for family, rows, per_set in ((TOKENS, snap.tokens, 4), (COST, snap.cost_units, 4)):
        assert budget <= len(rows) <= budget + per_set, family
    assert len(snap.requests) <= budget
    # Nothing is lost: the folded sets' tokens count under __other__.
    assert sum(snap.tokens.values()) == 50_000 * 11
    other = (OTHER, OTHER, OTHER, OTHER, "output")
    assert snap.tokens[other] == 50_000 - budget // 4
    overflow = ingest.aggregator.limiter.overflow()
    assert overflow[TOKENS] == overflow[COST] == overflow[REQUESTS] == 50_000 - budget // 4
