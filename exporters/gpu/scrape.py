"""Reads one bounded text page over HTTP for the GPU exporter's sources that scrape another exporter (dcgm-exporter, OpenCost)."""

from __future__ import annotations

from collections.abc import Mapping

import requests

from .model import SourceError

# A page this large is not an exporter's: stop reading rather than hold it.
MAX_BODY_BYTES = 64 << 20


class PageReader:
    """GETs `url` on one kept-alive session; every failure is a `SourceError` naming `what` and
    the URL (unreachable, a status other than 200, a body over `MAX_BODY_BYTES`, not UTF-8)."""

    def __init__(
        self,
        url: str,
        what: str,
        timeout_seconds: float,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.url = url
        self.what = what
        self._timeout = timeout_seconds
        self._headers = dict(headers or {})
        self._session = requests.Session()

    def read(self) -> str:
        """The page's text now."""
        try:
            resp = self._session.get(
                self.url, headers=self._headers, timeout=self._timeout, stream=True
            )
            body = resp.raw.read(MAX_BODY_BYTES + 1, decode_content=True)
        except (requests.RequestException, OSError) as exc:
            raise self.error(f"unreachable: {exc}") from exc
        if resp.status_code != 200:
            raise self.error(f"HTTP {resp.status_code}")
        if len(body) > MAX_BODY_BYTES:
            raise self.error(f"body larger than {MAX_BODY_BYTES} bytes")
        try:
            return str(body.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise self.error(f"body is not UTF-8 ({exc})") from exc

    def error(self, reason: str) -> SourceError:
        """A `SourceError` for this page (`dcgm-exporter http://…: reason`)."""
        return SourceError(f"{self.what} {self.url}: {reason}")
