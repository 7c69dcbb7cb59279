"""LLM usage accounting shared by the token exporter (HTTP) and the bridge (Kafka): pipeline, totals, metrics, dedupe.

- `UsageIngest.from_config(config.llm, sources)`: `prepare(obj) -> PricedEvent` (validate + price,
  raises `EventError`), `apply(priced, source) -> bool` (dedupe + count), `reject(source, n)`,
  `collectors(config.llm.budgets)`.
- `LLMAggregator`: totals per label tuple under a lock, labels bounded by a `LabelLimiter`.
- `LLMCollector`: every LLM family of docs/architecture.md from the aggregator's snapshot, plus budgets.
- `DedupeWindow`: the bounded `(source, id)` window.
"""

from .aggregator import LLMAggregator, LLMSnapshot
from .collector import LLMCollector
from .dedupe import DedupeWindow
from .ingest import PricedEvent, UsageIngest

__all__ = [
    "DedupeWindow",
    "LLMAggregator",
    "LLMCollector",
    "LLMSnapshot",
    "PricedEvent",
    "UsageIngest",
]
