"""Turns a collector registry into the Prometheus text (or OpenMetrics) exposition a scrape receives."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder


def render_metrics(registry: CollectorRegistry, accept: str) -> tuple[bytes, str]:
    """Encode every metric of `registry` in the format the scraper's Accept header asks for."""
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type
