"""Pricing: the cached rate cards equal genai-prices' calc_price; tiers, cache prices, overrides, precedence."""

from __future__ import annotations

import json
import logging
import random
import threading
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from genai_prices import Usage, calc_price, data_snapshot

from aifinops.exporters.events import parse_usage
from aifinops.exporters.llm.overrides import load_overrides
from aifinops.exporters.pricing import (
    Pricer,
    PriceUpdater,
    PricingError,
    RateCard,
    split,
)
from aifinops.exporters.runtime.config import ConfigError

MICRO = Decimal("0.000001")
WHEN = datetime(2025, 9, 1, 12, tzinfo=UTC)
# Exercise conditional prices: an old date and DeepSeek's off-peak hours (16:30-00:30 UTC).
TIMES = [datetime(2024, 3, 1, 9, tzinfo=UTC), datetime(2025, 9, 1, 17, 15, tzinfo=UTC)]


def record(provider="openai", model="gpt-4o", **tokens):
    data = {"provider": provider, "model": model, "team": "t", "app": "a"}
    data.update({"input_tokens": 0, "output_tokens": 0})
    data.update(tokens)
    return parse_usage(data)


def random_tokens(rng: random.Random) -> dict[str, int]:
    total = rng.choice(
        [0, 1, 999, 128_000, 128_001, 200_000, 200_001, 272_001, rng.randint(0, 1_500_000)]
    )
    cache_read = rng.randint(0, total) if rng.random() < 0.6 else 0
    cache_write = rng.randint(0, total - cache_read) if rng.random() < 0.4 else 0
    output = rng.randint(0, 60_000)
    reasoning = rng.randint(0, output) if rng.random() < 0.4 else 0
    return {
        "input_tokens": total,
        "cache_read_tokens": cache_read,
        "cache_write_tokens": cache_write,
        "output_tokens": output,
        "reasoning_tokens": reasoning,
    }


def genai_total(provider_id: str, model: str, tokens: dict[str, int], when: datetime) -> Decimal:
    return calc_price(
        Usage(
            input_tokens=tokens["input_tokens"],
            cache_read_tokens=tokens["cache_read_tokens"],
            cache_write_tokens=tokens["cache_write_tokens"],
            output_tokens=tokens["output_tokens"],
            output_reasoning_tokens=tokens["reasoning_tokens"],
        ),
        model,
        provider_id=provider_id,
        genai_request_timestamp=when,
    ).total_price


def test_cached_pricing_equals_calc_price_across_the_whole_catalogue():
    from aifinops.exporters.events.providers import otel_provider_name

    pricer = Pricer()
    rng = random.Random(20250901)
    compared = tiered = cached = 0
    for provider in data_snapshot.get_snapshot().providers:
        label = otel_provider_name(provider.id)
        for model in provider.models:
            for when in TIMES:
                for _ in range(2):
                    tokens = random_tokens(rng)
                    cost = pricer.price(record(label, model.id, **tokens), when)
                    try:
                        expected = genai_total(provider.id, model.id, tokens, when)
                    except LookupError:  # an id its own match rule does not cover
                        assert cost.source == "unpriced"
                        continue
                    assert cost.source == "catalogue", (provider.id, model.id)
                    assert cost.total.quantize(MICRO) == expected.quantize(MICRO), (
                        provider.id,
                        model.id,
                        tokens,
                        when,
                    )
                    assert cost.total == expected  # not only to the micro-dollar: exactly
                    assert sum(cost.by_type) == cost.total
                    compared += 1
                    card = pricer.card(label, model.id, when)
                    tiered += any(u.tiers for u in card.units) and tokens["input_tokens"] > 128_000
                    cached += tokens["cache_read_tokens"] > 0 or tokens["cache_write_tokens"] > 0
    assert compared > 8000
    assert tiered > 100
    assert cached > 4000


def test_long_context_tier_applies_to_all_tokens_past_the_threshold():
    pricer = Pricer()
    below = pricer.price(record("gcp.gemini", "gemini-2.5-pro", input_tokens=200_000), WHEN)
    above = pricer.price(record("gcp.gemini", "gemini-2.5-pro", input_tokens=200_001), WHEN)
    assert below.total == Decimal("0.25")  # $1.25/M
    assert above.total == Decimal("0.5000025")  # $2.50/M on every token
    assert above.rates[0] == Decimal("2.5")


def test_cache_prices_and_the_split_by_token_type():
    pricer = Pricer()
    cost = pricer.price(
        record(
            "anthropic",
            "claude-sonnet-4-5",
            input_tokens=12_000,
            cache_read_tokens=8_000,
            cache_write_tokens=2_000,
            output_tokens=1_000,
        ),
        WHEN,
    )
    # $3 input, $0.30 cache read, $3.75 cache write, $15 output per million tokens.
    assert cost.by_type == (
        Decimal("0.006"),
        Decimal("0.0024"),
        Decimal("0.0075"),
        Decimal("0.015"),
    )
    assert cost.rates == (Decimal(3), Decimal("0.3"), Decimal("3.75"), Decimal(15))


def test_cache_tokens_of_a_model_without_cache_prices_are_charged_as_input_under_their_type():
    pricer = Pricer()
    card = pricer.card("openai", "gpt-3.5-turbo", WHEN)
    assert "cache_read_tokens" not in {u.usage_key for u in card.units}
    tokens = dict(input_tokens=1000, cache_read_tokens=400, output_tokens=10)
    cost = pricer.price(record("openai", "gpt-3.5-turbo", **tokens), WHEN)
    rate = cost.rates[0]
    assert cost.rates[1] == rate
    assert cost.by_type[0] == rate * 600 / 1_000_000
    assert cost.by_type[1] == rate * 400 / 1_000_000
    assert cost.total == genai_total(
        "openai",
        "gpt-3.5-turbo",
        {**tokens, "cache_write_tokens": 0, "reasoning_tokens": 0},
        WHEN,
    )


def test_reported_cost_wins_and_is_split_like_the_catalogue_would():
    pricer = Pricer()
    catalogue = pricer.price(record(input_tokens=1000, output_tokens=1000), WHEN)
    reported = pricer.price(
        record(input_tokens=1000, output_tokens=1000, cost_usd=Decimal("0.01")), WHEN
    )
    assert reported.source == "reported"
    assert reported.total == Decimal("0.01")
    assert reported.rates is None
    ratio = catalogue.by_type[3] / catalogue.total
    assert reported.by_type[3] == Decimal("0.01") - reported.by_type[0]
    assert abs(reported.by_type[3] / Decimal("0.01") - ratio) < Decimal("1e-20")


def test_reported_cost_of_an_unknown_model_is_split_by_tokens_and_not_unpriced():
    cost = Pricer().price(
        record("openai", "my-finetune", input_tokens=300, output_tokens=100, cost_usd=2), WHEN
    )
    assert cost.priced and cost.source == "reported"
    assert cost.by_type == (Decimal("1.5"), Decimal(0), Decimal(0), Decimal("0.5"))


def test_split_sums_exactly():
    parts = split(Decimal("0.1"), [1, 1, 1, 0])
    assert sum(parts) == Decimal("0.1")
    assert split(Decimal(5), [0, 0, 0, 0]) == (Decimal(5), 0, 0, 0)


def test_unknown_model_is_unpriced_and_logged_once(caplog):
    pricer = Pricer()
    caplog.set_level(logging.WARNING, logger="aifinops.exporters.pricing.pricer")
    for _ in range(3):
        cost = pricer.price(record("openai", "no-such-model-x", input_tokens=10), WHEN)
        assert (cost.source, cost.total, cost.priced) == ("unpriced", 0, False)
    pricer.price(record("ibm.watsonx.ai", "granite-13b", input_tokens=10), WHEN)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "provider=openai model=no-such-model-x" in lines[0]


def write(tmp_path, text):
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    return path


def test_overrides_per_token_type_discount_and_effective_date(tmp_path):
    overrides = load_overrides(
        write(
            tmp_path,
            """
overrides:
  - provider: openai
    model: gpt-4o
    prices: {input: 2.0, output: 8}
  - provider: openai
    model: gpt-4o
    prices: {input: 1.0}
    effective_from: 2025-10-01
  - provider: anthropic
    model: "claude-sonnet-4*"
    discount_percent: 10
  - provider: anthropic
    model: "*"
    discount_percent: 50
  - provider: openai
    model: in-house-7b
    prices: {input: 0.1, output: 0.2}
""",
        )
    )
    pricer = Pricer(overrides)
    tokens = dict(input_tokens=1_000_000, output_tokens=1_000_000)
    sept = pricer.price(record("openai", "gpt-4o", **tokens), WHEN)
    assert (sept.source, sept.by_type[0], sept.by_type[3]) == ("override", 2, 8)
    october = pricer.price(record("openai", "gpt-4o", **tokens), datetime(2025, 10, 2, tzinfo=UTC))
    # The later override replaces input only; output keeps the catalogue price, not the older override.
    catalogue = Pricer().price(record("openai", "gpt-4o", **tokens), WHEN)
    assert october.by_type[0] == 1
    assert october.by_type[3] == catalogue.by_type[3]
    # The more specific pattern wins over "*"; every price (cache included) is discounted.
    sonnet = pricer.price(record("anthropic", "claude-sonnet-4-5", **tokens), WHEN)
    plain = Pricer().price(record("anthropic", "claude-sonnet-4-5", **tokens), WHEN)
    assert sonnet.total == plain.total * Decimal("0.9")
    haiku = pricer.price(record("anthropic", "claude-3-5-haiku-latest", **tokens), WHEN)
    assert (
        haiku.total
        == Pricer().price(record("anthropic", "claude-3-5-haiku-latest", **tokens), WHEN).total / 2
    )
    # A model the catalogue lacks is priced from the override alone.
    own = pricer.price(record("openai", "in-house-7b", **tokens), WHEN)
    assert (own.source, own.total) == ("override", Decimal("0.3"))


def test_override_file_problems_are_all_listed(tmp_path):
    path = write(
        tmp_path,
        """
overrides:
  - provider: openai
    prices: {inputs: 2, output: -1}
  - provider: anthropic
    discount_percent: 120
    effective_from: someday
  - model: x
    discount_percent: 5
  - provider: openai
""",
    )
    with pytest.raises(ConfigError) as info:
        load_overrides(path)
    text = "\n".join(info.value.problems)
    for expected in (
        "overrides[0].prices.inputs: unknown token type",
        "overrides[0].prices.output: must not be negative",
        "overrides[1].discount_percent: must be between 0 and 100",
        "overrides[1].effective_from: must be a date",
        "overrides[2].provider: required",
        "overrides[3]: needs prices or discount_percent",
    ):
        assert expected in text


def test_rate_card_refuses_inconsistent_detail():
    card = Pricer().card("anthropic", "claude-sonnet-4-5", WHEN)
    with pytest.raises(PricingError, match="cache_write_1h_tokens"):
        card.cost({"input_tokens": 10, "cache_write_tokens": 1, "cache_write_1h_tokens": 5})
    with pytest.raises(PricingError, match="require explicit"):
        card.cost({"input_tokens": 10, "cache_write_1h_tokens": 5})


def test_flat_card_prices_standard_types():
    card = RateCard.flat("p", "m", {"input": Decimal(1), "output": Decimal(2)})
    cost = card.cost({"input_tokens": 2_000_000, "cache_read_tokens": 500_000, "output_tokens": 10})
    assert cost.by_type == (Decimal("1.5"), Decimal("0.5"), Decimal(0), Decimal("0.00002"))


class _Catalogue(BaseHTTPRequestHandler):
    body = json.dumps(
        [
            {
                "id": "openai",
                "name": "OpenAI",
                "api_pattern": "https://api\\.openai\\.com",
                "models": [
                    {
                        "id": "gpt-4o",
                        "match": {"equals": "gpt-4o"},
                        "prices": {"input_mtok": 100, "output_mtok": 200},
                    }
                ],
            }
        ]
    ).encode()

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def test_auto_update_installs_a_fetched_catalogue_and_pricing_follows_it():
    server = HTTPServer(("127.0.0.1", 0), _Catalogue)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    pricer = Pricer()
    before = pricer.price(record(input_tokens=1_000_000), WHEN)
    try:
        PriceUpdater(f"http://127.0.0.1:{server.server_port}/data.json").fetch()
        after = pricer.price(record(input_tokens=1_000_000), WHEN)
        assert after.total == 100
    finally:
        data_snapshot.set_custom_snapshot(None)
        server.shutdown()
    assert pricer.price(record(input_tokens=1_000_000), WHEN).total == before.total != 100
