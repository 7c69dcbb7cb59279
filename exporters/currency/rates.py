"""Effective-dated USD→currency exchange rates: parsing, validation and the rate in force at an instant.

Pure: no clock and no I/O. A rate applies from its `from` instant (a date means 00:00 UTC) until
the next rate's, and, when a maximum age is configured, no longer than that after its own start.
An instant no rate covers raises `NoRateError` (never a silent 1.0). Rates and conversions are
exact `Decimal`s.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal
from typing import TYPE_CHECKING, Any

from ..checks import FxRate, parse_rates

if TYPE_CHECKING:
    from ..config import CurrencyConfig

USD = "USD"
CODE = re.compile(r"[A-Z]{3}")
# Enough digits that a converted figure (a cost times a rate) is never rounded by the context.
_EXACT = Context(prec=60)


class CurrencyError(Exception):
    """Base of the currency errors."""


class NoRateError(CurrencyError):
    """No configured rate covers the instant (before the first rate, or past the last one's
    maximum age)."""

    def __init__(self, code: str, instant: datetime, reason: str) -> None:
        self.code = code
        self.instant = instant
        super().__init__(f"no USD->{code} rate for {instant.isoformat()}: {reason}")


class RatesFileError(CurrencyError):
    """A rates file that cannot be read or holds invalid rates; `problems` lists each as
    `(path, reason)`."""

    def __init__(self, source: str, problems: Sequence[tuple[str, str]]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(
            f"{source}: " + "; ".join(f"{p}: {r}" if p else r for p, r in self.problems)
        )


def parse_rates_text(text: str, source: str) -> tuple[FxRate, ...]:
    """A rates file: CSV with a `from,rate` header when `source` ends in `.csv`, else YAML (a
    list of `{from, rate}`, or a mapping with that list under `rates`). Raises `RatesFileError`."""
    entries: Any
    if source.lower().endswith(".csv"):
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None or not {"from", "rate"} <= set(reader.fieldnames):
            raise RatesFileError(source, [("", "CSV needs a header line `from,rate`")])
        entries = [{"from": row["from"], "rate": row["rate"]} for row in reader]
    else:
        import yaml

        try:
            entries = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise RatesFileError(source, [("", f"not valid YAML ({exc})")]) from exc
        if isinstance(entries, Mapping):
            entries = entries.get("rates")
        if not isinstance(entries, list):
            raise RatesFileError(source, [("", "must be a list of {from, rate} (or rates: [...])")])
    rates, problems = parse_rates(entries, prefix="rates")
    if problems:
        raise RatesFileError(source, problems)
    if not rates:
        raise RatesFileError(source, [("", "holds no rate")])
    return rates


@dataclass(frozen=True)
class RateSchedule:
    """The USD→`code` rates of one currency, oldest first; answers the rate in force at an instant."""

    code: str
    rates: tuple[FxRate, ...] = ()
    # A rate no longer applies this long after its start (a rates file nobody refreshed); None:
    # each rate applies until the next.
    max_age: timedelta | None = None

    @classmethod
    def from_config(cls, config: CurrencyConfig) -> RateSchedule:
        """The inline `rates` of the `currency` section as a schedule (the rates file is read by
        `currency.source`)."""
        rates, _problems = parse_rates(config.rates)
        max_age = (
            None if config.max_rate_age_days is None else timedelta(days=config.max_rate_age_days)
        )
        return cls(config.code, rates, max_age)

    @property
    def identity(self) -> bool:
        """True for US dollars, where every rate is exactly 1 whatever is configured."""
        return self.code == USD

    def rate_at(self, instant: datetime) -> FxRate:
        """The rate in force at `instant` (aware). Raises `NoRateError` when none covers it."""
        if self.identity:
            return FxRate(datetime.min.replace(tzinfo=UTC), Decimal(1))
        if instant.tzinfo is None:
            raise ValueError("instant must be timezone-aware")
        found: FxRate | None = None
        for entry in self.rates:
            if entry.start > instant:
                break
            found = entry
        if found is None:
            first = (
                f"the first rate starts {self.rates[0].start.isoformat()}"
                if self.rates
                else "no rates are configured"
            )
            raise NoRateError(self.code, instant, first)
        if self.max_age is not None and instant - found.start > self.max_age:
            raise NoRateError(
                self.code,
                instant,
                f"the latest rate (from {found.start.isoformat()}) is older than "
                f"{_days(self.max_age)} days",
            )
        return found

    def convert(self, usd: Decimal, instant: datetime) -> Decimal:
        """`usd` in this currency at the rate in force at `instant`, exact (no rounding)."""
        return exact_mul(usd, self.rate_at(instant).rate)


def exact_mul(a: Decimal, b: Decimal) -> Decimal:
    """`a * b` without the default context's 28-digit rounding."""
    return _EXACT.multiply(a, b)


def _days(age: timedelta) -> str:
    days = age.total_seconds() / 86400
    return f"{days:g}"
