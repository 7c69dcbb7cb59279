"""LLM pricing: the genai-prices catalogue (offline), compiled per model into fast rate cards, plus negotiated overrides.

- `Pricer(overrides).price(usage_record, when) -> Cost`: the cost of one call split by token type
  (`input`, `cache_read`, `cache_write`, `output`), from its reported `cost_usd`, an override, the
  catalogue, or nothing (`source="unpriced"`, cost 0).
- `PriceOverride`: one negotiated price rule (the file is read by `llm.overrides`).
- `RateCard`: one model's prices resolved once; equals `genai_prices.calc_price` to the micro-dollar.
- `PriceUpdater`: the opt-in auto-update of the catalogue (the only network access).
"""

from .overrides import PriceOverride
from .pricer import Cost, Pricer, split
from .ratecard import CardCost, PricingError, RateCard, UnitRate
from .update import PriceUpdater

__all__ = [
    "CardCost",
    "Cost",
    "PriceOverride",
    "PriceUpdater",
    "Pricer",
    "PricingError",
    "RateCard",
    "UnitRate",
    "split",
]
