"""The shared LLM pipeline: aggregation, the metric families, label folding, budgets, dedupe."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from prometheus_client import CollectorRegistry

from aifinops.exporters.config import CardinalityConfig, LLMConfig, TeamBudget
from aifinops.exporters.events import USAGE_TYPE, EventError, make_event
from aifinops.exporters.llm import DedupeWindow, UsageIngest

WHEN = datetime(2025, 9, 1, 12, tzinfo=UTC)


def event(event_id="e1", source="gw", **data):
    base = {
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "team": "ml",
        "app": "chat",
        "input_tokens": 12_000,
        "cache_read_tokens": 8_000,
        "cache_write_tokens": 2_000,
        "output_tokens": 1_000,
    }
    base.update(data)
    return make_event(USAGE_TYPE, source, base, event_id=event_id, time=WHEN)


def pipeline(**llm) -> tuple[UsageIngest, CollectorRegistry]:
    config = LLMConfig(**llm)
    ingest = UsageIngest.from_config(config, sources=("http",))
    registry = CollectorRegistry()
    for collector in ingest.collectors(config.budgets):
        registry.register(collector)
    return ingest, registry


def value(registry, name, **labels):
    return registry.get_sample_value(name, labels)


def test_an_event_counts_requests_tokens_dollars_and_prices():
    ingest, registry = pipeline()
    assert ingest.apply(ingest.prepare(event(), now=WHEN), "http")
    attribution = dict(provider="anthropic", model="claude-sonnet-4-5", team="ml", app="chat")
    assert value(registry, "aifinops_llm_requests_total", **attribution, status="ok") == 1
    tokens = {
        t: value(registry, "aifinops_llm_tokens_total", **attribution, token_type=t)
        for t in ("input", "cache_read", "cache_write", "output")
    }
    assert tokens == {"input": 2000, "cache_read": 8000, "cache_write": 2000, "output": 1000}
    dollars = {
        t: value(registry, "aifinops_llm_cost_usd_total", **attribution, token_type=t)
        for t in tokens
    }
    assert dollars == {"input": 0.006, "cache_read": 0.0024, "cache_write": 0.0075, "output": 0.015}
    assert (
        value(
            registry,
            "aifinops_llm_price_usd_per_million_tokens",
            provider="anthropic",
            model="claude-sonnet-4-5",
            token_type="cache_write",
        )
        == 3.75
    )
    assert value(registry, "aifinops_ingest_events_total", source="http", outcome="accepted") == 1


def test_cost_sums_are_exact_decimals():
    ingest, _ = pipeline()
    for i in range(1000):
        priced = ingest.prepare(
            event(
                f"e{i}", input_tokens=1, cache_read_tokens=0, cache_write_tokens=0, output_tokens=0
            ),
            now=WHEN,
        )
        ingest.apply(priced, "http")
    snap = ingest.aggregator.snapshot()
    key = ("anthropic", "claude-sonnet-4-5", "ml", "chat", "input")
    # 1000 calls of one token at $3/M: exactly $0.003, no float drift.
    assert snap.cost[key] == Decimal("0.003")
    assert snap.tokens[key] == 1000


def test_a_duplicate_is_counted_once_and_reported():
    ingest, registry = pipeline()
    first = ingest.prepare(event("same"), now=WHEN)
    assert ingest.apply(first, "http") is True
    assert ingest.apply(ingest.prepare(event("same"), now=WHEN), "http") is False
    # The same id from another source is another event.
    assert ingest.apply(ingest.prepare(event("same", source="other"), now=WHEN), "http") is True
    assert value(registry, "aifinops_ingest_events_total", source="http", outcome="duplicate") == 1
    assert sum(ingest.aggregator.snapshot().requests.values()) == 2


def test_unpriced_model_counts_tokens_and_the_unpriced_family():
    ingest, registry = pipeline()
    ingest.apply(
        ingest.prepare(
            event(model="in-house-9", cache_read_tokens=0, cache_write_tokens=0), now=WHEN
        ),
        "http",
    )
    assert (
        value(
            registry,
            "aifinops_llm_unpriced_requests_total",
            provider="anthropic",
            model="in-house-9",
        )
        == 1
    )
    assert (
        value(
            registry,
            "aifinops_llm_tokens_total",
            provider="anthropic",
            model="in-house-9",
            team="ml",
            app="chat",
            token_type="input",
        )
        == 12_000
    )
    assert (
        value(
            registry,
            "aifinops_llm_cost_usd_total",
            provider="anthropic",
            model="in-house-9",
            team="ml",
            app="chat",
            token_type="output",
        )
        == 0
    )


def test_label_values_fold_into_other_beyond_the_limit_and_count_overflow():
    ingest, registry = pipeline(cardinality=CardinalityConfig(max_values=50, per_label={"app": 2}))
    for i in range(5):
        ingest.apply(ingest.prepare(event(f"e{i}", app=f"app-{i}"), now=WHEN), "http")
    requests = ingest.aggregator.snapshot().requests
    apps = sorted(key[3] for key in requests)
    assert apps == ["__other__", "app-0", "app-1"]
    assert requests[("anthropic", "claude-sonnet-4-5", "ml", "__other__", "ok")] == 3
    assert (
        value(registry, "aifinops_series_overflow_total", metric="aifinops_llm_requests_total") == 3
    )
    assert (
        value(registry, "aifinops_series_overflow_total", metric="aifinops_llm_cost_usd_total") == 3
    )


def test_budgets_from_config():
    _, registry = pipeline(
        budgets={
            "ml": TeamBudget(daily=Decimal(20), monthly=Decimal("500.5")),
            "web": TeamBudget(monthly=Decimal(100)),
        }
    )
    assert value(registry, "aifinops_budget_usd", team="ml", period="daily") == 20
    assert value(registry, "aifinops_budget_usd", team="ml", period="monthly") == 500.5
    assert value(registry, "aifinops_budget_usd", team="web", period="monthly") == 100
    assert value(registry, "aifinops_budget_usd", team="web", period="daily") is None


def test_prepare_has_no_side_effect_and_reports_problems():
    ingest, registry = pipeline()
    with pytest.raises(EventError) as info:
        ingest.prepare(event(input_tokens=-1), now=WHEN)
    assert [p.field for p in info.value.problems] == ["data.input_tokens"]
    ingest.prepare(event("x"), now=WHEN)
    assert ingest.aggregator.snapshot().requests == {}
    assert ("gw", "x") not in ingest.dedupe
    ingest.reject("http", 3)
    assert value(registry, "aifinops_ingest_events_total", source="http", outcome="rejected") == 3


def test_a_response_the_catalogue_cannot_price_consistently_is_refused_at_prepare():
    ingest, _ = pipeline()
    body = {
        "model": "claude-sonnet-4-5",
        "usage": {
            "input_tokens": 10,
            "cache_creation_input_tokens": 1,
            "output_tokens": 1,
            "cache_creation": {"ephemeral_1h_input_tokens": 5},
        },
    }
    raw = make_event(USAGE_TYPE, "gw", {"provider": "anthropic", "response": body})
    with pytest.raises(EventError) as info:
        ingest.prepare(raw)
    assert info.value.problems[0].field == "data.response"
    assert "cache_write_1h_tokens" in info.value.problems[0].reason


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_dedupe_window_expires_and_stays_bounded():
    clock = Clock()
    window = DedupeWindow(window_seconds=100, max_entries=1000, buckets=10, clock=clock)
    assert window.add(("s", "1"))
    assert not window.add(("s", "1"))
    clock.now = 99
    assert not window.add(("s", "1"))
    clock.now = 111  # past the window (and its bucket's slice)
    assert window.add(("s", "1"))
    for i in range(10_000):
        window.add(("s", f"n{i}"))
    assert len(window) <= 1000
    assert window.evicted >= 9000
    # The newest are remembered; the oldest were forgotten first.
    assert ("s", "n9999") in window
    assert ("s", "n0") not in window


def test_dedupe_forget():
    window = DedupeWindow()
    window.add(("s", "1"))
    window.forget(("s", "1"))
    assert window.add(("s", "1"))
