"""FOCUS rows from counted events, without Kafka: list versus negotiated prices, reported and
unpriced calls, GPU holders, currency per charge period, rounding and the file formats.

Expected figures are worked out here from published per-million prices (genai-prices: openai
gpt-4o $2.5 input, $1.25 cache read, $10 output), not by calling the pricing code.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest

from aifinops.exporters.cardinality import LabelLimiter
from aifinops.exporters.currency import NoRateError, RateSchedule, parse_rates
from aifinops.exporters.events import GPU_SAMPLE_TYPE, USAGE_TYPE, make_event, parse_gpu_event
from aifinops.exporters.focus import COLUMN_NAMES, ExportContext, FocusAccumulator, money
from aifinops.exporters.focus.write import format_decimal, parquet_available, write_csv
from aifinops.exporters.gpu import GPUAggregator
from aifinops.exporters.llm import DedupeWindow, UsageIngest
from aifinops.exporters.llm.aggregator import LLMAggregator
from aifinops.exporters.pricing import Pricer
from aifinops.exporters.pricing.overrides import PriceOverride

H0 = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
CONTEXT = ExportContext("acct-1", "Platform", "AWS")
GBP = RateSchedule(
    "GBP",
    parse_rates([{"from": "2026-11-01", "rate": "0.79"}, {"from": "2026-12-01", "rate": "0.8"}])[0],
)


def ingest(*overrides: PriceOverride) -> UsageIngest:
    return UsageIngest(
        Pricer(overrides), LLMAggregator(LabelLimiter(100), ("kafka",)), DedupeWindow()
    )


def call(event_id, when, model="gpt-4o", team="web", input_=1000, read=0, output=100, cost=None):
    data = {
        "provider": "openai",
        "model": model,
        "team": team,
        "app": "chat",
        "input_tokens": input_,
        "cache_read_tokens": read,
        "output_tokens": output,
        "cost_usd": cost,
    }
    return make_event(USAGE_TYPE, "/t", data, event_id=event_id, time=when)


def rows_of(acc: FocusAccumulator, schedule: RateSchedule = GBP) -> list[dict]:
    return acc.rows(schedule, CONTEXT)


def by(rows, **match):
    found = [r for r in rows if all(r[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, [(r["x_TokenType"], r["x_Team"]) for r in rows])
    return found[0]


def test_negotiated_price_is_contracted_and_the_catalogue_price_is_list():
    negotiated = PriceOverride("openai", "gpt-4o", prices={"input": Decimal("2")})
    prices = ingest(negotiated)
    acc = FocusAccumulator(list_pricer=Pricer(()))
    acc.add_usage(prices.prepare(call("a", H0 + timedelta(minutes=1), input_=2000, read=500)))
    rows = rows_of(acc)
    row = by(rows, x_TokenType="input")
    # 1500 uncached input tokens at the negotiated $2/M, listed at $2.5/M; GBP 0.79 in November.
    assert row["PricingCurrencyEffectiveCost"] == Decimal("0.003")
    assert row["ContractedCost"] == row["BilledCost"] == Decimal("0.003") * Decimal("0.79")
    assert row["ListCost"] == Decimal("0.00375") * Decimal("0.79")
    assert row["ContractedUnitPrice"] == Decimal("1.58")
    assert row["ListUnitPrice"] == Decimal("2.5") * Decimal("0.79")
    assert row["x_CostSource"] == "override"
    assert row["PricingQuantity"] == Decimal("0.0015")
    # Cache reads keep the catalogue price: list equals contracted.
    read = by(rows, x_TokenType="cache_read")
    assert read["ListCost"] == read["ContractedCost"] == Decimal("0.000625") * Decimal("0.79")


def test_each_charge_period_converts_at_its_own_rate_and_history_keeps_its_rate():
    prices = ingest()
    acc = FocusAccumulator()
    acc.add_usage(prices.prepare(call("nov", H0 + timedelta(minutes=59), output=0)))
    acc.add_usage(prices.prepare(call("dec", H0 + timedelta(minutes=60), output=0)))
    rows = rows_of(acc)
    assert [r["ChargePeriodStart"] for r in rows] == [H0, H0 + timedelta(hours=1)]
    assert [r["x_ExchangeRate"] for r in rows] == [Decimal("0.79"), Decimal("0.8")]
    # $2.5/M x 1000 tokens = $0.0025 each.
    assert [r["BilledCost"] for r in rows] == [Decimal("0.001975"), Decimal("0.002")]
    assert rows[0]["BillingPeriodStart"] == datetime(2026, 11, 1, tzinfo=UTC)
    assert rows[0]["BillingPeriodEnd"] == datetime(2026, 12, 1, tzinfo=UTC)
    assert rows[1]["BillingPeriodEnd"] == datetime(2027, 1, 1, tzinfo=UTC)


def test_no_rate_for_a_charge_period_is_an_error_not_one():
    acc = FocusAccumulator()
    acc.add_usage(ingest().prepare(call("old", datetime(2026, 10, 31, 23, 30, tzinfo=UTC))))
    with pytest.raises(NoRateError, match="2026-10-31T23:00:00"):
        rows_of(acc)


def test_reported_cost_wins_and_unpriced_calls_keep_their_tokens():
    prices = ingest()
    acc = FocusAccumulator(list_pricer=Pricer(()))
    acc.add_usage(prices.prepare(call("r", H0, input_=1000, output=1000, cost="0.011")))
    acc.add_usage(prices.prepare(call("u", H0, model="in-house-llm", team="lab")))
    rows = rows_of(acc, RateSchedule("USD"))
    # Reported $0.011 split like the catalogue would price it: input 2.5 : output 10.
    reported_input = by(rows, x_TokenType="input", x_Team="web")
    assert reported_input["x_CostSource"] == "reported"
    assert reported_input["BilledCost"] == Decimal("0.0022")
    assert reported_input["ContractedUnitPrice"] == Decimal("2.2")
    assert reported_input["ListUnitPrice"] == Decimal("2.5")
    unpriced = by(rows, x_TokenType="input", x_Team="lab")
    assert unpriced["x_CostSource"] == "unpriced"
    assert unpriced["BilledCost"] == 0 and unpriced["ConsumedQuantity"] == 1000
    assert unpriced["ListUnitPrice"] is None and unpriced["ContractedUnitPrice"] is None
    assert acc.total_usd == Fraction("0.011")


def gpu_event(event_id, when, gpu, interval, util, holder, holders=1, price="2.1"):
    namespace, pod, team = holder
    data = {
        "node": "n1",
        "gpu": gpu,
        "uuid": f"GPU-{gpu}",
        "model": "NVIDIA A100-SXM4-80GB",
        "utilization_ratio": util,
        "memory_used_bytes": 0,
        "memory_total_bytes": 1,
        "power_watts": None,
        "hourly_cost_usd": price,
        "interval_seconds": interval,
        "holders": holders,
    }
    if pod:
        data.update(namespace=namespace, pod=pod, team=team)
    return parse_gpu_event(make_event(GPU_SAMPLE_TYPE, "/g", data, event_id=event_id, time=when))


def test_gpu_rows_add_up_to_what_the_gpu_exporter_counts():
    events = [
        gpu_event("1", H0 + timedelta(seconds=7), 0, 7, 0.07, ("ml", "a", "research"), 3),
        gpu_event("2", H0 + timedelta(seconds=7), 0, 7, 0.07, ("ml", "b", "research"), 3),
        gpu_event("3", H0 + timedelta(seconds=7), 0, 7, 0.07, ("web", "c", "search"), 3),
        gpu_event("4", H0 + timedelta(seconds=9), 1, 9, 0.0, ("", "", "")),
    ]
    acc = FocusAccumulator()
    aggregator = GPUAggregator()
    for event in events:
        acc.add_gpu(event)
        aggregator.apply(event.sample, event.envelope.time.timestamp())
    rows = rows_of(acc, RateSchedule("USD"))
    assert len(rows) == 4
    counted = {(m.uuid, m.pod): m for m in aggregator.snapshot().money}
    for row in rows:
        money_total = counted[(row["ResourceId"], row["x_Pod"] or "")]
        assert row["BilledCost"] == money(money_total.cost_usd)
        assert row["x_IdleCost"] == money(money_total.idle_cost_usd)
    # 7 s of $2.1/h shared by three pods: 7/3600/3 GPU-hours each, rounded at 15 places.
    shared = by(rows, x_Pod="a")
    assert shared["ConsumedQuantity"] == Decimal("0.000648148148148")
    assert shared["BilledCost"] == Decimal("0.001361111111111")
    assert shared["Tags"] == '{"namespace":"ml","pod":"a","team":"research"}'
    idle = by(rows, ResourceId="GPU-1")
    assert idle["Tags"] is None and idle["x_Team"] is None
    assert idle["BilledCost"] == idle["x_IdleCost"] == Decimal("0.00525")


def test_figures_are_exact_to_15_places_and_written_without_exponents(tmp_path):
    assert money(Fraction(1, 3)) == Decimal("0.333333333333333")
    assert money(Decimal("0.0000000000000005")) == Decimal("0")
    assert money(Decimal("0.0000000000000015")) == Decimal("0.000000000000002")
    assert format_decimal(Decimal("7.893E-7")) == "0.0000007893"
    assert format_decimal(Decimal("1.50000")) == "1.5"
    assert format_decimal(Decimal("-0E-15")) == "0"
    assert format_decimal(Decimal("1E+3")) == "1000"
    acc = FocusAccumulator()
    acc.add_usage(ingest().prepare(call("a", H0)))
    path = write_csv(rows_of(acc), tmp_path / "f.csv")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == COLUMN_NAMES
    assert rows[0]["ChargePeriodStart"] == "2026-11-30T23:00:00Z"
    assert rows[0]["ChargeClass"] == "" and rows[0]["ResourceId"] == ""


def test_parquet_has_the_same_rows(tmp_path):
    if not parquet_available():
        pytest.skip("pyarrow is not installed (the optional extra aifinops[focus])")
    import pyarrow.parquet as pq

    from aifinops.exporters.focus.write import write_parquet

    acc = FocusAccumulator()
    acc.add_usage(ingest().prepare(call("a", H0)))
    rows = rows_of(acc)
    table = pq.read_table(write_parquet(rows, tmp_path / "f.parquet"))
    assert table.column_names == list(COLUMN_NAMES)
    back = table.to_pylist()
    assert back[0]["BilledCost"] == rows[0]["BilledCost"]
    assert back[0]["ChargePeriodStart"] == rows[0]["ChargePeriodStart"]


def test_a_row_mixing_prices_is_priced_at_what_it_comes_to_per_million():
    # Anthropic response: 1,000 tokens written to the 5-minute cache ($3.75/M) and 2,000 to the
    # 1-hour cache ($6/M, genai-prices claude-sonnet-4-0): one cache_write row of 3,000 tokens.
    data = {
        "provider": "anthropic",
        "model": "claude-sonnet-4-0",
        "team": "web",
        "app": "chat",
        "response": {
            "usage": {
                "input_tokens": 100,
                "cache_read_input_tokens": 0,
                "cache_creation_input_tokens": 3000,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": 1000,
                    "ephemeral_1h_input_tokens": 2000,
                },
                "output_tokens": 10,
            }
        },
    }
    acc = FocusAccumulator(list_pricer=Pricer(()))
    acc.add_usage(ingest().prepare(make_event(USAGE_TYPE, "/t", data, event_id="x", time=H0)))
    write = by(rows_of(acc, RateSchedule("USD")), x_TokenType="cache_write")
    assert write["ConsumedQuantity"] == 3000
    assert write["BilledCost"] == Decimal("0.01575")
    assert write["ContractedUnitPrice"] == write["ListUnitPrice"] == Decimal("5.25")
    assert write["ContractedUnitPrice"] * write["PricingQuantity"] == write["ContractedCost"]
    assert write["SkuPriceId"] == "anthropic/claude-sonnet-4-0/cache_write:blended"
