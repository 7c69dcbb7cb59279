"""Exposes the LLM aggregator's snapshot and the configured budgets as the LLM metric families of docs/architecture.md."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from ..config import TeamBudget
from ..runtime.exposition import RowsMetricFamily
from .aggregator import ATTRIBUTION, MODEL_LABELS, LLMAggregator


class LLMCollector(Collector):
    """Turns `aggregator.snapshot()` into metric families; no I/O, nothing computed but formatting.

    # TYPE aifinops_llm_cost_usd_total counter
    aifinops_llm_cost_usd_total{provider="openai",model="gpt-4o",team="ml",app="chat",token_type="output"} 0.25
    """

    def __init__(
        self, aggregator: LLMAggregator, budgets: Mapping[str, TeamBudget] | None = None
    ) -> None:
        self._aggregator = aggregator
        self._budgets = [
            ((team, period), float(amount))
            for team, budget in sorted((budgets or {}).items())
            for period, amount in (("daily", budget.daily), ("monthly", budget.monthly))
            if amount is not None
        ]

    def collect(self) -> Iterable[Metric]:
        """Every family, from one consistent snapshot."""
        snap = self._aggregator.snapshot()
        yield RowsMetricFamily(
            "aifinops_llm_requests",
            "LLM API calls counted, by provider, model, team, app and status (ok or error).",
            "counter",
            (*ATTRIBUTION, "status"),
            snap.requests.items(),
        )
        yield RowsMetricFamily(
            "aifinops_llm_tokens",
            "LLM tokens by type: input (not read from or written to the prompt cache), cache_read, "
            "cache_write and output; the four are disjoint and sum to all tokens.",
            "counter",
            (*ATTRIBUTION, "token_type"),
            snap.tokens.items(),
        )
        yield RowsMetricFamily(
            "aifinops_llm_cost_usd",
            "LLM spend in US dollars, priced per call (tiers and cache prices applied) or as "
            "reported, split by token type like aifinops_llm_tokens_total.",
            "counter",
            (*ATTRIBUTION, "token_type"),
            snap.cost_floats(),
        )
        yield RowsMetricFamily(
            "aifinops_llm_unpriced_requests",
            "LLM calls for which no price was found (tokens counted, cost 0).",
            "counter",
            MODEL_LABELS,
            snap.unpriced.items(),
        )
        yield RowsMetricFamily(
            "aifinops_llm_price_usd_per_million_tokens",
            "The price per million tokens applied to the latest priced call of the model, by token type.",
            "gauge",
            (*MODEL_LABELS, "token_type"),
            ((labels, float(rate)) for labels, rate in snap.prices.items()),
        )
        yield RowsMetricFamily(
            "aifinops_budget_usd",
            "Configured LLM budget per team and period (daily or monthly), in US dollars.",
            "gauge",
            ("team", "period"),
            self._budgets,
        )
        yield RowsMetricFamily(
            "aifinops_ingest_events",
            "Usage events received, by source (http, kafka) and outcome (accepted, rejected, duplicate).",
            "counter",
            ("source", "outcome"),
            snap.ingest.items(),
        )
