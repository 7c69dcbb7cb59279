"""Value checks the config schema shares with the features that read it: the `validate()` building
block, GPU prices, GPU price rules and effective-dated exchange rates. Pure, and imports no feature module, so the schema
(`exporters.config`) can validate a file without loading the GPU or currency code."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple, Protocol


def check(condition: bool, field: str, reason: str) -> list[tuple[str, str]]:
    """Return `[(field, reason)]` when `condition` is false: a terse building block for `validate()`."""
    return [] if condition else [(field, reason)]


# Prices are dollars with at most this many decimal places (a nano-dollar).
MAX_DECIMAL_PLACES = 9


class PriceRule(Protocol):
    """The shape of a `gpu.price_overrides` entry (`config.GPUPriceOverride`), read-only."""

    @property
    def usd_per_hour(self) -> Decimal: ...
    @property
    def model(self) -> str | None: ...
    @property
    def node(self) -> str | None: ...
    @property
    def instance_type(self) -> str | None: ...
    @property
    def node_label(self) -> str | None: ...


def exact_decimal(value: Any) -> Decimal | None:
    """`value` as a finite Decimal (an int, a Decimal or a numeric string; never a bool or a float
    that lost its digits), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal) and value.is_finite():
        return value
    if isinstance(value, str):
        try:
            d = Decimal(value)
        except InvalidOperation:
            return None
        return d if d.is_finite() else None
    return None


def check_price(value: Any) -> str | None:
    """Why `value` is not a usable price in dollars (None when it is): a finite decimal, at least 0,
    at most 9 decimal places."""
    d = exact_decimal(value)
    if d is None:
        return f"must be a decimal number (got {value!r})"
    if d < 0:
        return f"must not be negative (got {value})"
    exponent = d.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_DECIMAL_PLACES:
        return f"more than {MAX_DECIMAL_PLACES} decimal places (got {value})"
    return None


def price_rule_problems(rule: PriceRule) -> list[tuple[str, str]]:
    """`(field, reason)` for each problem of one GPU price rule: a usable price, a valid model
    expression and a `key=value` node label."""
    problems: list[tuple[str, str]] = []
    reason = check_price(rule.usd_per_hour)
    if reason:
        problems.append(("usd_per_hour", reason))
    if rule.model is not None:
        try:
            re.compile(rule.model)
        except re.error as exc:
            problems.append(("model", f"not a regular expression ({exc})"))
    if rule.node_label is not None:
        key, sep, _ = rule.node_label.partition("=")
        if not sep or not key:
            problems.append(("node_label", "must be key=value"))
    return problems


class FxRate(NamedTuple):
    """One effective-dated rate: `rate` units of the currency per US dollar from `start` on."""

    start: datetime
    rate: Decimal


def as_instant(value: Any) -> datetime | None:
    """A `from` value as an aware UTC datetime: a date (00:00 UTC), a datetime (naive means
    UTC) or an ISO 8601 string; None when it is none of those."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return as_instant(date.fromisoformat(text))
            return as_instant(datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def _as_rate(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        # str() first: a YAML float 0.7893 must be exactly 0.7893, not its binary neighbour.
        rate = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return rate if rate.is_finite() else None


def parse_rates(
    entries: Iterable[Any], prefix: str = "rates"
) -> tuple[tuple[FxRate, ...], list[tuple[str, str]]]:
    """Parse `[{from: 2026-11-01, rate: 0.7893}, ...]`; returns the rates and every problem as
    `(path, reason)`. Rates must be positive and their `from` strictly increasing."""
    rates: list[FxRate] = []
    problems: list[tuple[str, str]] = []
    previous: datetime | None = None
    for i, entry in enumerate(entries):
        path = f"{prefix}[{i}]"
        if not isinstance(entry, Mapping):
            problems.append((path, "must be a mapping {from: DATE, rate: NUMBER}"))
            continue
        unknown = sorted(str(k) for k in entry if k not in ("from", "rate"))
        if unknown:
            problems.append((f"{path}.{unknown[0]}", "unknown key (expected from and rate)"))
        start = as_instant(entry.get("from"))
        if "from" not in entry:
            problems.append((f"{path}.from", "required"))
        elif start is None:
            problems.append(
                (f"{path}.from", f"must be a date or ISO 8601 time (got {entry['from']!r})")
            )
        rate = _as_rate(entry.get("rate"))
        if "rate" not in entry:
            problems.append((f"{path}.rate", "required"))
        elif rate is None:
            problems.append((f"{path}.rate", f"must be a decimal number (got {entry['rate']!r})"))
        elif rate <= 0:
            problems.append((f"{path}.rate", "must be positive"))
            rate = None
        if start is not None and previous is not None and start <= previous:
            problems.append((f"{path}.from", "must be later than the previous rate's from"))
            start = None
        if start is not None and rate is not None:
            rates.append(FxRate(start, rate))
            previous = start
    return tuple(rates), problems
