"""The cheaper-model what-if (docs/savings.md): the exporters expose the configured what-if models'
prices before anyone calls them, and those prices, applied per token type the way the rule pack
does, give what genai-prices charges for the same tokens."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import _jsonnet
import pytest
from genai_prices import Usage, calc_price

from aifinops.exporters.config import DEFAULT_WHAT_IF_MODELS, LLMConfig, WhatIfModel
from aifinops.exporters.events.providers import prices_provider_id
from aifinops.exporters.events.usage import TOKEN_TYPES
from aifinops.exporters.llm import UsageIngest
from aifinops.exporters.runtime.config import ConfigError

REPO = Path(__file__).resolve().parents[4]
WHEN = datetime(2026, 1, 15, tzinfo=UTC)
PRICE = "aifinops_llm_price_usd_per_million_tokens"


def price_gauge(ingest: UsageIngest) -> dict[tuple[str, str, str], Decimal]:
    """The price gauge's samples as the exporters serve them: (provider, model, token_type) -> rate."""
    out = {}
    for collector in ingest.collectors():
        for family in collector.collect():
            if family.name == PRICE:
                for sample in family.samples:
                    labels = sample.labels
                    key = (labels["provider"], labels["model"], labels["token_type"])
                    out[key] = Decimal(repr(sample.value))
    return out


def test_the_default_what_if_models_are_the_mixins_cheaper_models():
    mapping = json.loads(
        _jsonnet.evaluate_snippet(
            "m",
            "(import 'config.libsonnet')._config.savingsCheaperModels",
            jpathdir=[str(REPO / "jsonnet")],
        )
    )
    targets = {(p, to) for p, models in mapping.items() for to in models.values()}
    assert {(m.provider, m.model) for m in DEFAULT_WHAT_IF_MODELS} == targets


def test_what_if_prices_are_exposed_before_any_call():
    gauge = price_gauge(UsageIngest.from_config(LLMConfig()))
    for model in DEFAULT_WHAT_IF_MODELS:
        rates = [gauge.get((model.provider, model.model, t)) for t in TOKEN_TYPES]
        assert all(r is not None and r > 0 for r in rates), (model, rates)
    # Only those: no other model has a price before its first call.
    assert {(p, m) for p, m, _ in gauge} == {(w.provider, w.model) for w in DEFAULT_WHAT_IF_MODELS}


# Per call: (uncached input, cache read, cache write, output) tokens, and the number of calls.
# Prices are per call (a call above a long-context threshold pays another tier), so the rule
# pack's what-if stands for calls of the base tier, as these are.
TRAFFIC = [((1000, 3000, 0, 200), 1440), ((12_345, 3_001, 250, 987), 1_000_003)]


@pytest.mark.parametrize("model", DEFAULT_WHAT_IF_MODELS, ids=lambda m: m.model)
@pytest.mark.parametrize(("tokens", "calls"), TRAFFIC, ids=str)
def test_what_if_cost_per_token_type_equals_genai_prices(model: WhatIfModel, tokens, calls):
    ingest = UsageIngest.from_config(LLMConfig(what_if_models=()))
    ingest.expose_what_if_prices([model], WHEN)
    gauge = price_gauge(ingest)
    # What the rule pack computes from the token counters: sum over token types of
    # tokens x rate / 1e6.
    what_if = sum(
        (
            Decimal(n * calls) * gauge[(model.provider, model.model, t)] / Decimal(1_000_000)
            for n, t in zip(tokens, TOKEN_TYPES, strict=True)
        ),
        Decimal(0),
    )
    uncached, cache_read, cache_write, output = tokens
    per_call = calc_price(
        Usage(
            input_tokens=uncached + cache_read + cache_write,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            output_tokens=output,
        ),
        model.model,
        provider_id=prices_provider_id(model.provider),
        genai_request_timestamp=WHEN,
    ).total_price
    assert what_if == per_call * calls


def test_a_priced_call_replaces_the_what_if_price():
    ingest = UsageIngest.from_config(LLMConfig(what_if_models=()))
    ingest.aggregator.seed_prices("openai", "gpt-4o-mini", tuple(Decimal(9) for _ in TOKEN_TYPES))
    ingest.expose_what_if_prices([WhatIfModel("openai", "gpt-4o-mini")], WHEN)
    # The first seed stays (exposing again does not overwrite)...
    assert price_gauge(ingest)[("openai", "gpt-4o-mini", "input")] == 9
    event = {
        "specversion": "1.0",
        "id": "what-if-1",
        "source": "test",
        "type": "io.aifinops.llm.usage.v1",
        "time": "2026-01-15T00:00:00Z",
        "data": {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "team": "t",
            "app": "a",
            "input_tokens": 1000,
            "output_tokens": 10,
        },
    }
    ingest.apply(ingest.prepare(event, now=WHEN), "http")
    # ...a priced call writes the rates it was charged at.
    assert price_gauge(ingest)[("openai", "gpt-4o-mini", "input")] == Decimal("0.15")


def test_a_what_if_model_without_a_price_fails_naming_it():
    with pytest.raises(ConfigError) as error:
        UsageIngest.from_config(
            LLMConfig(
                what_if_models=(
                    WhatIfModel("openai", "gpt-4o-mini"),
                    WhatIfModel("openai", "no-such-model"),
                )
            )
        )
    assert error.value.problems == [
        "llm.what_if_models[1]: openai/no-such-model has no price in the catalogue or the overrides"
    ]


def test_what_if_model_names_are_bounded_label_values():
    problems = WhatIfModel("openai", "x" * 129).validate() + WhatIfModel("", "m").validate()
    assert [field for field, _ in problems] == ["model", "provider"]
