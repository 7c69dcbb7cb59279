"""The YAML override file for negotiated LLM prices: per provider and model, per token type or a discount, from a date.

```yaml
overrides:
  - provider: openai            # OpenTelemetry name or genai-prices id
    model: gpt-4o               # exact model (or catalogue id); shell patterns like "gpt-4o*" or "*"
    prices:                     # USD per million tokens; types not given keep the catalogue price
      input: 2.00
      output: 8.00
  - provider: anthropic
    model: "*"
    discount_percent: 12.5      # applied to every catalogue (or overridden) price of the model
    effective_from: 2025-07-01  # optional: calls before this date keep the earlier price
```
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from ..checks import check
from ..events.providers import otel_provider_name
from ..events.usage import TOKEN_TYPES

_HUNDRED = Decimal(100)


@dataclass(frozen=True)
class PriceOverride:
    """One negotiated price: replaces some token prices and/or discounts a model, from a date."""

    provider: str
    model: str = "*"
    prices: Mapping[str, Decimal] = field(default_factory=lambda: MappingProxyType({}))
    discount_percent: Decimal | None = None
    # A YAML date or timestamp (or ISO 8601 text); naive values are UTC.
    effective_from: Any = None

    def validate(self) -> list[tuple[str, str]]:
        """Known token types, sane numbers, a parsable date, and something to do."""
        problems: list[tuple[str, str]] = []
        for token_type, price in self.prices.items():
            problems += check(
                token_type in TOKEN_TYPES,
                f"prices.{token_type}",
                f"unknown token type (one of {', '.join(TOKEN_TYPES)})",
            )
            problems += check(price >= 0, f"prices.{token_type}", "must not be negative")
        if self.discount_percent is not None:
            problems += check(
                0 <= self.discount_percent <= 100, "discount_percent", "must be between 0 and 100"
            )
        problems += check(
            bool(self.prices) or self.discount_percent is not None,
            "",
            "needs prices or discount_percent",
        )
        problems += check(bool(self.provider.strip()), "provider", "must not be empty")
        problems += check(bool(self.model), "model", "must not be empty")
        if self.effective_from is not None:
            try:
                _ = self.starts
            except (TypeError, ValueError):
                problems.append(("effective_from", "must be a date or an ISO 8601 timestamp"))
        return problems

    @property
    def provider_name(self) -> str:
        """The provider as the `provider` label names it (OpenTelemetry value)."""
        return otel_provider_name(self.provider)

    @property
    def starts(self) -> datetime | None:
        """When the override takes effect (UTC), or None for always."""
        value = self.effective_from
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=UTC)
        raise TypeError(f"not a date: {value!r}")

    @property
    def is_pattern(self) -> bool:
        """Whether `model` is a shell pattern rather than one model."""
        return any(c in self.model for c in "*?[")

    def matches(self, model: str, catalogue_id: str | None) -> bool:
        """Whether this override covers a call to `model` (the catalogue resolves it to `catalogue_id`)."""
        names = [model.lower()] + ([catalogue_id.lower()] if catalogue_id else [])
        pattern = self.model.lower()
        if not self.is_pattern:
            return pattern in names
        return any(fnmatch.fnmatchcase(name, pattern) for name in names)

    @property
    def factor(self) -> Decimal | None:
        """What prices are multiplied by (1 - discount), or None without a discount."""
        if self.discount_percent is None:
            return None
        return (_HUNDRED - self.discount_percent) / _HUNDRED
