"""Totals of every LLM metric family: a dict of label tuple to total per family, under one lock.

The token exporter (HTTP ingest) and the bridge (Kafka) apply validated, priced events here; the
collector turns `snapshot()` into metric families. Label values pass through a `LabelLimiter`, so
each family has a bounded number of series: values beyond the limit fold into `__other__` and count
in `aifinops_series_overflow_total{metric}`. Costs are summed as exact `Decimal`s (no float drift).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
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
        self._ingest: dict[tuple[str, ...], int] = {
            (source, outcome): 0 for source in sources for outcome in INGEST_OUTCOMES
        }

    def apply(self, usage: UsageRecord, cost: Cost) -> None:
        """Count one call: a request, its tokens and dollars by token type, and its price or
        its lack of one."""
        values = (usage.provider, usage.model, usage.team, usage.app)
        fold = self.limiter.fold
        req = fold(REQUESTS, ATTRIBUTION, values)
        tok = fold(TOKENS, ATTRIBUTION, values)
        usd = fold(COST, ATTRIBUTION, values)
        model = None
        if not cost.priced:
            model = fold(UNPRICED, MODEL_LABELS, values[:2])
        elif cost.rates is not None:
            model = fold(PRICE, MODEL_LABELS, values[:2])
        tokens = usage.token_split
        add = _SUM.add
        with self._lock:
            key = (*req, usage.status)
            self._requests[key] = self._requests.get(key, 0) + 1
            # Every token type gets its series on a label set's first call (at 0 where it has
            # none), so a later first increment is not lost to rate() as a series' first sample.
            for token_type, n, dollars in zip(TOKEN_TYPES, tokens, cost.by_type, strict=True):
                tkey = (*tok, token_type)
                self._tokens[tkey] = self._tokens.get(tkey, 0) + n
                ckey = (*usd, token_type)
                previous = self._cost.get(ckey)
                self._cost[ckey] = dollars if previous is None else add(previous, dollars)
            if model is not None:
                if cost.rates is None:
                    self._unpriced[model] = self._unpriced.get(model, 0) + 1
                else:
                    for token_type, rate in zip(TOKEN_TYPES, cost.rates, strict=True):
                        self._prices[(*model, token_type)] = rate

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
