"""The transport-independent usage pipeline: validate and price an event, then dedupe and count it.

HTTP ingest (`source="http"`) and the Kafka bridge (`source="kafka"`) both do

    priced = ingest.prepare(decoded_json)       # raises EventError listing every problem
    priced = ingest.prepare_json(message_bytes) # the same, decoding the JSON too (the bridge)
    counted = ingest.apply(priced, "kafka")     # False: a duplicate, counted once already

`prepare` has no side effect, so a batch can be checked whole before any of it is applied.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from prometheus_client.registry import Collector

from ..cardinality import LabelLimiter, OverflowCollector
from ..config import LLMConfig, TeamBudget, WhatIfModel
from ..events.codec import EventError, Problem
from ..events.envelope import DEFAULT_MAX_FUTURE
from ..events.usage import UsageEvent, decode_usage_event, parse_usage_event
from ..pricing import Cost, Pricer, PricingError
from ..runtime.config import ConfigError
from .aggregator import INGEST_SOURCES, LLMAggregator
from .collector import LLMCollector
from .dedupe import DedupeWindow
from .overrides import load_overrides


class PricedEvent(NamedTuple):
    """A validated usage event and its cost, ready to apply."""

    event: UsageEvent
    cost: Cost

    def with_team(self, team: str) -> PricedEvent:
        """The same event counted for `team` (an authenticated credential's team)."""
        return PricedEvent(self.event.with_team(team), self.cost)


_new = tuple.__new__


class UsageIngest:
    """Validates, prices, dedupes and counts usage events for one process."""

    def __init__(
        self,
        pricer: Pricer,
        aggregator: LLMAggregator,
        dedupe: DedupeWindow,
        *,
        max_future: timedelta = DEFAULT_MAX_FUTURE,
    ) -> None:
        self.pricer = pricer
        self.aggregator = aggregator
        self.dedupe = dedupe
        self.max_future = max_future
        # Called with every batch of events just counted (the tripwires' hook); must not block.
        self.on_counted: Callable[[Sequence[PricedEvent]], None] | None = None

    @classmethod
    def from_config(cls, config: LLMConfig, sources: Sequence[str] = INGEST_SOURCES) -> UsageIngest:
        """Build the pipeline a daemon needs from the `llm` config section; reads the price
        override file (raises `ConfigError` listing its problems)."""
        overrides = (
            load_overrides(config.pricing.overrides_file) if config.pricing.overrides_file else ()
        )
        cardinality = config.cardinality
        limiter = LabelLimiter(
            cardinality.max_values, cardinality.per_label, cardinality.max_series
        )
        ingest = cls(
            Pricer(overrides),
            LLMAggregator(limiter, tuple(sources)),
            DedupeWindow(config.dedupe_window_seconds, config.dedupe_max_entries),
        )
        ingest.expose_what_if_prices(config.what_if_models)
        return ingest

    def expose_what_if_prices(
        self, models: Sequence[WhatIfModel], when: datetime | None = None
    ) -> None:
        """Expose the prices (catalogue or override, base tier) at `when` (now) of `models`,
        which nobody may call, for the rule pack's cheaper-model what-if. Raises `ConfigError`
        naming each model without a price."""
        when = when or datetime.now(UTC)
        problems = []
        for i, what_if in enumerate(models):
            card = self.pricer.card(what_if.provider, what_if.model, when)
            if card is None:
                problems.append(
                    f"llm.what_if_models[{i}]: {what_if.provider}/{what_if.model} has no price "
                    "in the catalogue or the overrides"
                )
                continue
            self.aggregator.seed_prices(what_if.provider, what_if.model, card.rates())
        if problems:
            raise ConfigError(problems)

    def collectors(self, budgets: Mapping[str, TeamBudget] | None = None) -> list[Collector]:
        """The collectors to register: every LLM family, budgets, and the label overflow count."""
        return [
            LLMCollector(self.aggregator, budgets),
            OverflowCollector([self.aggregator.limiter]),
        ]

    def prepare(self, obj: Any, *, now: datetime | None = None) -> PricedEvent:
        """Validate a decoded CloudEvent and price it; raises `EventError` listing every problem.
        No side effect: nothing is counted until `apply`."""
        return self._price(parse_usage_event(obj, now=now, max_future=self.max_future))

    def prepare_json(self, raw: bytes, *, now: datetime | None = None) -> PricedEvent:
        """`prepare(loads(raw))` from the message bytes, decoded and validated in one pass
        (`decode_usage_event`). Raises `EventError` listing every problem, or what `loads`
        raises for bytes that are not JSON (`ValueError`, `UnicodeDecodeError`)."""
        return self._price(decode_usage_event(raw, now=now, max_future=self.max_future))

    def _price(self, event: UsageEvent) -> PricedEvent:
        """The validated event with its cost; `EventError` when it cannot be priced."""
        try:
            cost = self.pricer.price(event.usage, event.envelope.time)
        except PricingError as exc:
            field = "data.response" if "response" in event.envelope.data else "data"
            raise EventError([Problem(field, f"cannot be priced consistently: {exc}")]) from exc
        return _new(PricedEvent, (event, cost))

    def apply(self, priced: PricedEvent, source: str) -> bool:
        """Count the event unless its `(source, id)` was seen within the dedupe window.
        Returns True when counted, False for a duplicate; either way the outcome is counted in
        `aifinops_ingest_events_total{source}`."""
        event = priced.event
        if not self.dedupe.add(event.identity):
            self.aggregator.count_ingest(source, "duplicate")
            return False
        self.aggregator.apply(event.usage, priced.cost)
        self.aggregator.count_ingest(source, "accepted")
        if self.on_counted is not None:
            self.on_counted((priced,))
        return True

    def apply_all(self, prepared: Sequence[PricedEvent], source: str) -> list[PricedEvent]:
        """`apply` for many events at once (one lock for the lot); returns those counted, in
        order, the others being duplicates (of earlier events or of each other)."""
        # Generators, not lists: per-event pairs freed as they are used add nothing for the
        # garbage collector to walk.
        fresh = self.dedupe.add_all(p.event.envelope.identity for p in prepared)
        counted = [p for p, new in zip(prepared, fresh, strict=True) if new]
        self.aggregator.apply_all((p.event.usage, p.cost) for p in counted)
        self.aggregator.count_ingest(source, "accepted", len(counted))
        self.aggregator.count_ingest(source, "duplicate", len(prepared) - len(counted))
        if self.on_counted is not None and counted:
            self.on_counted(counted)
        return counted

    def reject(self, source: str, n: int = 1) -> None:
        """Count `n` events refused as invalid."""
        self.aggregator.count_ingest(source, "rejected", n)
