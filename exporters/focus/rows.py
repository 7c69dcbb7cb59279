"""FOCUS 1.2 rows from counted events: hourly charge periods of LLM tokens and GPU time, in the billing
currency at the rate in force per charge period.

Pure: events come in already validated, priced (`UsageIngest.prepare`, the bridge's code) and
deduplicated; `FocusAccumulator` sums them exactly per row key (decimals in a context that raises
rather than rounds; GPU time as exact fractions of an hour), and `rows()` converts each row at the
rate in force at its ChargePeriodStart, rounding each figure once, half-even at `SCALE` places. One LLM row is one
hour x team x app x provider x model x token type (x unit price, so that a tier or a price change
within the hour starts a row of its own); one GPU row is one hour x GPU x holder (x hourly price).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from fractions import Fraction
from typing import Any, NamedTuple

from ..currency.rates import RateSchedule
from ..events.gpu import GPUEvent
from ..events.usage import TOKEN_TYPES
from ..llm.ingest import PricedEvent
from ..pricing import Pricer, PricingError
from .columns import COLUMN_NAMES, SCALE

_HOUR = timedelta(hours=1)
_MILLION = 1_000_000
_SECONDS_PER_HOUR = 3600
_ZERO = Decimal(0)
# Sums and products of money are exact: a result that would need rounding raises instead.
_EXACT = Context(prec=100, traps=[Inexact, InvalidOperation, Overflow, DivisionByZero])
# Divisions and the final rounding of a figure to SCALE places.
_ROUND = Context(prec=100, rounding=ROUND_HALF_EVEN)
_QUANTUM = Decimal(1).scaleb(-SCALE)

SERVICE_CATEGORY = "AI and Machine Learning"
LLM_SUBCATEGORY = "Generative AI"
GPU_SUBCATEGORY = "Machine Learning"
TOKENS_UNIT = "Tokens"
TOKENS_PRICING_UNIT = "1000000 Tokens"
GPU_UNIT = "GPU-Hours"
_METERS = {
    "input": "Input Tokens",
    "cache_read": "Cache Read Tokens",
    "cache_write": "Cache Write Tokens",
    "output": "Output Tokens",
}


@dataclass(frozen=True)
class ExportContext:
    """What the events do not say: who the charges are billed to, and who provides the GPUs."""

    billing_account_id: str
    billing_account_name: str
    # ProviderName, PublisherName and InvoiceIssuerName of GPU rows (the cloud or the owner of
    # the cluster); LLM rows carry the LLM provider.
    gpu_provider: str


class _LLMKey(NamedTuple):
    start: datetime
    team: str
    app: str
    provider: str
    model: str
    model_id: str | None
    token_type: str
    source: str
    rate: Decimal | None  # USD per million tokens applied (None: reported or unpriced)
    list_rate: Decimal | None  # the catalogue's, where it differs (override, reported)


class _GPUKey(NamedTuple):
    start: datetime
    node: str
    gpu: int
    uuid: str
    model: str
    namespace: str
    pod: str
    container: str
    team: str
    hourly_usd: Decimal | None


@dataclass
class _Totals:
    """One LLM row: tokens, and its cost and list cost in USD."""

    tokens: int = 0
    cost: Decimal = _ZERO
    list_cost: Decimal = _ZERO
    events: int = 0


@dataclass
class _GPUTotals:
    """One GPU row: per holder count, the seconds sampled and the busy seconds (seconds x
    utilisation), exact; the hours and money follow from them and the row's hourly price."""

    by_holders: dict[int, list[Decimal]] = field(default_factory=dict)
    events: int = 0

    def hours(self) -> tuple[Fraction, Fraction]:
        """GPU-hours charged to the row, and the busy part of them."""
        hours = busy = Fraction(0)
        for holders, (seconds, busy_seconds) in self.by_holders.items():
            per = _SECONDS_PER_HOUR * holders
            hours += Fraction(seconds) / per
            busy += Fraction(busy_seconds) / per
        return hours, busy


def _uniform(
    rates: tuple[Decimal, ...] | None, i: int, tokens: int, amount: Decimal
) -> Decimal | None:
    """The rate of token type `i` when every one of its tokens was priced at it; None when the
    amount says otherwise (a provider response mixing 5-minute and 1-hour cache writes, audio
    input...): such a row's unit price is then what its cost comes to per million tokens."""
    if rates is None:
        return None
    rate = rates[i]
    return rate if _EXACT.multiply(amount, _MILLION) == _EXACT.multiply(rate, tokens) else None


def hour_of(instant: datetime) -> datetime:
    """The start of the UTC hour holding `instant`: its charge period."""
    return instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass
class FocusAccumulator:
    """Exact per-row sums of counted events. `list_pricer` (a `Pricer` without overrides) gives
    the catalogue's list price of calls priced from an override or reported by the caller."""

    list_pricer: Pricer | None = None
    llm: dict[_LLMKey, _Totals] = field(default_factory=dict)
    gpu: dict[_GPUKey, _GPUTotals] = field(default_factory=dict)
    llm_usd: Decimal = _ZERO

    @property
    def total_usd(self) -> Fraction:
        """Every counted event's cost in USD, exact: the export's control total."""
        total = Fraction(self.llm_usd)
        for key, totals in self.gpu.items():
            if key.hourly_usd is not None:
                total += totals.hours()[0] * Fraction(key.hourly_usd)
        return total

    def add_usage(self, priced: PricedEvent) -> None:
        """Count one LLM call: one contribution per token type with tokens or cost."""
        event, cost = priced.event, priced.cost
        usage = event.usage
        start = hour_of(event.time)
        by_type = cost.by_type
        rates = cost.rates
        list_by_type, list_rates = self._list_prices(priced)
        counted = False
        for i, token_type in enumerate(TOKEN_TYPES):
            tokens = usage.token_split[i]
            amount = by_type[i]
            if tokens == 0 and amount == 0:
                continue
            list_amount = amount if list_by_type is None else list_by_type[i]
            key = _LLMKey(
                start,
                usage.team,
                usage.app,
                usage.provider,
                usage.model,
                cost.model_id,
                token_type,
                cost.source,
                _uniform(rates, i, tokens, amount),
                _uniform(list_rates, i, tokens, list_amount),
            )
            totals = self.llm.get(key)
            if totals is None:
                totals = self.llm[key] = _Totals()
            totals.tokens += tokens
            totals.cost = _EXACT.add(totals.cost, amount)
            totals.list_cost = _EXACT.add(totals.list_cost, list_amount)
            totals.events += 1
            counted = True
        if counted:
            for amount in by_type:
                self.llm_usd = _EXACT.add(self.llm_usd, amount)

    def _list_prices(
        self, priced: PricedEvent
    ) -> tuple[tuple[Decimal, ...] | None, tuple[Decimal, ...] | None]:
        """The catalogue's cost and rates of a call priced otherwise; (None, rates) when the price
        applied is the catalogue's (or none is known, so list equals billed)."""
        cost = priced.cost
        if cost.source == "catalogue" or cost.source == "unpriced" or self.list_pricer is None:
            return None, cost.rates
        usage = priced.event.usage._replace(cost_usd=None)
        try:
            catalogue = self.list_pricer.price(usage, priced.event.time)
        except PricingError:
            return None, cost.rates
        if not catalogue.priced or catalogue.source != "catalogue":
            return None, cost.rates
        return catalogue.by_type, catalogue.rates

    def add_gpu(self, event: GPUEvent) -> None:
        """Count one GPU sample: its share of the GPU over its interval, charged to the hour of
        the sample's time (as the exporters count it), split equally among `holders`."""
        sample = event.sample
        key = _GPUKey(
            hour_of(event.envelope.time),
            sample.node,
            sample.gpu,
            sample.uuid,
            sample.model,
            sample.namespace,
            sample.pod,
            sample.container,
            sample.team,
            sample.hourly_cost_usd,
        )
        totals = self.gpu.get(key)
        if totals is None:
            totals = self.gpu[key] = _GPUTotals()
        totals.events += 1
        seconds = sample.interval_seconds
        # repr(): a utilisation written as 0.07 counts as exactly 7/100.
        busy = _EXACT.multiply(seconds, Decimal(repr(sample.utilization_ratio)))
        sums = totals.by_holders.get(sample.holders)
        if sums is None:
            totals.by_holders[sample.holders] = [seconds, busy]
        else:
            sums[0] = _EXACT.add(sums[0], seconds)
            sums[1] = _EXACT.add(sums[1], busy)

    def rows(self, schedule: RateSchedule, context: ExportContext) -> list[dict[str, Any]]:
        """Every row as `{column: value}` (all `COLUMN_NAMES`), sorted by charge period, then LLM
        before GPU, then key. Raises `NoRateError` when no rate covers a charge period."""
        out: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        rates: dict[datetime, Decimal] = {}

        def rate_at(start: datetime) -> Decimal:
            rate = rates.get(start)
            if rate is None:
                rate = rates[start] = schedule.rate_at(start).rate
            return rate

        for key, totals in self.llm.items():
            row = _llm_row(key, totals, schedule.code, rate_at(key.start), context)
            out.append(((key.start, 0, *map(_sortable, key[1:])), row))
        for gkey, gtotals in self.gpu.items():
            row = _gpu_row(gkey, gtotals, schedule.code, rate_at(gkey.start), context)
            out.append(((gkey.start, 1, *map(_sortable, gkey[1:])), row))
        out.sort(key=lambda pair: pair[0])
        return [row for _key, row in out]


def _sortable(value: Any) -> tuple[int, Any]:
    return (0, "") if value is None else (1, str(value) if isinstance(value, Decimal) else value)


def money(value: Fraction | Decimal | int) -> Decimal:
    """A figure as written: exact to `SCALE` decimal places, rounded half-even beyond them."""
    if isinstance(value, Fraction):
        return Decimal(round(value * 10**SCALE)).scaleb(-SCALE)
    return Decimal(value).quantize(_QUANTUM, context=_ROUND)


def _billing_period(start: datetime) -> tuple[datetime, datetime]:
    first = start.replace(day=1, hour=0)
    following = (
        first.replace(year=first.year + 1, month=1)
        if first.month == 12
        else first.replace(month=first.month + 1)
    )
    return first, following


def _none_if_empty(value: str) -> str | None:
    return value if value.strip() else None


def _tags(pairs: Mapping[str, str]) -> str | None:
    tags = {k: v for k, v in pairs.items() if v}
    return json.dumps(tags, sort_keys=True, separators=(",", ":")) if tags else None


def _common(start: datetime, currency: str, fx: Decimal, context: ExportContext) -> dict[str, Any]:
    period_start, period_end = _billing_period(start)
    row = dict.fromkeys(COLUMN_NAMES)
    row.update(
        BillingAccountId=context.billing_account_id,
        BillingAccountName=context.billing_account_name,
        BillingCurrency=currency,
        BillingPeriodStart=period_start,
        BillingPeriodEnd=period_end,
        ChargeCategory="Usage",
        ChargeFrequency="Usage-Based",
        ChargePeriodStart=start,
        ChargePeriodEnd=start + _HOUR,
        PricingCurrency="USD",
        ServiceCategory=SERVICE_CATEGORY,
        x_ExchangeRate=fx,
    )
    return row


def _costs(
    row: dict[str, Any], cost: Decimal | Fraction, list_cost: Decimal | Fraction, fx: Decimal
) -> None:
    billed = money(_times(cost, fx))
    row.update(
        BilledCost=billed,
        EffectiveCost=billed,
        ContractedCost=billed,
        ListCost=money(_times(list_cost, fx)),
        PricingCurrencyEffectiveCost=money(cost),
    )


def _times(value: Decimal | Fraction, fx: Decimal) -> Decimal | Fraction:
    if isinstance(value, Fraction):
        return value * Fraction(fx)
    return _EXACT.multiply(value, fx)


def _llm_row(
    key: _LLMKey, totals: _Totals, currency: str, fx: Decimal, context: ExportContext
) -> dict[str, Any]:
    row = _common(key.start, currency, fx, context)
    _costs(row, totals.cost, totals.list_cost, fx)
    tokens = totals.tokens
    per_unit = Decimal(tokens).scaleb(-6)  # PricingQuantity: millions of tokens
    model_id = key.model_id or key.model
    sku = f"{key.provider}/{model_id}/{key.token_type}"
    # A row without one published rate (a reported cost, mixed sub-kinds of tokens) is priced at
    # what it comes to per million tokens, so that UnitPrice x PricingQuantity = cost.
    contracted_usd: Decimal | None = None
    list_usd: Decimal | None = None
    if key.rate is not None:
        contracted_usd = key.rate
    elif key.source != "unpriced" and per_unit:
        contracted_usd = _ROUND.divide(totals.cost, per_unit)
    if key.list_rate is not None:
        list_usd = key.list_rate
    elif key.source != "unpriced" and per_unit:
        list_usd = _ROUND.divide(totals.list_cost, per_unit)
    if key.source == "unpriced":
        price_tag = "unpriced"
    elif key.rate is None:
        price_tag = key.source if key.source == "reported" else "blended"
    else:
        price_tag = f"{key.rate.normalize():f}"
    row.update(
        ChargeDescription=f"{key.model} {key.token_type} tokens ({key.provider})",
        ConsumedQuantity=Decimal(tokens),
        ConsumedUnit=TOKENS_UNIT,
        PricingQuantity=per_unit,
        PricingUnit=TOKENS_PRICING_UNIT,
        ContractedUnitPrice=_unit(contracted_usd, fx),
        ListUnitPrice=_unit(list_usd, fx),
        PricingCurrencyContractedUnitPrice=_unit(contracted_usd, Decimal(1)),
        PricingCurrencyListUnitPrice=_unit(list_usd, Decimal(1)),
        PricingCategory="Other" if key.source == "unpriced" else "Standard",
        ProviderName=key.provider,
        PublisherName=key.provider,
        InvoiceIssuerName=key.provider,
        ServiceName=f"{key.provider} LLM API",
        ServiceSubcategory=LLM_SUBCATEGORY,
        SkuId=sku,
        SkuMeter=_METERS[key.token_type],
        SkuPriceId=f"{sku}:{price_tag}",
        SkuPriceDetails=json.dumps(
            {"x_ModelId": model_id, "x_TokenDirection": key.token_type},
            separators=(",", ":"),
        ),
        Tags=_tags({"team": key.team, "app": key.app}),
        x_ChargeSource="llm",
        x_Team=_none_if_empty(key.team),
        x_App=_none_if_empty(key.app),
        x_Model=key.model,
        x_ModelId=key.model_id,
        x_TokenType=key.token_type,
        x_CostSource=key.source,
        x_EventCount=totals.events,
    )
    return row


def _gpu_row(
    key: _GPUKey, totals: _GPUTotals, currency: str, fx: Decimal, context: ExportContext
) -> dict[str, Any]:
    row = _common(key.start, currency, fx, context)
    hours, busy = totals.hours()
    hourly = key.hourly_usd
    price = Fraction(0) if hourly is None else Fraction(hourly)
    cost = hours * price
    _costs(row, cost, cost, fx)
    sku = f"gpu/{key.model}"
    row.update(
        ChargeDescription=f"{key.model} GPU time on {key.node} (GPU {key.gpu})",
        ConsumedQuantity=money(hours),
        ConsumedUnit=GPU_UNIT,
        PricingQuantity=money(hours),
        PricingUnit=GPU_UNIT,
        ContractedUnitPrice=_unit(hourly, fx),
        ListUnitPrice=_unit(hourly, fx),
        PricingCurrencyContractedUnitPrice=_unit(hourly, Decimal(1)),
        PricingCurrencyListUnitPrice=_unit(hourly, Decimal(1)),
        PricingCategory="Other" if hourly is None else "Standard",
        ProviderName=context.gpu_provider,
        PublisherName=context.gpu_provider,
        InvoiceIssuerName=context.gpu_provider,
        ResourceId=key.uuid,
        ResourceName=f"{key.node}/gpu{key.gpu}",
        ResourceType="GPU",
        ServiceName="GPU compute",
        ServiceSubcategory=GPU_SUBCATEGORY,
        SkuId=sku,
        SkuMeter="GPU Time",
        SkuPriceId=f"{sku}:{'unpriced' if key.hourly_usd is None else key.hourly_usd}",
        SkuPriceDetails=json.dumps({"GpuCount": 1, "x_GpuModel": key.model}, separators=(",", ":")),
        Tags=_tags({"team": key.team, "namespace": key.namespace, "pod": key.pod}),
        x_ChargeSource="gpu",
        x_Team=_none_if_empty(key.team),
        x_Namespace=_none_if_empty(key.namespace),
        x_Pod=_none_if_empty(key.pod),
        x_Container=_none_if_empty(key.container),
        # The hourly price the samples carried (the GPU exporter's price table or overrides).
        x_CostSource="unpriced" if hourly is None else "sample",
        x_Node=key.node,
        x_GpuIndex=key.gpu,
        x_GpuModel=key.model,
        x_EventCount=totals.events,
        x_IdleCost=money((hours - busy) * price * Fraction(fx)),
    )
    return row


def _unit(usd: Decimal | None, fx: Decimal) -> Decimal | None:
    return None if usd is None else money(_ROUND.multiply(usd, fx))
