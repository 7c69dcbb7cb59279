"""Opt-in auto-update of the genai-prices catalogue: a poll source that installs each fetched snapshot."""

from __future__ import annotations

from typing import Any


class PriceUpdater:
    """A `Source` for `runtime.poll.Poller`: `fetch()` downloads the catalogue from `url` and makes
    it the one `genai_prices` (and so every `Pricer`) uses. A failed fetch keeps the previous
    catalogue and shows as `aifinops_collector_success{collector="price_catalogue"} 0`."""

    def __init__(self, url: str | None = None, timeout_seconds: float = 10.0) -> None:
        from genai_prices.update_prices import DEFAULT_UPDATE_URL

        self.url = url or DEFAULT_UPDATE_URL
        self.timeout_seconds = timeout_seconds

    def fetch(self) -> Any:
        """Download, parse and install the catalogue; returns the new snapshot."""
        import httpx2
        from genai_prices import data_snapshot
        from genai_prices.update_prices import UpdatePrices

        updater = UpdatePrices(
            url=self.url, request_timeout=httpx2.Timeout(self.timeout_seconds, connect=5)
        )
        snapshot = updater.fetch()
        if snapshot is None:
            raise RuntimeError(f"no catalogue at {self.url}")
        data_snapshot.set_custom_snapshot(snapshot)
        return snapshot
