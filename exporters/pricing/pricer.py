"""Prices one validated LLM call: reported `cost_usd`, else an override, else the genai-prices catalogue, else unpriced.

Each (provider, model) is resolved in the catalogue once and each model price compiled into a
`RateCard` once, so pricing an event costs a few dictionary look-ups and integer multiplications
(exact, in 1e-24 USD units; `Decimal` where a price or a reported cost has more digits).
The catalogue is the bundled genai-prices snapshot (no network) unless auto-update installed a newer
one; a new snapshot empties the caches.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, NamedTuple

from genai_prices import data_snapshot

from ..events.providers import prices_provider_id
from ..events.usage import TOKEN_TYPES, UsageRecord
from .overrides import PriceOverride
from .ratecard import CardCost, PricingError, RateCard, as_usd, total_usd

log = logging.getLogger(__name__)

_ZERO = Decimal(0)
# genai-prices bills these by audio seconds with a 10-second minimum; its own code does that.
_SPECIAL = {("groq", "whisper-large-v3"), ("groq", "whisper-large-v3-turbo")}
_SPECIAL_MODELS = frozenset(model for _provider, model in _SPECIAL)

CostSource = Literal["catalogue", "override", "reported", "unpriced"]


class Cost(NamedTuple):
    """What one call cost, split by `TOKEN_TYPES`, where the figure came from, and the rates applied.

    The cost is exact either way: in `units` (integers of 1e-24 USD, `ratecard.UNITS_PER_USD`)
    or, where it has more digits than those hold (a reported cost, some negotiated prices), in
    `usd`; the other is None, and `by_type` gives dollars. `rates` (USD per million tokens per
    token type) is None when no price was applied: the cost was reported by the caller or the
    model is unpriced.
    """

    units: tuple[int, int, int, int] | None
    usd: tuple[Decimal, Decimal, Decimal, Decimal] | None
    source: CostSource
    rates: tuple[Decimal, Decimal, Decimal, Decimal] | None = None
    model_id: str | None = None

    @property
    def by_type(self) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """USD per `TOKEN_TYPES` entry."""
        return as_usd(self.units, self.usd)

    @property
    def total(self) -> Decimal:
        """The call's whole cost in USD."""
        return total_usd(self.units, self.usd)

    @property
    def priced(self) -> bool:
        """False when no price was found (the call counts in `aifinops_llm_unpriced_requests_total`)."""
        return self.source != "unpriced"


@dataclass(frozen=True, slots=True)
class _Model:
    """A (provider, model) resolved once: the catalogue's provider/model and the overrides that may apply."""

    provider_id: str | None
    model_info: Any  # genai_prices.types.ModelInfo, or None when the catalogue lacks the model
    catalogue_provider: Any
    overrides: tuple[PriceOverride, ...]  # most specific first, then latest start first

    @property
    def static(self) -> bool:
        """True when the price does not depend on the time of the call."""
        from genai_prices.types import ModelPrice

        conditional = self.model_info is not None and not isinstance(
            self.model_info.prices, ModelPrice
        )
        return not conditional and all(o.starts is None for o in self.overrides)


class Pricer:
    """Turns usage records into `Cost`s; thread-safe, caches bounded by `max_models`."""

    def __init__(
        self, overrides: Sequence[PriceOverride] = (), *, max_models: int = 10_000
    ) -> None:
        self._overrides = tuple(overrides)
        self._max_models = max_models
        self._lock = threading.Lock()
        self._snapshot: Any = None
        self._models: dict[tuple[str, str], _Model] = {}
        self._cards: dict[tuple[int, int], tuple[Any, RateCard | None]] = {}
        self._static: dict[tuple[str, str], tuple[RateCard | None]] = {}
        self._unpriced_logged: set[tuple[str, str]] = set()

    def load_catalogue(self) -> int:
        """Load the price catalogue now rather than on the first event; returns its model count."""
        return sum(len(p.models) for p in data_snapshot.get_snapshot().providers)

    def price(self, usage: UsageRecord, when: datetime) -> Cost:
        """The cost of one call made at `when`. Raises `PricingError` when the catalogue cannot
        price the reported usage consistently (a more specific count exceeds its whole)."""
        # A model priced the same whatever the time is one look-up (the `card` fast path).
        static = self._static.get(usage[:2]) if _snapshot() is self._snapshot else None
        card = static[0] if static is not None else self.card(usage.provider, usage.model, when)
        if usage.cost_usd is not None:
            return _reported(usage, card)
        if card is None:
            self._log_unpriced(usage.provider, usage.model)
            return _UNPRICED
        if card.model_id in _SPECIAL_MODELS and (card.provider_id, card.model_id) in _SPECIAL:
            return self._genai_price(usage, when, card)
        detail = usage.detail
        priced = card.cost(detail) if detail is not None else card.cost_counts(usage[5:10])
        source: CostSource = "override" if type(card) is _OverrideCard else "catalogue"
        return _new(Cost, (priced.units, priced.usd, source, priced.rates, card.model_id))

    def card(self, provider: str, model: str, when: datetime) -> RateCard | None:
        """The price card that applies to `model` of `provider` (OpenTelemetry name) at `when`."""
        snapshot = _snapshot()
        if snapshot is not self._snapshot:
            with self._lock:
                self._snapshot = snapshot
                self._models = {}
                self._cards = {}
                self._static = {}
        static = self._static.get((provider, model))
        if static is not None:
            return static[0]
        resolved = self._models.get((provider, model))
        if resolved is None:
            resolved = self._resolve(snapshot, provider, model)
            if len(self._models) >= self._max_models:
                self._models = {}
                self._cards = {}
                self._static = {}
            self._models[(provider, model)] = resolved
        model_price = resolved.model_info.get_prices(when) if resolved.model_info else None
        override = None
        for candidate in resolved.overrides:
            starts = candidate.starts
            if starts is None or starts <= when:
                override = candidate
                break
        key = (id(model_price), id(override))
        hit = self._cards.get(key)
        if hit is None:
            hit = (model_price, self._compile(resolved, model, model_price, override))
            self._cards[key] = hit
        if resolved.static:
            # One price whatever the time: later calls skip the time-dependent look-ups.
            self._static[(provider, model)] = (hit[1],)
        return hit[1]

    def _resolve(self, snapshot: Any, provider: str, model: str) -> _Model:
        prices_id = prices_provider_id(provider)
        model_info = catalogue_provider = None
        if prices_id is not None:
            with contextlib.suppress(LookupError):
                catalogue_provider, model_info = snapshot.find_provider_model(
                    model, None, prices_id, None
                )
        catalogue_id = model_info.id if model_info is not None else None
        matching = [
            o
            for o in self._overrides
            if o.provider_name == provider and o.matches(model, catalogue_id)
        ]
        # Most specific first (an exact model beats a pattern, a longer pattern a shorter one),
        # and within one, the latest start first: the first that has started applies.
        matching.sort(
            key=lambda o: (
                not o.is_pattern,
                len(o.model),
                o.starts.timestamp() if o.starts else float("-inf"),
            ),
            reverse=True,
        )
        return _Model(
            catalogue_provider.id if catalogue_provider else prices_id,
            model_info,
            catalogue_provider,
            tuple(matching),
        )

    def _compile(
        self,
        resolved: _Model,
        model: str,
        model_price: Any,
        override: PriceOverride | None,
    ) -> RateCard | None:
        provider_id = resolved.provider_id or ""
        card: RateCard | None = None
        if model_price is not None:
            try:
                card = RateCard.from_model_price(provider_id, resolved.model_info.id, model_price)
            except PricingError as exc:
                log.warning(
                    "price catalogue entry for %s/%s is unusable (%s); treating it as unpriced",
                    provider_id,
                    resolved.model_info.id,
                    exc,
                )
        if override is None:
            return card
        if card is None:
            if not {"input", "output"} <= override.prices.keys():
                log.warning(
                    "override for %s/%s needs input and output prices: the catalogue has no price "
                    "for this model; treating it as unpriced",
                    override.provider,
                    override.model,
                )
                return None
            card = RateCard(provider_id, model, ())
        overridden = card.with_prices(override.prices, override.factor)
        return _OverrideCard(overridden.provider_id, overridden.model_id, overridden.units)

    def _genai_price(self, usage: UsageRecord, when: datetime, card: RateCard) -> Cost:
        from genai_prices import Usage, calc_price

        result = calc_price(
            Usage(**usage.usage),
            card.model_id,
            provider_id=card.provider_id,
            genai_request_timestamp=when,
        )
        by_type = (result.input_price, _ZERO, _ZERO, result.output_price)
        return Cost(None, by_type, "catalogue", card.rates(usage.input_tokens), card.model_id)

    def _log_unpriced(self, provider: str, model: str) -> None:
        key = (provider, model)
        if key in self._unpriced_logged:
            return
        with self._lock:
            if key in self._unpriced_logged or len(self._unpriced_logged) >= self._max_models:
                return
            self._unpriced_logged.add(key)
        log.warning(
            "no price for provider=%s model=%s: its tokens are counted, its cost is 0 "
            "(add it to the price override file)",
            provider,
            model,
        )


class _OverrideCard(RateCard):
    """A card whose prices come (at least partly) from the override file."""

    __slots__ = ()


_UNPRICED = Cost((0, 0, 0, 0), None, "unpriced")
_snapshot = data_snapshot.get_snapshot
_new = tuple.__new__


def _reported(usage: UsageRecord, card: RateCard | None) -> Cost:
    """Split a reported cost over the token types like the price card would, else by tokens."""
    cost = usage.cost_usd
    assert cost is not None
    weights: Sequence[Decimal | int] = usage.token_split
    if card is not None:
        try:
            priced: CardCost = card.cost(usage.usage)
        except PricingError:
            pass
        else:
            if priced.total > 0:
                weights = priced.by_type
    return Cost(None, split(cost, weights), "reported", None, card.model_id if card else None)


def split(
    amount: Decimal, weights: Sequence[Decimal | int]
) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """`amount` shared in proportion to four weights; the parts sum to `amount` exactly (the last
    weighted part takes the remainder). All of it counts as input when every weight is 0."""
    total = sum(weights, _ZERO)
    if total <= 0:
        return (amount, _ZERO, _ZERO, _ZERO)
    last = max(i for i, w in enumerate(weights) if w > 0)
    parts = [amount * Decimal(w) / total if i != last else _ZERO for i, w in enumerate(weights)]
    parts[last] = amount - sum(parts, _ZERO)
    return (parts[0], parts[1], parts[2], parts[3])


def describe_rates(rates: Mapping[str, Decimal] | tuple[Decimal, ...]) -> str:
    """`input=$2.5/M cache_read=...` for log lines and the price verb."""
    if isinstance(rates, tuple):
        rates = dict(zip(TOKEN_TYPES, rates, strict=True))
    return " ".join(f"{k}=${v.normalize():f}/M" for k, v in rates.items())
