"""Totals of every LLM metric family: a dict of label tuple to total per family, under one lock.

The token exporter (HTTP ingest) and the bridge (Kafka) apply validated, priced events here; the
collector turns `snapshot()` into metric families. Label values pass through a `LabelLimiter`, so
each family has a bounded number of series: values beyond a label's limit, and label sets beyond
the family's series budget, fold into `__other__` and count in
`aifinops_series_overflow_total{metric}`. The token and cost families decide a label set's fate
together (their budgets fill at the same rate), and the requests family follows them, so a set
keeps its own series in all three or in none. Costs are summed exactly (no float drift): as integers
of 1e-24 USD, plus a `Decimal` part for the costs that have more digits than those hold.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Context, Decimal
from types import MappingProxyType

from ..cardinality import OTHER, LabelLimiter
from ..events.usage import UsageRecord
from ..pricing.pricer import Cost
from ..pricing.ratecard import UNITS_PER_USD, units_to_usd

REQUESTS = "aifinops_llm_requests_total"
TOKENS = "aifinops_llm_tokens_total"
COST = "aifinops_llm_cost_usd_total"
UNPRICED = "aifinops_llm_unpriced_requests_total"
PRICE = "aifinops_llm_price_usd_per_million_tokens"
INGEST = "aifinops_ingest_events_total"

ATTRIBUTION = ("provider", "model", "team", "app")
MODEL_LABELS = ("provider", "model")
INGEST_SOURCES = ("http", "kafka")
INGEST_OUTCOMES = ("accepted", "rejected", "duplicate")
TOKEN_TYPES = ("input", "cache_read", "cache_write", "output")
_ALL_OTHER = (OTHER,) * len(ATTRIBUTION)

# Enough digits that summing per-event costs never rounds: a sum stays exact to the last digit
# the per-event costs carry.
_SUM = Context(prec=80)


_KEY_CACHE_LIMIT = 200_000

# The series keys one (provider, model, team, app) writes to, after label folding: requests with
# status ok and error, then tokens per TOKEN_TYPES, then cost per TOKEN_TYPES.
_Keys = tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class LLMSnapshot:
    """An immutable copy of every total, keyed by label-value tuples in each family's label order.

    - `requests`: (provider, model, team, app, status) → calls
    - `tokens`: (provider, model, team, app, token_type) → tokens
    - `cost`: (provider, model, team, app, token_type) → USD (`Decimal`), held as `cost_units`
      (1e-24 USD) plus `cost_extra` (USD) for the series that have such a part
    - `unpriced`: (provider, model) → calls without a price
    - `prices`: (provider, model, token_type) → USD per million tokens last applied
    - `ingest`: (source, outcome) → events
    """

    requests: Mapping[tuple[str, ...], int]
    tokens: Mapping[tuple[str, ...], int]
    cost_units: Mapping[tuple[str, ...], int]
    cost_extra: Mapping[tuple[str, ...], Decimal]
    unpriced: Mapping[tuple[str, ...], int]
    prices: Mapping[tuple[str, ...], Decimal]
    ingest: Mapping[tuple[str, ...], int]

    @property
    def cost(self) -> Mapping[tuple[str, ...], Decimal]:
        """Exact USD per cost series."""
        extra = self.cost_extra
        return {
            key: _SUM.add(units_to_usd(units), extra[key]) if key in extra else units_to_usd(units)
            for key, units in self.cost_units.items()
        }

    def cost_floats(self) -> Iterator[tuple[tuple[str, ...], float]]:
        """USD per cost series as the nearest float (what the exposition shows), without building
        `Decimal`s for the series that need none."""
        extra = self.cost_extra
        for key, units in self.cost_units.items():
            if key in extra:
                yield key, float(_SUM.add(units_to_usd(units), extra[key]))
            else:
                # Integer true division rounds correctly, as float() of the exact Decimal does.
                yield key, units / UNITS_PER_USD


class LLMAggregator:
    """Applies priced LLM calls and ingest outcomes; `snapshot()` copies the totals for a scrape."""

    def __init__(
        self, limiter: LabelLimiter | None = None, sources: tuple[str, ...] = INGEST_SOURCES
    ) -> None:
        """`sources` are the ingest sources whose outcome series exist from the start (at 0)."""
        self.limiter = limiter or LabelLimiter()
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, ...], int] = {}
        self._tokens: dict[tuple[str, ...], int] = {}
        self._cost_units: dict[tuple[str, ...], int] = {}
        self._cost_extra: dict[tuple[str, ...], Decimal] = {}
        self._unpriced: dict[tuple[str, ...], int] = {}
        self._prices: dict[tuple[str, ...], Decimal] = {}
        # The rates object last written to `_prices` per model key: a card hands out the same
        # tuple for every call at one tier, so an unchanged price is not written again.
        self._rates_written: dict[tuple[str, ...], tuple[Decimal, ...]] = {}
        self._keys: dict[tuple[str, ...], _Keys] = {}
        self._model_keys: dict[str, dict[tuple[str, ...], tuple[str, ...]]] = {
            UNPRICED: {},
            PRICE: {},
        }
        self._ingest: dict[tuple[str, ...], int] = {
            (source, outcome): 0 for source in sources for outcome in INGEST_OUTCOMES
        }

    def apply(self, usage: UsageRecord, cost: Cost) -> None:
        """Count one call: a request, its tokens and dollars by token type, and its price or
        its lack of one."""
        self.apply_all(((usage, cost),))

    def apply_all(self, calls: Iterable[tuple[UsageRecord, Cost]]) -> None:
        """`apply` for many calls under one lock (a batch, a Kafka poll)."""
        keys_of = self._keys
        requests, tokens, units_total = self._requests, self._tokens, self._cost_units
        with self._lock:
            for usage, cost in calls:
                # One unpacking names every field (cheaper than reading them one by one).
                (provider, model, team, app, status, inp, cache_read, cache_write, out, _, _, _) = (
                    usage
                )
                attribution = (provider, model, team, app)
                keys = keys_of.get(attribution) or self._fold(attribution)
                (
                    ok,
                    error,
                    t_input,
                    t_cache_read,
                    t_cache_write,
                    t_output,
                    u_input,
                    u_cache_read,
                    u_cache_write,
                    u_output,
                ) = keys
                key = error if status == "error" else ok
                requests[key] = requests.get(key, 0) + 1
                # Every token type gets its series on a label set's first call (at 0 where it
                # has none), so a later first increment is not lost to rate() as a series'
                # first sample.
                tokens[t_input] = tokens.get(t_input, 0) + inp - cache_read - cache_write
                tokens[t_cache_read] = tokens.get(t_cache_read, 0) + cache_read
                tokens[t_cache_write] = tokens.get(t_cache_write, 0) + cache_write
                tokens[t_output] = tokens.get(t_output, 0) + out
                units = cost.units
                if units is not None:
                    n_input, n_cache_read, n_cache_write, n_output = units
                    units_total[u_input] = units_total.get(u_input, 0) + n_input
                    units_total[u_cache_read] = units_total.get(u_cache_read, 0) + n_cache_read
                    units_total[u_cache_write] = units_total.get(u_cache_write, 0) + n_cache_write
                    units_total[u_output] = units_total.get(u_output, 0) + n_output
                else:
                    self._add_usd((u_input, u_cache_read, u_cache_write, u_output), cost.usd)
                rates = cost.rates
                if rates is not None:
                    priced = self._model_key(PRICE, (provider, model))
                    if self._rates_written.get(priced) is not rates:
                        for token_type, rate in zip(TOKEN_TYPES, rates, strict=True):
                            self._prices[(*priced, token_type)] = rate
                        self._rates_written[priced] = rates
                elif cost.source == "unpriced":
                    unpriced = self._model_key(UNPRICED, (provider, model))
                    self._unpriced[unpriced] = self._unpriced.get(unpriced, 0) + 1

    def seed_prices(self, provider: str, model: str, rates: tuple[Decimal, ...]) -> None:
        """Expose `rates` (USD per million tokens per `TOKEN_TYPES` entry) as the price of a model
        nobody has called yet (a what-if model of the rule pack); a priced call replaces them."""
        with self._lock:
            priced = self._model_key(PRICE, (provider, model))
            if priced in self._rates_written:
                return
            for token_type, rate in zip(TOKEN_TYPES, rates, strict=True):
                self._prices[(*priced, token_type)] = rate
            # A marker no call's rates are, so the first priced call always writes its own.
            self._rates_written[priced] = ()

    def _add_usd(self, keys: Sequence[tuple[str, ...]], usd: tuple[Decimal, ...] | None) -> None:
        """Add a cost that is no whole number of 1e-24 USD (caller holds the lock)."""
        if usd is None:
            raise ValueError("a Cost holds its dollars in units or in usd, never neither")
        units_total, extra = self._cost_units, self._cost_extra
        for key, amount in zip(keys, usd, strict=True):
            units_total.setdefault(key, 0)
            previous = extra.get(key)
            extra[key] = amount if previous is None else _SUM.add(previous, amount)

    def _fold(self, values: tuple[str, ...]) -> _Keys:
        limiter = self.limiter
        types = len(TOKEN_TYPES)
        tok = limiter.fold(TOKENS, ATTRIBUTION, values, types)
        if tok == _ALL_OTHER and values != _ALL_OTHER:
            # Over the series budget: the set folds whole in every family.
            req = limiter.fold_all(REQUESTS, len(ATTRIBUTION), 2)
            usd = limiter.fold_all(COST, len(ATTRIBUTION), types)
        else:
            req = limiter.fold(REQUESTS, ATTRIBUTION, values, 2)
            usd = limiter.fold(COST, ATTRIBUTION, values, types)
        keys = (
            (*req, "ok"),
            (*req, "error"),
            *((*tok, t) for t in TOKEN_TYPES),
            *((*usd, t) for t in TOKEN_TYPES),
        )
        # Values the limiter admitted keep their series for good, so their keys can be reused;
        # a folded observation must go through the limiter each time to be counted.
        if req == tok == usd == values and len(self._keys) < _KEY_CACHE_LIMIT:
            self._keys[values] = keys
        return keys

    def _model_key(self, metric: str, values: tuple[str, ...]) -> tuple[str, ...]:
        cache = self._model_keys[metric]
        cached = cache.get(values)
        if cached is not None:
            return cached
        series = len(TOKEN_TYPES) if metric == PRICE else 1
        folded = self.limiter.fold(metric, MODEL_LABELS, values, series)
        if folded == values and len(cache) < _KEY_CACHE_LIMIT:
            cache[values] = folded
        return folded

    def count_ingest(self, source: str, outcome: str, n: int = 1) -> None:
        """Count `n` events of an ingest `source` (`http`, `kafka`) with an `outcome`
        (`accepted`, `rejected`, `duplicate`)."""
        if n <= 0:
            return
        with self._lock:
            self._ingest[(source, outcome)] = self._ingest.get((source, outcome), 0) + n

    def snapshot(self) -> LLMSnapshot:
        """Copies of every total, consistent with each other (taken under the lock)."""
        with self._lock:
            return LLMSnapshot(
                MappingProxyType(dict(self._requests)),
                MappingProxyType(dict(self._tokens)),
                MappingProxyType(dict(self._cost_units)),
                MappingProxyType(dict(self._cost_extra)),
                MappingProxyType(dict(self._unpriced)),
                MappingProxyType(dict(self._prices)),
                MappingProxyType(dict(self._ingest)),
            )
