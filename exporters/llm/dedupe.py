"""The bounded `(source, id)` window that makes a retried or redelivered event count once.

Identities are kept as 64-bit hashes in time buckets (the window split in `buckets` slices): a
look-up checks each live bucket, and expiry drops the oldest bucket whole, so memory is about
70 bytes per remembered event and never grows past `max_entries` (when it would, the oldest bucket
is dropped early, a bucket also closing once it holds 1/`buckets` of the capacity; `evicted` counts the identities forgotten that way). The window lives in memory:
a restart forgets it. Two distinct events collide with probability about n²/2⁶⁵ (3·10⁻⁸ for a
million remembered events).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

DEFAULT_WINDOW_SECONDS = 24 * 3600.0
DEFAULT_MAX_ENTRIES = 1_000_000


class DedupeWindow:
    """Remembers event identities for `window_seconds` (at most `max_entries` of them)."""

    def __init__(
        self,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        *,
        buckets: int = 24,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if window_seconds <= 0 or max_entries < 1 or buckets < 1:
            raise ValueError("window_seconds, max_entries and buckets must be positive")
        self.window_seconds = window_seconds
        self.max_entries = max_entries
        self._slice = window_seconds / buckets
        self._per_bucket = max(1, max_entries // buckets)
        self._clock = clock
        self._lock = threading.Lock()
        # (bucket start, identities) oldest first; the last one receives new identities.
        self._buckets: deque[tuple[float, set[int]]] = deque()
        self._size = 0
        self.evicted = 0

    def add(self, identity: tuple[str, str]) -> bool:
        """Remember `identity`; True when it is new, False when it was seen within the window."""
        key = hash(identity)
        now = self._clock()
        with self._lock:
            self._expire(now)
            for _start, seen in self._buckets:
                if key in seen:
                    return False
            last = self._buckets[-1] if self._buckets else None
            # A new bucket per time slice, and per 1/buckets of the capacity, so dropping the
            # oldest bucket under memory pressure forgets a slice, not everything.
            if last is None or now - last[0] >= self._slice or len(last[1]) >= self._per_bucket:
                self._buckets.append((now, set()))
            self._buckets[-1][1].add(key)
            self._size += 1
            while self._size > self.max_entries and len(self._buckets) > 1:
                _start, dropped = self._buckets.popleft()
                self._size -= len(dropped)
                self.evicted += len(dropped)
            return True

    def __contains__(self, identity: tuple[str, str]) -> bool:
        key = hash(identity)
        with self._lock:
            self._expire(self._clock())
            return any(key in seen for _start, seen in self._buckets)

    def forget(self, identity: tuple[str, str]) -> None:
        """Drop `identity` (an event that was remembered but could not be applied after all)."""
        key = hash(identity)
        with self._lock:
            for _start, seen in self._buckets:
                if key in seen:
                    seen.discard(key)
                    self._size -= 1
                    return

    def __len__(self) -> int:
        with self._lock:
            return self._size

    def _expire(self, now: float) -> None:
        # A bucket holds identities first seen in [start, start + slice); it is gone once its
        # newest possible entry is older than the window.
        while self._buckets and now - self._buckets[0][0] >= self.window_seconds + self._slice:
            _start, dropped = self._buckets.popleft()
            self._size -= len(dropped)
