"""Money in integer units of 1e-24 USD is exact: it equals the Decimal arithmetic genai-prices does,
sums exactly next to Decimal parts, and shows as the nearest float; and the dedupe window's batch
look-up counts each identity once."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

from genai_prices import data_snapshot
from prometheus_client import CollectorRegistry

from aifinops.exporters.config import LLMConfig
from aifinops.exporters.events import USAGE_TYPE, make_event, parse_usage
from aifinops.exporters.events.providers import otel_provider_name
from aifinops.exporters.events.usage import STANDARD_USAGE_KEYS
from aifinops.exporters.llm import DedupeWindow, UsageIngest
from aifinops.exporters.pricing import Pricer, RateCard
from aifinops.exporters.pricing.ratecard import UNITS_PER_USD, exact_units, units_to_usd

WHEN = datetime(2025, 9, 1, 12, tzinfo=UTC)


def random_counts(rng: random.Random) -> tuple[int, int, int, int, int]:
    total = rng.choice([0, 1, 999, 128_001, 200_001, rng.randint(0, 2_000_000), 10**12])
    cache_read = rng.randint(0, total) if rng.random() < 0.5 else 0
    cache_write = rng.randint(0, total - cache_read) if rng.random() < 0.4 else 0
    output = rng.choice([0, rng.randint(0, 60_000), 10**12])
    reasoning = rng.randint(0, output) if rng.random() < 0.4 else 0
    return (total, cache_read, cache_write, output, reasoning)


def test_integer_units_equal_the_decimal_path_for_every_catalogue_model():
    pricer = Pricer()
    rng = random.Random(24)
    compared = exact_cards = cards = 0
    for provider in data_snapshot.get_snapshot().providers:
        label = otel_provider_name(provider.id)
        for model in provider.models:
            card = pricer.card(label, model.id, WHEN)
            if card is None:
                continue
            cards += 1
            exact_cards += card.cost_counts((1, 0, 0, 1, 0)).units is not None
            for _ in range(3):
                counts = random_counts(rng)
                # The same report with Decimal counts takes the Decimal path, priced as
                # genai-prices prices (rate * count / per).
                as_decimals = {
                    k: Decimal(v) for k, v in zip(STANDARD_USAGE_KEYS, counts, strict=True)
                }
                try:
                    fast = card.cost_counts(counts)
                except ValueError as exc:  # PricingError: both paths must refuse it alike
                    try:
                        card.cost(as_decimals)
                    except ValueError as again:
                        assert str(again) == str(exc)
                        continue
                    raise
                slow = card.cost(as_decimals)
                assert slow.units is None
                assert fast.by_type == slow.by_type, (provider.id, model.id, counts)
                assert fast.rates == slow.rates
                compared += 1
    assert compared > 6_000
    # Nearly every catalogue price is a whole number of 1e-24 USD per token.
    assert exact_cards > 0.95 * cards


def test_a_price_with_more_digits_than_the_units_hold_is_priced_in_decimal():
    price = Decimal("0.1234567890123456789012345678")  # USD per million tokens
    card = RateCard.flat("acme", "m", {"input": price, "output": Decimal(2)})
    cost = card.cost_counts((1_000, 0, 0, 10, 0))
    assert cost.units is None
    assert cost.by_type[0] == price * Decimal(1_000) / 1_000_000
    assert cost.by_type[3] == Decimal("0.00002")
    assert exact_units(Decimal("2.5"), 1_000_000) == 2_500_000 * 10**12
    assert exact_units(Decimal(1), 3) is None
    assert units_to_usd(123 * 10**20) == Decimal("0.0123")


def test_unit_and_decimal_costs_of_one_series_sum_exactly_and_show_as_the_nearest_float():
    config = LLMConfig()
    ingest = UsageIngest.from_config(config, sources=("http",))
    registry = CollectorRegistry()
    for collector in ingest.collectors():
        registry.register(collector)
    data = {"provider": "openai", "model": "gpt-4o", "team": "ml", "app": "chat"}
    expected = Decimal(0)
    for i in range(300):
        reported = {"cost_usd": 1 / 3} if i % 3 == 0 else {}  # 0.3333333333333333 as written
        event = make_event(
            USAGE_TYPE,
            "gw",
            {**data, "input_tokens": 1_000 + i, "output_tokens": 7 * i, **reported},
            event_id=str(i),
            time=WHEN,
        )
        priced = ingest.prepare(event, now=WHEN)
        assert ingest.apply(priced, "http")
        expected += priced.cost.total
    snapshot = ingest.aggregator.snapshot()
    assert snapshot.cost_extra  # both kinds of parts are there
    total = sum(snapshot.cost.values(), Decimal(0))
    assert total == expected
    shown = {labels: value for labels, value in snapshot.cost_floats() if labels[-1] == "input"}
    key = ("openai", "gpt-4o", "ml", "chat", "input")
    assert shown[key] == float(snapshot.cost[key])
    assert registry.get_sample_value(
        "aifinops_llm_cost_usd_total",
        dict(zip(("provider", "model", "team", "app"), key[:4], strict=True), token_type="input"),
    ) == float(snapshot.cost[key])
    catalogue = parse_usage({**data, "input_tokens": 10, "output_tokens": 0})
    units = Pricer().price(catalogue, WHEN).units
    assert units is not None and units[0] == 10 * 25 * 10**17  # $2.50/M in 1e-24 USD
    assert units[0] / UNITS_PER_USD == 0.000025


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_dedupe_add_all_counts_repeats_within_a_batch_once():
    window = DedupeWindow()
    assert window.add_all([("s", "1"), ("s", "2"), ("s", "1"), ("t", "1")]) == [
        True,
        True,
        False,
        True,
    ]
    assert window.add_all([("s", "2"), ("s", "3")]) == [False, True]
    assert len(window) == 4


def test_a_forgotten_identity_added_again_outlives_its_first_bucket():
    clock = Clock()
    window = DedupeWindow(window_seconds=100, max_entries=1000, buckets=10, clock=clock)
    assert window.add(("s", "a"))
    window.forget(("s", "a"))
    clock.now = 50
    assert window.add(("s", "a"))  # remembered again, in a later bucket
    clock.now = 115  # the first bucket expires; the second holds it still
    assert ("s", "a") in window
    assert not window.add(("s", "a"))
    clock.now = 200
    assert ("s", "a") not in window
    assert len(window) == 0


def test_dedupe_memory_stays_bounded_through_batches():
    window = DedupeWindow(window_seconds=100, max_entries=1000, buckets=10, clock=Clock())
    for start in range(0, 10_000, 500):
        window.add_all([("s", str(i)) for i in range(start, start + 500)])
    assert len(window) <= 1000
    assert window.evicted >= 9000
    assert ("s", "9999") in window
    assert ("s", "0") not in window
