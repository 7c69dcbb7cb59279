"""Money in the reporting currency: effective-dated USD exchange rates and the gauge of the one in force."""

from ..checks import FxRate, as_instant, parse_rates
from .rates import (
    USD,
    CurrencyError,
    NoRateError,
    RateSchedule,
    RatesFileError,
    exact_mul,
    parse_rates_text,
)

__all__ = [
    "USD",
    "CurrencyError",
    "FxRate",
    "NoRateError",
    "RateSchedule",
    "RatesFileError",
    "as_instant",
    "exact_mul",
    "parse_rates",
    "parse_rates_text",
]
