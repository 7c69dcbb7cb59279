"""Budgets in the reporting currency: `aifinops_budget{team,period,currency}` from `llm.budgets`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from ..config import Config, TeamBudget
from ..runtime.exposition import RowsMetricFamily
from .rates import USD


class BudgetCollector(Collector):
    """The configured budgets in the reporting currency, for a rule pack rendered in it.

    With `currency.code` other than USD the amounts of `llm.budgets` are in that currency (a
    budget agreed in pounds stays in pounds whatever the dollar does); the rule pack compares
    them with spend converted at the rate in force when it was spent (docs/currency.md).
    """

    def __init__(self, budgets: Mapping[str, TeamBudget], currency: str) -> None:
        self._currency = currency
        self._rows = [
            ((team, period, currency), float(amount))
            for team, budget in sorted(budgets.items())
            for period, amount in (("daily", budget.daily), ("monthly", budget.monthly))
            if amount is not None
        ]

    def collect(self) -> Iterable[Metric]:
        """One gauge per team and period."""
        yield RowsMetricFamily(
            "aifinops_budget",
            "Configured budget per team and period (daily or monthly), in the currency of the "
            "currency label (the reporting currency, currency.code).",
            "gauge",
            ("team", "period", "currency"),
            self._rows,
        )


def split_budgets(
    config: Config,
) -> tuple[Mapping[str, TeamBudget] | None, list[Collector]]:
    """The budgets for `aifinops_budget_usd` (USD reporting) or, in another currency, none there
    and a `BudgetCollector` serving them in that currency."""
    if config.currency.code == USD:
        return config.llm.budgets, []
    return None, [BudgetCollector(config.llm.budgets, config.currency.code)]
