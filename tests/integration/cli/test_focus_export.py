"""`aifinops focus export` against a real broker: rows equal hand-computed FOCUS rows, the files meet
the FOCUS 1.2 column definitions, duplicates count once, and an empty range is a header-only file.

Expected figures come from the genai-prices catalogue's published per-million prices (written out
below, checked against the bundled catalogue entry), never from the code under test.
"""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from genai_prices import data_snapshot

from aifinops.cli.aifinops import main as aifinops
from aifinops.exporters.events import GPU_SAMPLE_TYPE, USAGE_TYPE, encode, make_event
from support.kafka_helpers import create_topics, produce

pytestmark = pytest.mark.integration

# Charge periods: two whole hours some hours ago, so nothing is in the future.
H0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=4)
H1 = H0 + timedelta(hours=1)
H2 = H0 + timedelta(hours=2)
# USD->GBP: 0.8 for the first hour, 0.75 from the second (a rate change inside the export).
RATE_0, RATE_1 = Decimal("0.8"), Decimal("0.75")

# Published prices, USD per million tokens (genai-prices: anthropic claude-sonnet-4-0, google
# gemini-2.5-pro with its >200k-input tier).
SONNET = {"input": "3", "cache_read": "0.3", "cache_write": "3.75", "output": "15"}
GEMINI = {"input": "1.25", "cache_read": "0.125", "output": "10"}
GEMINI_TIER2 = {"input": "2.5", "cache_read": "0.25", "output": "15"}
H100_USD_PER_HOUR = Decimal("4.5")
SHARED_USD_PER_HOUR = Decimal("2.1")

# FOCUS 1.2 (specification/columns/*.md): column -> (feature level, allows nulls, data type,
# value format, allowed values or None).
SPEC = {
    "BilledCost": ("Mandatory", False, "Decimal", "numeric", None),
    "BillingAccountId": ("Mandatory", False, "String", None, None),
    "BillingAccountName": ("Mandatory", True, "String", None, None),
    "BillingCurrency": ("Mandatory", False, "String", "currency", None),
    "BillingPeriodEnd": ("Mandatory", False, "Date/Time", "datetime", None),
    "BillingPeriodStart": ("Mandatory", False, "Date/Time", "datetime", None),
    "ChargeCategory": (
        "Mandatory",
        False,
        "String",
        None,
        {"Usage", "Purchase", "Tax", "Credit", "Adjustment"},
    ),
    "ChargeClass": ("Mandatory", True, "String", None, {"Correction"}),
    "ChargeDescription": ("Mandatory", True, "String", None, None),
    "ChargeFrequency": (
        "Recommended",
        False,
        "String",
        None,
        {"One-Time", "Recurring", "Usage-Based"},
    ),
    "ChargePeriodEnd": ("Mandatory", False, "Date/Time", "datetime", None),
    "ChargePeriodStart": ("Mandatory", False, "Date/Time", "datetime", None),
    "ConsumedQuantity": ("Conditional", True, "Decimal", "numeric", None),
    "ConsumedUnit": ("Conditional", True, "String", None, None),
    "ContractedCost": ("Mandatory", False, "Decimal", "numeric", None),
    "ContractedUnitPrice": ("Conditional", True, "Decimal", "numeric", None),
    "EffectiveCost": ("Mandatory", False, "Decimal", "numeric", None),
    "InvoiceIssuerName": ("Mandatory", False, "String", None, None),
    "ListCost": ("Mandatory", False, "Decimal", "numeric", None),
    "ListUnitPrice": ("Conditional", True, "Decimal", "numeric", None),
    "PricingCategory": (
        "Conditional",
        True,
        "String",
        None,
        {"Standard", "Dynamic", "Committed", "Other"},
    ),
    "PricingCurrency": ("Conditional", True, "String", "currency", None),
    "PricingCurrencyContractedUnitPrice": ("Conditional", True, "Decimal", "numeric", None),
    "PricingCurrencyEffectiveCost": ("Conditional", True, "Decimal", "numeric", None),
    "PricingCurrencyListUnitPrice": ("Conditional", True, "Decimal", "numeric", None),
    "PricingQuantity": ("Mandatory", True, "Decimal", "numeric", None),
    "PricingUnit": ("Mandatory", True, "String", None, None),
    "ProviderName": ("Mandatory", False, "String", None, None),
    "PublisherName": ("Mandatory", False, "String", None, None),
    "ResourceId": ("Conditional", True, "String", None, None),
    "ResourceName": ("Conditional", True, "String", None, None),
    "ResourceType": ("Conditional", True, "String", None, None),
    "ServiceCategory": (
        "Mandatory",
        False,
        "String",
        None,
        {
            "AI and Machine Learning",
            "Analytics",
            "Business Applications",
            "Compute",
            "Databases",
            "Developer Tools",
            "Multicloud",
            "Identity",
            "Integration",
            "Internet of Things",
            "Management and Governance",
            "Media",
            "Migration",
            "Mobile",
            "Networking",
            "Security",
            "Storage",
            "Web",
            "Other",
        },
    ),
    "ServiceName": ("Mandatory", False, "String", None, None),
    # Only the AI and Machine Learning subcategories (the parent category of every row here).
    "ServiceSubcategory": (
        "Recommended",
        False,
        "String",
        None,
        {
            "AI Platforms",
            "Bots",
            "Generative AI",
            "Machine Learning",
            "Natural Language Processing",
            "Other (AI and Machine Learning)",
        },
    ),
    "SkuId": ("Conditional", True, "String", None, None),
    "SkuMeter": ("Conditional", True, "String", None, None),
    "SkuPriceDetails": ("Conditional", True, "JSON", "keyvalue", None),
    "SkuPriceId": ("Conditional", True, "String", None, None),
    "Tags": ("Conditional", True, "JSON", "keyvalue", None),
}
MANDATORY_1_2 = {name for name, spec in SPEC.items() if spec[0] == "Mandatory"}
# FOCUS-defined SkuPriceDetails properties (skupricedetails.md); others must start with x_.
SKU_PRICE_PROPERTIES = {
    "CoreCount",
    "DiskMaxIops",
    "DiskSpace",
    "DiskType",
    "GpuCount",
    "InstanceType",
    "InstanceSeries",
    "MemorySize",
    "NetworkMaxIops",
    "NetworkMaxThroughput",
    "OperatingSystem",
    "Redundancy",
    "StorageClass",
}
# NumericFormat: integer, decimal or "mEn" with no sign on a positive exponent; no '+', commas,
# units or symbols. DateTimeFormat: 'YYYY-MM-DDTHH:mm:ssZ'. CurrencyFormat: ISO 4217 code.
NUMERIC = re.compile(r"-?\d+(\.\d+)?(E-?\d+)?")
DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
CURRENCY = re.compile(r"[A-Z]{3}")


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def usage(event_id, when, provider, model, team, app, input_, read, write, output):
    return make_event(
        USAGE_TYPE,
        "/gateway/eu-west-2",
        {
            "provider": provider,
            "model": model,
            "team": team,
            "app": app,
            "input_tokens": input_,
            "cache_read_tokens": read,
            "cache_write_tokens": write,
            "output_tokens": output,
            "status": "ok",
        },
        event_id=event_id,
        time=when,
    )


def gpu_sample(event_id, when, gpu, uuid, price, interval, util, holder, holders=1):
    namespace, pod, team = holder
    data = {
        "node": "gpu-node-1",
        "gpu": gpu,
        "uuid": uuid,
        "model": "NVIDIA H100 80GB HBM3",
        "utilization_ratio": util,
        "memory_used_bytes": 1 << 30,
        "memory_total_bytes": 80 << 30,
        "power_watts": 300.0,
        "hourly_cost_usd": float(price),
        "interval_seconds": interval,
        "namespace": namespace,
        "pod": pod,
        "team": team,
    }
    if holders != 1:
        data["holders"] = holders
    return make_event(
        GPU_SAMPLE_TYPE, "/gpu-exporter/gpu-node-1", data, event_id=event_id, time=when
    )


@pytest.fixture
def setup(kafka_session_logs, topic_name, tmp_path):
    bootstrap = kafka_session_logs.bootstrap
    topics = {"usage": topic_name("ai-api-costs"), "gpu": topic_name("gpu-utilization-events")}
    create_topics(bootstrap, {topics["usage"]: 3, topics["gpu"]: 3})
    config = {
        "cluster": "eu-west-2-prod",
        "kafka": {
            "bootstrap_servers": [bootstrap],
            "topics": {
                "usage": {"name": topics["usage"], "partitions": 3, "retention_ms": 86400000},
                "gpu": {"name": topics["gpu"], "partitions": 3, "retention_ms": 86400000},
            },
        },
        "currency": {
            "code": "GBP",
            "rates": [
                {"from": (H0 - timedelta(days=1)).date().isoformat(), "rate": str(RATE_0)},
                {"from": iso(H1), "rate": str(RATE_1)},
            ],
        },
    }
    path = tmp_path / "aifinops.yml"
    path.write_text(yaml.safe_dump(config))
    return bootstrap, topics, path


def export(config_path: Path, out: Path, start: datetime, end: datetime) -> int:
    return aifinops(
        [
            "focus",
            "export",
            "--config.file",
            str(config_path),
            "--from",
            iso(start),
            "--to",
            iso(end),
            "--out",
            str(out),
            "--format",
            "csv",
            "--timeout",
            "20",
        ]
    )


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def test_catalogue_still_publishes_the_prices_used_here():
    snapshot = data_snapshot.get_snapshot()
    _provider, sonnet = snapshot.find_provider_model("claude-sonnet-4-0", None, "anthropic", None)
    assert sonnet.prices.input_mtok == Decimal(SONNET["input"])
    assert sonnet.prices.cache_read_mtok == Decimal(SONNET["cache_read"])
    assert sonnet.prices.cache_write_mtok == Decimal(SONNET["cache_write"])
    assert sonnet.prices.output_mtok == Decimal(SONNET["output"])
    _provider, gemini = snapshot.find_provider_model("gemini-2.5-pro", None, "google", None)
    assert gemini.prices.input_mtok.base == Decimal(GEMINI["input"])
    assert gemini.prices.input_mtok.tiers[0].start == 200_000
    assert gemini.prices.input_mtok.tiers[0].price == Decimal(GEMINI_TIER2["input"])
    assert gemini.prices.cache_read_mtok.tiers[0].price == Decimal(GEMINI_TIER2["cache_read"])
    assert gemini.prices.output_mtok.tiers[0].price == Decimal(GEMINI_TIER2["output"])


def test_export_rows_equal_hand_computed_focus_rows(setup, tmp_path):
    bootstrap, topics, config_path = setup
    m = timedelta(minutes=1)
    sonnet = ("anthropic", "claude-sonnet-4-0")
    gemini = ("gcp.gemini", "gemini-2.5-pro")
    first = usage("u1", H0 + 5 * m, *sonnet, "research", "chat", 1200, 1000, 100, 500)
    events = [
        first,
        usage("u2", H0 + 10 * m, *sonnet, "research", "chat", 3000, 2000, 0, 200),
        # Over 200k input tokens: every token of the call at the second tier.
        usage("u3", H0 + 20 * m, *gemini, "search", "batch", 250_000, 50_000, 0, 1000),
        usage("u4", H0 + 25 * m, *gemini, "search", "batch", 10_000, 0, 0, 100),
        usage("u5", H1 + 5 * m, *sonnet, "research", "chat", 100, 0, 0, 10),
        # Outside the range (before --from, after --to): read, not counted.
        usage("u6", H0 - 30 * m, *sonnet, "research", "chat", 999, 0, 0, 999),
        usage("u7", H2 + 1 * m, *sonnet, "research", "chat", 999, 0, 0, 999),
        # Delivered twice: counted once.
        first,
    ]
    records = [(b"research/chat", encode(e), None) for e in events]
    records.append((b"bad/json", b"{not json", None))
    produce(bootstrap, topics["usage"], records)
    h100 = ("GPU-1111", H100_USD_PER_HOUR)
    train = ("ml", "train-0", "research")
    samples = [
        gpu_sample(f"g{i}", H0 + (i + 1) * 15 * timedelta(seconds=1), 0, *h100, 15, 0.25, train)
        for i in range(4)
    ]
    samples.append(samples[0])  # a duplicate
    # One GPU time-sliced between two pods over 30 s: half of its cost each.
    shared = ("GPU-2222", SHARED_USD_PER_HOUR)
    samples.append(gpu_sample("s1", H1 + m, 1, *shared, 30, 0.5, ("ml", "infer-a", "research"), 2))
    samples.append(gpu_sample("s2", H1 + m, 1, *shared, 30, 0.5, ("web", "infer-b", "search"), 2))
    produce(bootstrap, topics["gpu"], [(b"gpu-node-1/x", encode(s), None) for s in samples])

    out = tmp_path / "out"
    assert export(config_path, out, H0, H2) == 0
    header, rows = read_csv(out / f"focus-{H0:%Y%m%dT%H}Z-{H2:%Y%m%dT%H}Z.csv")

    def llm(hour, team, app, provider, model, token_type, tokens, usd_per_m, rate):
        usd = Decimal(tokens) * Decimal(usd_per_m) / 1_000_000
        return {
            "ChargePeriodStart": iso(hour),
            "ChargePeriodEnd": iso(hour + timedelta(hours=1)),
            "x_Team": team,
            "x_App": app,
            "ProviderName": provider,
            "x_Model": model,
            "x_TokenType": token_type,
            "ConsumedQuantity": Decimal(tokens),
            "ConsumedUnit": "Tokens",
            "PricingQuantity": Decimal(tokens) / 1_000_000,
            "PricingUnit": "1000000 Tokens",
            "PricingCurrencyEffectiveCost": usd,
            "PricingCurrencyContractedUnitPrice": Decimal(usd_per_m),
            "PricingCurrencyListUnitPrice": Decimal(usd_per_m),
            "BilledCost": usd * rate,
            "EffectiveCost": usd * rate,
            "ContractedCost": usd * rate,
            "ListCost": usd * rate,
            "ContractedUnitPrice": Decimal(usd_per_m) * rate,
            "ListUnitPrice": Decimal(usd_per_m) * rate,
            "x_ExchangeRate": rate,
            "Tags": {"team": team, "app": app},
            "SkuPriceDetails": {"x_ModelId": model, "x_TokenDirection": token_type},
        }

    def gpu(hour, uuid, index, holder, hours, usd_per_hour, idle_share, rate, events):
        namespace, pod, team = holder
        usd = hours * usd_per_hour
        return {
            "ChargePeriodStart": iso(hour),
            "ChargePeriodEnd": iso(hour + timedelta(hours=1)),
            "ResourceId": uuid,
            "x_GpuIndex": str(index),
            "x_Team": team,
            "x_Pod": pod,
            "ConsumedQuantity": hours,
            "ConsumedUnit": "GPU-Hours",
            "PricingQuantity": hours,
            "PricingUnit": "GPU-Hours",
            "PricingCurrencyEffectiveCost": usd,
            "PricingCurrencyContractedUnitPrice": usd_per_hour,
            "BilledCost": usd * rate,
            "ListCost": usd * rate,
            "ContractedUnitPrice": usd_per_hour * rate,
            "x_IdleCost": usd * rate * idle_share,
            "x_ExchangeRate": rate,
            "x_EventCount": str(events),
            "Tags": {"team": team, "namespace": namespace, "pod": pod},
            "SkuPriceDetails": {"GpuCount": 1, "x_GpuModel": "NVIDIA H100 80GB HBM3"},
        }

    research, search = ("research", "chat"), ("search", "batch")
    a, g = ("anthropic", "claude-sonnet-4-0"), ("gcp.gemini", "gemini-2.5-pro")
    # sonnet, first hour: u1 (100 uncached, 1000 read, 100 written, 500 out) + u2 (1000, 2000, 0, 200)
    expected = [
        llm(H0, *research, *a, "input", 1100, SONNET["input"], RATE_0),
        llm(H0, *research, *a, "cache_read", 3000, SONNET["cache_read"], RATE_0),
        llm(H0, *research, *a, "cache_write", 100, SONNET["cache_write"], RATE_0),
        llm(H0, *research, *a, "output", 700, SONNET["output"], RATE_0),
        # gemini u3 at the second tier (200k uncached + 50k read, 1000 out), u4 at the first.
        llm(H0, *search, *g, "input", 200_000, GEMINI_TIER2["input"], RATE_0),
        llm(H0, *search, *g, "cache_read", 50_000, GEMINI_TIER2["cache_read"], RATE_0),
        llm(H0, *search, *g, "output", 1000, GEMINI_TIER2["output"], RATE_0),
        llm(H0, *search, *g, "input", 10_000, GEMINI["input"], RATE_0),
        llm(H0, *search, *g, "output", 100, GEMINI["output"], RATE_0),
        # Second hour, at the new rate.
        llm(H1, *research, *a, "input", 100, SONNET["input"], RATE_1),
        llm(H1, *research, *a, "output", 10, SONNET["output"], RATE_1),
        # 4 samples x 15 s of an H100 at $4.5/h, 25 % busy.
        gpu(
            H0,
            "GPU-1111",
            0,
            train,
            Decimal(60) / 3600,
            H100_USD_PER_HOUR,
            Decimal("0.75"),
            RATE_0,
            4,
        ),
    ]
    # 30 s of a GPU shared by two pods: 15 s each (1/240 h, rounded to 15 places in the file).
    half = Decimal(1) / 240
    for holder in (("ml", "infer-a", "research"), ("web", "infer-b", "search")):
        expected.append(
            gpu(H1, "GPU-2222", 1, holder, half, SHARED_USD_PER_HOUR, Decimal("0.5"), RATE_1, 1)
        )

    identity = (
        "ChargePeriodStart",
        "x_Team",
        "x_App",
        "x_TokenType",
        "x_Model",
        "ResourceId",
        "x_Pod",
    )

    def matches(row: dict[str, str], want: dict[str, object]) -> bool:
        same = all(row[c] == want[c] for c in identity if c in want)
        price = row["PricingCurrencyContractedUnitPrice"]
        return same and Decimal(price) == want["PricingCurrencyContractedUnitPrice"]

    assert len(rows) == len(expected), [
        (r["ChargePeriodStart"], r["x_Team"], r["x_Model"], r["x_TokenType"]) for r in rows
    ]
    q = Decimal("1e-15")
    for want in expected:
        found = [r for r in rows if matches(r, want)]
        assert len(found) == 1, want
        row = found[0]
        for column, value in want.items():
            if isinstance(value, Decimal):
                # Exact where the figure has at most 15 decimal places, else rounded there.
                assert Decimal(row[column]) == value.quantize(q), (column, row[column], value)
            elif isinstance(value, dict):
                assert json.loads(row[column]) == value, column
            else:
                assert row[column] == value, column
        assert row["BillingCurrency"] == "GBP"
        assert row["PricingCurrency"] == "USD"
        assert row["ChargeCategory"] == "Usage"
        assert row["ChargeClass"] == ""
        assert row["ServiceCategory"] == "AI and Machine Learning"
        assert row["BillingAccountId"] == "eu-west-2-prod"
        period = datetime.fromisoformat(row["ChargePeriodStart"]).replace(day=1, hour=0)
        following = (period + timedelta(days=32)).replace(day=1)
        assert (row["BillingPeriodStart"], row["BillingPeriodEnd"]) == (iso(period), iso(following))

    # Control total: every counted event's cost, to the micro-dollar, in USD.
    events_usd = (
        (
            sum(
                Decimal(t) * Decimal(SONNET[k])
                for k, t in [
                    ("input", 1200),
                    ("cache_read", 3000),
                    ("cache_write", 100),
                    ("output", 710),
                ]
            )
            + 200_000 * Decimal("2.5")
            + 50_000 * Decimal("0.25")
            + 1000 * Decimal(15)
            + 10_000 * Decimal("1.25")
            + 100 * Decimal(10)
        )
        / 1_000_000
        + Decimal(60) / 3600 * H100_USD_PER_HOUR
        + Decimal(30) / 3600 * SHARED_USD_PER_HOUR
    )
    exported = sum(Decimal(r["PricingCurrencyEffectiveCost"]) for r in rows)
    assert abs(exported - events_usd) < Decimal("0.000001")

    check_focus_columns(header, rows)


def check_focus_columns(header: list[str], rows: list[dict[str, str]]) -> None:
    """Every FOCUS 1.2 mandatory column present; values of the types, formats and allowed values
    the specification's column definitions give; custom columns `x_`-prefixed and last."""
    assert set(header) >= MANDATORY_1_2
    assert {
        "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency",
        "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass",
        "ChargeDescription", "ChargePeriodEnd", "ChargePeriodStart", "ContractedCost",
        "EffectiveCost", "InvoiceIssuerName", "ListCost", "PricingQuantity", "PricingUnit",
        "ProviderName", "PublisherName", "ServiceCategory", "ServiceName",
    } == MANDATORY_1_2  # fmt: skip
    custom = [c for c in header if c not in SPEC]
    assert all(c.startswith("x_") for c in custom), custom
    assert header.index(custom[0]) == len(header) - len(custom), "FOCUS columns come first"
    for row in rows:
        for column, (_level, nullable, data_type, value_format, allowed) in SPEC.items():
            if column not in row:
                continue
            value = row[column]
            if value == "":
                assert nullable, f"{column} must not be null"
                continue
            assert value.strip() == value and value, column
            if data_type == "Decimal":
                assert NUMERIC.fullmatch(value), (column, value)
            if value_format == "datetime":
                assert DATETIME.fullmatch(value), (column, value)
            if value_format == "currency":
                assert CURRENCY.fullmatch(value), (column, value)
            if value_format == "keyvalue":
                obj = json.loads(value)
                assert isinstance(obj, dict), column
                assert all(
                    v is None or isinstance(v, str | int | float | bool) for v in obj.values()
                ), column
            if allowed is not None:
                assert value in allowed, (column, value)
        # Conditional nullability rules, with ChargeCategory Usage and no correction.
        for column in ("PricingQuantity", "PricingUnit", "ConsumedQuantity", "ConsumedUnit",
                       "ListUnitPrice", "ContractedUnitPrice", "SkuId", "SkuPriceId",
                       "PricingCategory"):  # fmt: skip
            assert row[column] != "", f"{column} must not be null for Usage"
        assert (row["ResourceId"] == "") == (row["ResourceType"] == "")
        assert row["BillingCurrency"] != "" and row["PricingCurrency"] != ""
        for key in json.loads(row["SkuPriceDetails"]):
            assert key in SKU_PRICE_PROPERTIES or key.startswith("x_"), key
        # Unit prices times PricingQuantity give the costs (to the file's 15 decimal places).
        for price, cost in (
            ("ListUnitPrice", "ListCost"),
            ("ContractedUnitPrice", "ContractedCost"),
        ):
            product = Decimal(row[price]) * Decimal(row["PricingQuantity"])
            assert abs(product - Decimal(row[cost])) < Decimal("1e-12"), (price, row)
        assert row["ChargePeriodStart"] < row["ChargePeriodEnd"]
        assert row["BillingPeriodStart"] <= row["ChargePeriodStart"] < row["BillingPeriodEnd"]


def test_empty_range_writes_a_header_only_file(setup, tmp_path):
    bootstrap, topics, config_path = setup
    produce(
        bootstrap,
        topics["usage"],
        [(b"t/a", encode(usage("e1", H1, "openai", "gpt-4o", "t", "a", 10, 0, 0, 10)), None)],
    )
    out = tmp_path / "empty"
    start, end = H0 - timedelta(hours=3), H0 - timedelta(hours=2)
    assert export(config_path, out, start, end) == 0
    path = out / f"focus-{start:%Y%m%dT%H}Z-{end:%Y%m%dT%H}Z.csv"
    header, rows = read_csv(path)
    assert rows == []
    assert path.read_text().count("\n") == 1
    assert set(header) >= MANDATORY_1_2


def test_a_charge_period_without_a_rate_fails_the_export(setup, tmp_path):
    bootstrap, topics, config_path = setup
    produce(
        bootstrap,
        topics["usage"],
        [
            (
                b"t/a",
                encode(
                    usage("old", H0 - timedelta(days=3), "openai", "gpt-4o", "t", "a", 10, 0, 0, 10)
                ),
                None,
            )
        ],
    )
    out = tmp_path / "norate"
    start = (H0 - timedelta(days=3)).replace(minute=0)
    assert export(config_path, out, start, start + timedelta(hours=1)) == 1
    assert not any(out.glob("*.csv"))
