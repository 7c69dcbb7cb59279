"""Compiled price cards: one model's genai-prices `ModelPrice` resolved once into flat rates and tier thresholds.

`genai_prices.calc_price` re-resolves units, validates them and walks the unit registry on every
call (about 150 µs), far too slow for an ingest path at 20,000 events/s. A `RateCard` does that work
once per model price and prices a call by the same rules: each priced unit is charged for its
*leaf* count (its usage minus what more specific priced units already cover), at the tier chosen by
the call's total input tokens (a tier applies to all tokens once `input_tokens > start`), as
`price * count / per`. Tests prove the result equals `calc_price` exactly.

Money stays exact without `Decimal` on the hot path: a price is held as an integer number of
`1e-24` USD per unit counted (every catalogue price is a whole number of those), so a call costs
integer multiplications and its cost is exact in those units (`CardCost.units`). A card with a
price that is no whole number of them (a negotiated price with more digits, a per-hour unit) prices
in `Decimal` as genai-prices does (`CardCost.usd`). Which leaf each unit gets is worked out once per
shape of usage report (its keys) as a linear combination of the reported counts.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Context, Decimal
from fractions import Fraction
from functools import lru_cache
from itertools import product
from typing import Any, NamedTuple

from ..events.usage import STANDARD_USAGE_KEYS, TOKEN_TYPES

MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)
# Exact money: `CardCost.units` and `Cost.units` count 1e-24 USD.
USD_SCALE = 24
UNITS_PER_USD = 10**USD_SCALE
# Wide enough that turning units into dollars never rounds.
_EXACT = Context(prec=100)
# Usage shapes whose leaf plans a card keeps (a provider response may report any keys).
_MAX_PLANS = 64
# Index of each token type in the `TOKEN_TYPES` tuples this module returns.
INPUT, CACHE_READ, CACHE_WRITE, OUTPUT = range(4)
# The standard units an event's token fields report, by token type.
_STANDARD_KEYS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")


class PricingError(ValueError):
    """A usage report that the price card cannot price consistently (e.g. a part exceeds its whole)."""


_new_cost = tuple.__new__


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


def units_to_usd(units: int) -> Decimal:
    """Exact dollars of an amount in `1e-24` USD units."""
    return Decimal(units).scaleb(-USD_SCALE, _EXACT)


def exact_units(usd: Decimal, per: int = 1) -> int | None:
    """`usd / per` in `1e-24` USD units, or None when it is no whole number of them."""
    scaled = Fraction(usd) * UNITS_PER_USD / per
    return scaled.numerator if scaled.denominator == 1 else None


class CardCost(NamedTuple):
    """What one call costs on one card, per token type, and the per-million rate applied to each.

    The cost is in `units` (exact integers of 1e-24 USD) or, on a card priced in `Decimal`, in
    `usd`; `by_type` gives it in dollars either way.
    """

    units: tuple[int, int, int, int] | None
    usd: tuple[Decimal, Decimal, Decimal, Decimal] | None
    rates: tuple[Decimal, Decimal, Decimal, Decimal]

    @property
    def by_type(self) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """USD per `TOKEN_TYPES` entry."""
        return as_usd(self.units, self.usd)

    @property
    def total(self) -> Decimal:
        """The whole cost of the call."""
        return total_usd(self.units, self.usd)


def total_usd(
    units: tuple[int, int, int, int] | None, usd: tuple[Decimal, Decimal, Decimal, Decimal] | None
) -> Decimal:
    """The sum of a cost's four parts in USD, given as exact units or as `Decimal`s."""
    by_type = as_usd(units, usd)
    return by_type[0] + by_type[1] + by_type[2] + by_type[3]


def as_usd(
    units: tuple[int, int, int, int] | None, usd: tuple[Decimal, Decimal, Decimal, Decimal] | None
) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """A cost's four parts in USD, from exact units (10^-24 USD) or as given."""
    if usd is not None:
        return usd
    assert units is not None
    return (
        units_to_usd(units[0]),
        units_to_usd(units[1]),
        units_to_usd(units[2]),
        units_to_usd(units[3]),
    )


@dataclass(slots=True)
class _Plan:
    """How a card prices one shape of usage report (its keys, in order): each priced unit's leaf
    count as a constant plus a linear combination of the reported values, and the inference
    verdicts genai-prices gives for the units the report leaves out."""

    keys: tuple[str, ...]
    # (unit position, token type, per, constant, index when the leaf is exactly one reported
    # value else -1, ((value index, coefficient), ...)) for every unit whose leaf can be non-zero.
    items: tuple[tuple[int, int, int, int, int, tuple[tuple[int, int], ...]], ...]
    # (token type, value index): cache counts charged inside the input leaf, moved to their type.
    moves: tuple[tuple[int, int], ...]
    input_index: int
    # Priced units the report leaves out: genai-prices infers them, or refuses to guess.
    missing: tuple[str, ...]
    check: bool
    verdicts: dict[tuple[bool, ...], str | None]


class RateCard:
    """One model's resolved prices; `cost(usage)` prices one call without touching genai-prices."""

    __slots__ = (
        "_by_key",
        "_input_units",
        "_level_rates",
        "_level_std_rates",
        "_level_units",
        "_plans",
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
        # The same rates in 1e-24 USD per unit counted, when every one is a whole number of them.
        level_units = [
            tuple(exact_units(rate, u.per) for rate, u in zip(rates, ordered, strict=True))
            for rates in self._level_rates
        ]
        exact = all(r is not None for rates in level_units for r in rates)
        self._level_units: list[tuple[int, ...]] | None = (
            level_units if exact else None  # type: ignore[assignment]
        )
        input_unit = self._by_key.get("input_tokens")
        self._input_units: list[int] = (
            [rates[ordered.index(input_unit)] for rates in level_units]  # type: ignore[misc]
            if exact and input_unit is not None
            else [0] * len(levels)
        )
        self._priced_keys = frozenset(u.usage_key for u in ordered if u.usage_key != "requests")
        self._plans: dict[tuple[str, ...], _Plan] = {}

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
        """Price one call's usage (genai-prices usage keys) and split it by token type.

        Raises `PricingError` when genai-prices would refuse the report (a more specific count
        exceeds its whole, or a priced unit it leaves out cannot be inferred)."""
        keys = tuple(usage)
        plan = self._plans.get(keys) or self._compile(keys)
        values = tuple(usage.values())
        return self._price(plan, values, all(type(v) is int for v in values))

    def cost_counts(self, counts: tuple[int, int, int, int, int]) -> CardCost:
        """`cost` of a report of exactly the token-field counts (`STANDARD_USAGE_KEYS`: input,
        cache read, cache write, output, reasoning), without building its mapping."""
        plan = self._plans.get(STANDARD_USAGE_KEYS) or self._compile(STANDARD_USAGE_KEYS)
        return self._price(plan, counts, True)

    def _price(self, plan: _Plan, values: tuple[Any, ...], integers: bool) -> CardCost:
        if plan.check:
            self._check_inference(plan, values)
        level = 0
        if self._tiered and plan.input_index >= 0:
            level = bisect_left(self._starts, values[plan.input_index])
        level_units = self._level_units
        # Whole counts on a card with whole-unit rates: exact integers; else Decimal.
        exact = integers and level_units is not None
        rates: tuple[Any, ...] = (
            level_units[level] if exact else self._level_rates[level]  # type: ignore[index]
        )
        zero: int | Decimal = 0 if exact else _ZERO
        costs = [zero, zero, zero, zero]
        for position, token_type, per, constant, single, terms in plan.items:
            if single >= 0:
                count = values[single]
            else:
                count = constant
                for index, coefficient in terms:
                    count += coefficient * values[index]
            if count < 0:
                raise PricingError(_negative(self.units[position], plan, values))
            if count:
                if exact:
                    costs[token_type] += rates[position] * count
                else:
                    # The order of operations genai-prices uses, so results agree to the digit.
                    costs[token_type] += rates[position] * Decimal(count) / per
        if plan.moves:
            # Cache tokens without a price of their own were charged inside the input leaf at
            # the input rate; count that money under their own token type so tokens and dollars
            # split alike.
            input_rate = self._input_units[level] if exact else self._level_std_rates[level][INPUT]
            for token_type, index in plan.moves:
                n = values[index]
                if n:
                    moved = min(
                        costs[INPUT],
                        input_rate * n if exact else input_rate * Decimal(n) / MILLION,
                    )
                    costs[INPUT] -= moved
                    costs[token_type] += moved
        split = (costs[0], costs[1], costs[2], costs[3])
        if exact:
            return _new_cost(CardCost, (split, None, self._level_std_rates[level]))
        return _new_cost(CardCost, (None, split, self._level_std_rates[level]))

    def _compile(self, keys: tuple[str, ...]) -> _Plan:
        """Work out the leaf of every priced unit for reports with these keys."""
        index = {key: i for i, key in enumerate(keys)}
        # Each unit's leaf as (constant, {value index: coefficient}), most specific first, as
        # genai-prices settles them: its own count minus the leaves of its priced descendants.
        leaves: dict[str, tuple[int, dict[int, int]]] = {}
        items = []
        for position, unit in enumerate(self.units):
            if unit.usage_key == "requests":
                constant, vector = 1, {}
            else:
                constant = 0
                vector = {index[unit.usage_key]: 1} if unit.usage_key in index else {}
                for descendant in unit.descendants:
                    d_constant, d_vector = leaves[descendant]
                    constant -= d_constant
                    for i, c in d_vector.items():
                        vector[i] = vector.get(i, 0) - c
                vector = {i: c for i, c in vector.items() if c}
            leaves[unit.usage_key] = (constant, vector)
            if constant or vector:
                single = next(iter(vector)) if not constant and list(vector.values()) == [1] else -1
                terms = tuple(sorted(vector.items()))
                items.append((position, unit.token_type, unit.per, constant, single, terms))
        moves = tuple(
            (token_type, index[key])
            for token_type, key in (
                (CACHE_READ, "cache_read_tokens"),
                (CACHE_WRITE, "cache_write_tokens"),
            )
            if key not in self._priced_keys and key in index
        )
        missing = tuple(u.usage_key for u in self.units if u.usage_key not in index)
        plan = _Plan(
            keys,
            tuple(items),
            moves,
            index.get("input_tokens", -1),
            missing,
            check=not self._priced_keys <= index.keys(),
            verdicts={},
        )
        if plan.check and len(keys) <= 6:
            # Few enough shapes to settle every verdict now: most cards never refuse one.
            for mask in product((False, True), repeat=len(keys)):
                plan.verdicts[mask] = _inference_error(missing, _reported(keys, mask))
            plan.check = any(v is not None for v in plan.verdicts.values())
        if len(self._plans) < _MAX_PLANS:
            self._plans[keys] = plan
        return plan

    def _check_inference(self, plan: _Plan, values: tuple[Any, ...]) -> None:
        # A priced unit the report leaves out counts as 0, unless more specific usage was
        # reported (then genai-prices refuses to guess); decided once per shape of report.
        mask = tuple(map(bool, values))
        verdict = plan.verdicts.get(mask, "")
        if verdict == "":
            verdict = _inference_error(plan.missing, _reported(plan.keys, mask))
            if len(plan.verdicts) < 256:
                plan.verdicts[mask] = verdict
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


def _reported(keys: tuple[str, ...], mask: tuple[bool, ...]) -> frozenset[str]:
    return frozenset(key for key, nonzero in zip(keys, mask, strict=True) if nonzero)


def _negative(unit: UnitRate, plan: _Plan, values: tuple[Any, ...]) -> str:
    usage = dict(zip(plan.keys, values, strict=True))
    whole = usage.get(unit.usage_key, 0)
    parts = [(d, usage.get(d, 0)) for d in unit.descendants if usage.get(d, 0)]
    named = ", ".join(f"{k} ({v})" for k, v in parts)
    return f"usage for {named} exceeds {unit.usage_key} ({whole})"
