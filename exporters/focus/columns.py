"""The columns of the FOCUS 1.2 export: names, order and value types (docs/focus.md).

FOCUS columns come first in the specification's alphabetical order, then the `x_` columns this
project adds for what FOCUS has no column for. `DECIMAL` columns hold `Decimal`s, `DATETIME` columns
aware UTC datetimes, `JSON` columns key-value JSON text, `INTEGER` columns ints; any may be None
(null) where the specification allows it.
"""

from __future__ import annotations

from typing import Literal

ColumnType = Literal["decimal", "integer", "string", "datetime", "json"]

DECIMAL: ColumnType = "decimal"
INTEGER: ColumnType = "integer"
STRING: ColumnType = "string"
DATETIME: ColumnType = "datetime"
JSON: ColumnType = "json"

FOCUS_VERSION = "1.2"

# Money and quantities are written with this many decimal places at most (exact below it).
SCALE = 15

FOCUS_COLUMNS: tuple[tuple[str, ColumnType], ...] = (
    ("BilledCost", DECIMAL),
    ("BillingAccountId", STRING),
    ("BillingAccountName", STRING),
    ("BillingCurrency", STRING),
    ("BillingPeriodEnd", DATETIME),
    ("BillingPeriodStart", DATETIME),
    ("ChargeCategory", STRING),
    ("ChargeClass", STRING),
    ("ChargeDescription", STRING),
    ("ChargeFrequency", STRING),
    ("ChargePeriodEnd", DATETIME),
    ("ChargePeriodStart", DATETIME),
    ("ConsumedQuantity", DECIMAL),
    ("ConsumedUnit", STRING),
    ("ContractedCost", DECIMAL),
    ("ContractedUnitPrice", DECIMAL),
    ("EffectiveCost", DECIMAL),
    ("InvoiceIssuerName", STRING),
    ("ListCost", DECIMAL),
    ("ListUnitPrice", DECIMAL),
    ("PricingCategory", STRING),
    ("PricingCurrency", STRING),
    ("PricingCurrencyContractedUnitPrice", DECIMAL),
    ("PricingCurrencyEffectiveCost", DECIMAL),
    ("PricingCurrencyListUnitPrice", DECIMAL),
    ("PricingQuantity", DECIMAL),
    ("PricingUnit", STRING),
    ("ProviderName", STRING),
    ("PublisherName", STRING),
    ("ResourceId", STRING),
    ("ResourceName", STRING),
    ("ResourceType", STRING),
    ("ServiceCategory", STRING),
    ("ServiceName", STRING),
    ("ServiceSubcategory", STRING),
    ("SkuId", STRING),
    ("SkuMeter", STRING),
    ("SkuPriceDetails", JSON),
    ("SkuPriceId", STRING),
    ("Tags", JSON),
)

CUSTOM_COLUMNS: tuple[tuple[str, ColumnType], ...] = (
    # `llm` (one model's tokens of one direction) or `gpu` (one GPU's time for one holder).
    ("x_ChargeSource", STRING),
    ("x_Team", STRING),
    ("x_App", STRING),
    ("x_Namespace", STRING),
    ("x_Pod", STRING),
    ("x_Container", STRING),
    # The model as the events named it, and the catalogue id it was priced as.
    ("x_Model", STRING),
    ("x_ModelId", STRING),
    # input (neither read from nor written to the cache), cache_read, cache_write, output.
    ("x_TokenType", STRING),
    # catalogue, override, reported (the provider's figure) or unpriced.
    ("x_CostSource", STRING),
    # Deduplicated events (LLM calls or GPU samples) in the row.
    ("x_EventCount", INTEGER),
    # Units of BillingCurrency per PricingCurrency (USD) applied to the row: the rate in force at
    # ChargePeriodStart.
    ("x_ExchangeRate", DECIMAL),
    ("x_Node", STRING),
    ("x_GpuIndex", INTEGER),
    ("x_GpuModel", STRING),
    # The part of BilledCost spent while the GPU was idle: cost x (1 - utilisation).
    ("x_IdleCost", DECIMAL),
)

COLUMNS: tuple[tuple[str, ColumnType], ...] = FOCUS_COLUMNS + CUSTOM_COLUMNS
COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _type in COLUMNS)
