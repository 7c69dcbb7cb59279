"""The bounded `(source, id)` window that makes a retried or redelivered event count once.

Identities are kept as 64-bit hashes in time buckets (the window split in `buckets` slices), with
one table from hash to bucket, so a look-up is a single probe whatever the number of buckets.
Expiry drops the oldest bucket whole, so memory is about 85 bytes per remembered event and never
grows past `max_entries` (when it would, the oldest bucket is dropped early, a bucket also closing
once it holds 1/`buckets` of the capacity; `evicted` counts the identities forgotten that way).
The window lives in memory: a restart forgets it. Two distinct events collide with probability
about n²/2⁶⁵ (3·10⁻⁸ for a million remembered events).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

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
        # Every remembered identity's hash → the bucket it was added in, so a look-up is one
        # probe whatever the number of buckets.
        self._seen: dict[int, _Bucket] = {}
        # Buckets oldest first; the last one receives new identities.
        self._buckets: deque[_Bucket] = deque()
        self._size = 0
        self.evicted = 0

    def add(self, identity: tuple[str, str]) -> bool:
        """Remember `identity`; True when it is new, False when it was seen within the window."""
        return self.add_all((identity,))[0]

    def add_all(self, identities: Iterable[tuple[str, str]]) -> list[bool]:
        """`add` for many identities in order, with one clock reading and one lock: whether each
        is new (a repeat within the batch is not)."""
        now = self._clock()
        out = []
        seen = self._seen
        with self._lock:
            self._expire(now)
            last = self._buckets[-1] if self._buckets else None
            for identity in identities:
                key = hash(identity)
                if key in seen:
                    out.append(False)
                    continue
                # A new bucket per time slice, and per 1/buckets of the capacity, so dropping
                # the oldest bucket under memory pressure forgets a slice, not everything.
                if (
                    last is None
                    or now - last.start >= self._slice
                    or last.count >= self._per_bucket
                ):
                    last = _Bucket(now)
                    self._buckets.append(last)
                seen[key] = last
                last.keys.append(key)
                last.count += 1
                self._size += 1
                if self._size > self.max_entries and len(self._buckets) > 1:
                    while self._size > self.max_entries and len(self._buckets) > 1:
                        self.evicted += self._drop_oldest()
                out.append(True)
        return out

    def __contains__(self, identity: tuple[str, str]) -> bool:
        key = hash(identity)
        with self._lock:
            self._expire(self._clock())
            return key in self._seen

    def forget(self, identity: tuple[str, str]) -> None:
        """Drop `identity` (an event that was remembered but could not be applied after all)."""
        key = hash(identity)
        with self._lock:
            bucket = self._seen.pop(key, None)
            if bucket is not None:
                # Its hash stays in the bucket's list; dropping the bucket skips it then.
                bucket.count -= 1
                self._size -= 1

    def __len__(self) -> int:
        with self._lock:
            return self._size

    def _expire(self, now: float) -> None:
        # A bucket holds identities first seen in [start, start + slice); it is gone once its
        # newest possible entry is older than the window.
        while self._buckets and now - self._buckets[0].start >= self.window_seconds + self._slice:
            self._drop_oldest()

    def _drop_oldest(self) -> int:
        """Forget the oldest bucket; returns how many identities that dropped."""
        bucket = self._buckets.popleft()
        seen = self._seen
        for key in bucket.keys:
            if seen.get(key) is bucket:
                del seen[key]
        self._size -= bucket.count
        return bucket.count


class _Bucket:
    """The identities first seen in one slice of the window (hashes; some may be forgotten)."""

    __slots__ = ("count", "keys", "start")

    def __init__(self, start: float) -> None:
        self.start = start
        self.keys: list[int] = []
        self.count = 0
