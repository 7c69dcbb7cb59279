"""Compiled price cards: one model's genai-prices `ModelPrice` resolved once into flat rates and tier thresholds.

`genai_prices.calc_price` re-resolves units, validates them and walks the unit registry on every
call (about 150 µs), far too slow for an ingest path at 20,000 events/s. A `RateCard` does that work
once per model price and prices a call by the same rules: each priced unit is charged for its
*leaf* count (its usage minus what more specific priced units already cover), at the tier chosen by
the call's total input tokens (a tier applies to all tokens once `input_tokens > start`), as
`price * count / per` in `Decimal`. Tests prove the result equals `calc_price` to the micro-dollar.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from ..events.usage import TOKEN_TYPES

MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)
# Index of each token type in the `TOKEN_TYPES` tuples this module returns.
INPUT, CACHE_READ, CACHE_WRITE, OUTPUT = range(4)
# The standard units an event's token fields report, by token type.
_STANDARD_KEYS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")


class PricingError(ValueError):
    """A usage report that the price card cannot price consistently (e.g. a part exceeds its whole)."""


def _registry() -> Any:
    # genai-prices keeps its unit registry private; `ModelPrice.calc_price` reads the same object.
    from genai_prices.units import _get_registry

    return _get_registry()


@dataclass(frozen=True, slots=True)
class UnitRate:
    """The price of one genai-prices unit (`input_tokens`, `cache_read_tokens`, `web_searches`...)."""

    usage_key: str
    price_key: str
    per: int
    # Which of `TOKEN_TYPES` its cost is counted under.
    token_type: int
    base: Decimal
    # (start, price) ascending: the last tier with `total input tokens > start` applies.
    tiers: tuple[tuple[int, Decimal], ...]
    # Priced units more specific than this one: their leaf counts are carved out of this one's.
    descendants: tuple[str, ...]

    def rate(self, total_input_tokens: int) -> Decimal:
        """The price per `per` units for a call with this many input tokens."""
        for start, price in reversed(self.tiers):
            if total_input_tokens > start:
                return price
        return self.base

    def scaled(self, factor: Decimal) -> UnitRate:
        """This unit with every price (base and tiers) multiplied by `factor`."""
        return UnitRate(
            self.usage_key,
            self.price_key,
            self.per,
            self.token_type,
            self.base * factor,
            tuple((start, price * factor) for start, price in self.tiers),
            self.descendants,
        )


@dataclass(frozen=True, slots=True)
class CardCost:
    """What one call costs on one card: per token type, and the per-million rate applied to each."""

    by_type: tuple[Decimal, Decimal, Decimal, Decimal]
    rates: tuple[Decimal, Decimal, Decimal, Decimal]

    @property
    def total(self) -> Decimal:
        """The whole cost of the call."""
        return self.by_type[0] + self.by_type[1] + self.by_type[2] + self.by_type[3]


class RateCard:
    """One model's resolved prices; `cost(usage)` prices one call without touching genai-prices."""

    __slots__ = (
        "_by_key",
        "_inference",
        "_level_rates",
        "_level_std_rates",
        "_plan",
        "_priced_keys",
        "_starts",
        "_tiered",
        "model_id",
        "provider_id",
        "units",
    )

    def __init__(self, provider_id: str, model_id: str, units: Iterable[UnitRate]) -> None:
        ordered = _order(units)
        self.provider_id = provider_id
        self.model_id = model_id
        self.units: tuple[UnitRate, ...] = ordered
        self._by_key = {u.usage_key: u for u in ordered}
        self._tiered = any(u.tiers for u in ordered)
        # Every tier start of the card: a call's tier level is how many of them its input
        # tokens exceed, and each level has one rate per unit (and per token type) worked out here.
        self._starts = sorted({start for u in ordered for start, _ in u.tiers})
        levels = [0] + [start + 1 for start in self._starts]
        self._level_rates = [tuple(u.rate(n) for u in ordered) for n in levels]
        self._level_std_rates = [self.rates(n) for n in levels]
        self._plan = tuple(
            (u.usage_key, u.token_type, u.per, u.descendants, u.usage_key == "requests")
            for u in ordered
        )
        self._priced_keys = frozenset(u.usage_key for u in ordered if u.usage_key != "requests")
        self._inference: dict[tuple[tuple[str, bool], ...], str | None] = {}

    @classmethod
    def from_model_price(cls, provider_id: str, model_id: str, model_price: Any) -> RateCard:
        """Compile a genai-prices `ModelPrice`; raises `PricingError` when genai-prices itself
        would refuse it (unknown price keys, missing ancestor or join prices)."""
        from genai_prices.types import TieredPrices
        from genai_prices.validation import validate_priced_units

        registry = _registry()
        entries: list[tuple[Any, Decimal, tuple[tuple[int, Decimal], ...]]] = []
        for price_key, value in vars(model_price).items():
            if price_key.startswith("_") or value is None:
                continue
            try:
                unit = registry.unit_for_price_key(price_key)
            except KeyError as exc:
                raise PricingError(f"unknown price key {price_key}") from exc
            if isinstance(value, TieredPrices):
                tiers = tuple(sorted((t.start, t.price) for t in value.tiers))
                entries.append((unit, value.base, tiers))
            else:
                entries.append((unit, value, ()))
        try:
            validate_priced_units(tuple(e[0] for e in entries), registry)
        except ValueError as exc:
            raise PricingError(str(exc)) from exc
        return cls(provider_id, model_id, _units(entries))

    def with_prices(
        self, per_million: Mapping[str, Decimal], factor: Decimal | None = None
    ) -> RateCard:
        """A card with the standard token units (`input`, `cache_read`, `cache_write`, `output`)
        set to flat prices per million tokens, then every price multiplied by `factor`."""
        registry = _registry()
        replaced = {_STANDARD_KEYS[TOKEN_TYPES.index(t)] for t in per_million}
        entries = [
            (registry.units[u.usage_key], u.base, u.tiers)
            for u in self.units
            if u.usage_key not in replaced
        ]
        for token_type, price in per_million.items():
            key = _STANDARD_KEYS[TOKEN_TYPES.index(token_type)]
            entries.append((registry.units[key], price, ()))
        units = _units(entries)
        if factor is not None:
            units = [u.scaled(factor) for u in units]
        return RateCard(self.provider_id, self.model_id, units)

    @classmethod
    def flat(cls, provider_id: str, model_id: str, per_million: Mapping[str, Decimal]) -> RateCard:
        """A card holding only the given standard token prices (a model the catalogue lacks)."""
        return cls(provider_id, model_id, ()).with_prices(per_million)

    def rates(self, total_input_tokens: int = 0) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """USD per million tokens applied to each token type at this input size. A cache type
        without a price of its own is charged as input, as genai-prices does."""
        by_key = self._by_key
        out: list[Decimal] = []
        input_rate = _per_million(by_key.get("input_tokens"), total_input_tokens)
        for key in _STANDARD_KEYS:
            unit = by_key.get(key)
            out.append(
                _per_million(unit, total_input_tokens)
                if unit is not None or key == "output_tokens"
                else input_rate
            )
        return (out[0], out[1], out[2], out[3])

    def cost(self, usage: Mapping[str, int | Decimal]) -> CardCost:
        """Price one call's usage (genai-prices usage keys) and split it by token type."""
        if not self._priced_keys <= usage.keys():
            self._check_inference(usage)
        level = bisect_left(self._starts, usage.get("input_tokens", 0)) if self._tiered else 0
        unit_rates = self._level_rates[level]
        leaves: dict[str, int | Decimal] = {}
        costs = [_ZERO, _ZERO, _ZERO, _ZERO]
        get = usage.get
        for (key, token_type, per, descendants, per_request), rate in zip(
            self._plan, unit_rates, strict=True
        ):
            if per_request:
                count: int | Decimal = 1
            else:
                count = get(key, 0)
                for d in descendants:
                    count -= leaves[d]
                if count < 0:
                    raise PricingError(_negative(self._by_key[key], usage))
            leaves[key] = count
            if count:
                # The order of operations genai-prices uses, so results agree to the last digit.
                costs[token_type] += rate * Decimal(count) / per
        rates = self._level_std_rates[level]
        # Cache tokens without a price of their own were charged inside the input leaf at the
        # input rate; count that money under their own token type so tokens and dollars split alike.
        for index, key in ((CACHE_READ, "cache_read_tokens"), (CACHE_WRITE, "cache_write_tokens")):
            if key not in self._priced_keys and (n := get(key, 0)):
                moved = min(costs[INPUT], rates[INPUT] * Decimal(n) / MILLION)
                costs[INPUT] -= moved
                costs[index] += moved
        return CardCost((costs[0], costs[1], costs[2], costs[3]), rates)

    def _check_inference(self, usage: Mapping[str, int | Decimal]) -> None:
        # A priced unit the report leaves out counts as 0, unless more specific usage was
        # reported (then genai-prices refuses to guess); decided once per shape of report.
        shape = tuple((k, not v) for k, v in usage.items())
        verdict = self._inference.get(shape, "")
        if verdict == "":
            reported = frozenset(k for k, v in usage.items() if v)
            missing = tuple(u.usage_key for u in self.units if u.usage_key not in usage)
            verdict = _inference_error(missing, reported)
            if len(self._inference) < 256:
                self._inference[shape] = verdict
        if verdict is not None:
            raise PricingError(verdict)

    def __repr__(self) -> str:
        return f"RateCard({self.provider_id}/{self.model_id}: {', '.join(u.price_key for u in self.units)})"


@lru_cache(maxsize=1024)
def _inference_error(missing: tuple[str, ...], reported: frozenset[str]) -> str | None:
    from genai_prices import Usage

    probe = Usage(**{key: 1 for key in reported})
    for key in missing:
        if key == "requests":
            continue
        try:
            getattr(probe, key)
        except ValueError as exc:
            return str(exc)
    return None


def _type_index(unit: Any) -> int:
    dims = unit.dimensions
    kind = dims.get("token_type")
    if kind == "cache_read":
        return CACHE_READ
    if kind == "cache_write":
        return CACHE_WRITE
    if dims.get("direction") == "output":
        return OUTPUT
    # Input tokens and what carries no direction (per-request or per-search fees) count as input.
    return INPUT


def _units(entries: list[tuple[Any, Decimal, tuple[tuple[int, Decimal], ...]]]) -> list[UnitRate]:
    out = []
    for unit, base, tiers in entries:
        descendants = tuple(
            other.usage_key
            for other, _, _ in entries
            if other is not unit and unit.dimensions.items() <= other.dimensions.items()
        )
        out.append(
            UnitRate(
                unit.usage_key,
                unit.price_key,
                unit.per,
                _type_index(unit),
                base,
                tiers,
                descendants,
            )
        )
    return out


def _order(units: Iterable[UnitRate]) -> tuple[UnitRate, ...]:
    # Most specific first (genai-prices' order), so a unit's descendants are settled before it.
    registry = _registry()
    return tuple(
        sorted(units, key=lambda u: (-len(registry.units[u.usage_key].dimensions), u.usage_key))
    )


def _per_million(unit: UnitRate | None, total_input_tokens: int) -> Decimal:
    if unit is None:
        return _ZERO
    return unit.rate(total_input_tokens) * MILLION / unit.per


def _negative(unit: UnitRate, usage: Mapping[str, int | Decimal]) -> str:
    whole = usage.get(unit.usage_key, 0)
    parts = [(d, usage.get(d, 0)) for d in unit.descendants if usage.get(d, 0)]
    named = ", ".join(f"{k} ({v})" for k, v in parts)
    return f"usage for {named} exceeds {unit.usage_key} ({whole})"
