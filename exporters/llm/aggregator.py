"""Totals of every LLM metric family: a dict of label tuple to total per family, under one lock.

The token exporter (HTTP ingest) and the bridge (Kafka) apply validated, priced events here; the
collector turns `snapshot()` into metric families. Label values pass through a `LabelLimiter`, so
each family has a bounded number of series: values beyond the limit fold into `__other__` and count
in `aifinops_series_overflow_total{metric}`. Costs are summed as exact `Decimal`s (no float drift).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Context, Decimal
from types import MappingProxyType

from ..cardinality import LabelLimiter
from ..events.usage import UsageRecord
from ..pricing.pricer import Cost

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

# Enough digits that summing per-event costs never rounds: a sum stays exact to the last digit
# the per-event costs carry.
_SUM = Context(prec=80)


_KEY_CACHE_LIMIT = 200_000


@dataclass(frozen=True, slots=True)
class _Keys:
    """The series keys one (provider, model, team, app) writes to, after label folding."""

    requests: tuple[tuple[str, ...], tuple[str, ...]]  # status ok, error
    tokens: tuple[tuple[str, ...], ...]  # per TOKEN_TYPES
    cost: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class LLMSnapshot:
    """An immutable copy of every total, keyed by label-value tuples in each family's label order.

    - `requests`: (provider, model, team, app, status) → calls
    - `tokens`: (provider, model, team, app, token_type) → tokens
    - `cost`: (provider, model, team, app, token_type) → USD (`Decimal`)
    - `unpriced`: (provider, model) → calls without a price
    - `prices`: (provider, model, token_type) → USD per million tokens last applied
    - `ingest`: (source, outcome) → events
    """

    requests: Mapping[tuple[str, ...], int]
    tokens: Mapping[tuple[str, ...], int]
    cost: Mapping[tuple[str, ...], Decimal]
    unpriced: Mapping[tuple[str, ...], int]
    prices: Mapping[tuple[str, ...], Decimal]
    ingest: Mapping[tuple[str, ...], int]


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
        self._cost: dict[tuple[str, ...], Decimal] = {}
        self._unpriced: dict[tuple[str, ...], int] = {}
        self._prices: dict[tuple[str, ...], Decimal] = {}
        self._keys: dict[tuple[str, ...], _Keys] = {}
        self._model_keys: dict[tuple[str, tuple[str, ...]], tuple[str, ...]] = {}
        self._ingest: dict[tuple[str, ...], int] = {
            (source, outcome): 0 for source in sources for outcome in INGEST_OUTCOMES
        }

    def apply(self, usage: UsageRecord, cost: Cost) -> None:
        """Count one call: a request, its tokens and dollars by token type, and its price or
        its lack of one."""
        self.apply_all(((usage, cost),))

    def apply_all(self, calls: Iterable[tuple[UsageRecord, Cost]]) -> None:
        """`apply` for many calls under one lock (a batch, a Kafka poll)."""
        planned = []
        for usage, cost in calls:
            values = (usage.provider, usage.model, usage.team, usage.app)
            keys = self._keys.get(values) or self._fold(values)
            model = None
            if not cost.priced:
                model = self._model_key(UNPRICED, values[:2])
            elif cost.rates is not None:
                model = self._model_key(PRICE, values[:2])
            planned.append((usage, cost, keys, model))
        add = _SUM.add
        requests, tokens_total, cost_total = self._requests, self._tokens, self._cost
        with self._lock:
            for usage, cost, keys, model in planned:
                key = keys.requests[usage.status == "error"]
                requests[key] = requests.get(key, 0) + 1
                tokens = usage.token_split
                by_type = cost.by_type
                # Every token type gets its series on a label set's first call (at 0 where it
                # has none), so a later first increment is not lost to rate() as a series'
                # first sample.
                for i in range(4):
                    tkey = keys.tokens[i]
                    tokens_total[tkey] = tokens_total.get(tkey, 0) + tokens[i]
                    ckey = keys.cost[i]
                    previous = cost_total.get(ckey)
                    cost_total[ckey] = by_type[i] if previous is None else add(previous, by_type[i])
                if model is not None:
                    if cost.rates is None:
                        self._unpriced[model] = self._unpriced.get(model, 0) + 1
                    else:
                        for token_type, rate in zip(TOKEN_TYPES, cost.rates, strict=True):
                            self._prices[(*model, token_type)] = rate

    def _fold(self, values: tuple[str, str, str, str]) -> _Keys:
        fold = self.limiter.fold
        req = fold(REQUESTS, ATTRIBUTION, values)
        tok = fold(TOKENS, ATTRIBUTION, values)
        usd = fold(COST, ATTRIBUTION, values)
        keys = _Keys(
            ((*req, "ok"), (*req, "error")),
            tuple((*tok, t) for t in TOKEN_TYPES),
            tuple((*usd, t) for t in TOKEN_TYPES),
        )
        # Values the limiter admitted keep their series for good, so their keys can be reused;
        # a folded observation must go through the limiter each time to be counted.
        if req == tok == usd == values and len(self._keys) < _KEY_CACHE_LIMIT:
            self._keys[values] = keys
        return keys

    def _model_key(self, metric: str, values: tuple[str, ...]) -> tuple[str, ...]:
        cached = self._model_keys.get((metric, values))
        if cached is not None:
            return cached
        folded = self.limiter.fold(metric, MODEL_LABELS, values)
        if folded == values and len(self._model_keys) < _KEY_CACHE_LIMIT:
            self._model_keys[(metric, values)] = folded
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
                MappingProxyType(dict(self._cost)),
                MappingProxyType(dict(self._unpriced)),
                MappingProxyType(dict(self._prices)),
                MappingProxyType(dict(self._ingest)),
            )
