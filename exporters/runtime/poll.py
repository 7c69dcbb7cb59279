"""Runs a source's `fetch()` on a background thread and keeps its latest immutable snapshot."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from .selfmetrics import CollectorHealth

log = logging.getLogger(__name__)

S = TypeVar("S")
S_co = TypeVar("S_co", covariant=True)


class Source(Protocol[S_co]):
    """Anything that reads external state: all I/O lives in `fetch()`, which returns a snapshot."""

    def fetch(self) -> S_co:
        """Read the external state now and return it as an immutable snapshot."""
        ...


class Poller(Generic[S]):
    """Calls `source.fetch()` every `interval` seconds; records success and duration in `health`.

    A failed fetch keeps no snapshot (`latest` returns None until the next success) when
    `keep_stale` is false, so a vanished source does not keep exporting values that are no longer true.
    """

    def __init__(
        self,
        name: str,
        source: Source[S],
        interval: float,
        health: CollectorHealth,
        *,
        on_snapshot: Callable[[S], None] | None = None,
        keep_stale: bool = False,
    ) -> None:
        self.name = name
        self._source = source
        self._interval = interval
        self._health = health
        self._on_snapshot = on_snapshot
        self._keep_stale = keep_stale
        self._latest: S | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    @property
    def latest(self) -> S | None:
        """The newest snapshot (a reference swap, so readers never see a half-built one)."""
        return self._latest

    def poll_once(self) -> bool:
        """Fetch once now; returns whether it succeeded. Never raises."""
        start = time.perf_counter()
        try:
            snapshot = self._source.fetch()
        except Exception as exc:
            self._health.record(self.name, False, time.perf_counter() - start)
            if not self._keep_stale:
                self._latest = None
            if not self._failing:
                log.error("collector %s: fetch failed: %s", self.name, exc)
            else:
                log.debug("collector %s: fetch still failing: %s", self.name, exc)
            self._failing = True
            return False
        self._latest = snapshot
        self._health.record(self.name, True, time.perf_counter() - start)
        if self._failing:
            log.info("collector %s: fetch recovered", self.name)
        self._failing = False
        if self._on_snapshot is not None:
            try:
                self._on_snapshot(snapshot)
            except Exception:
                log.exception("collector %s: snapshot handler failed", self.name)
        return True

    def start(self) -> None:
        """Fetch once synchronously (so the first scrape has data), then keep polling."""
        self.poll_once()
        self._thread = threading.Thread(target=self._run, name=f"poll-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        next_at = time.monotonic() + self._interval
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            self.poll_once()
            # Fixed-rate schedule: a slow fetch does not push every later sample back.
            next_at += self._interval
            now = time.monotonic()
            if next_at < now:
                next_at = now + self._interval
