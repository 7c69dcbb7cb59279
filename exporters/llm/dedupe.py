"""The bounded `(source, id)` window that makes a retried or redelivered event count once.

Identities are kept as 64-bit hashes in one open-addressing table of machine words (`array`,
linear probing, deletion by backward shift, so no tombstones build up), each slot tagged with the
time bucket it was added in; each bucket (the window split in `buckets` slices) lists its hashes
in an `array` too. No Python object is kept per identity: a remembered event costs 8 bytes in its
bucket plus 12 bytes a table slot at 30 to 60% load, about 30 to 50 bytes (35 at a million; the
`dict` of Python ints this replaced held 86, `bench/dedupe_memory.py`). Growing the table, or
dropping a bucket, holds adds for up to about 0.15 s at a million identities, as the `dict`'s
resizing did. Expiry drops the oldest bucket whole, and memory never grows past `max_entries`
(when it would, the oldest bucket is dropped early, a bucket also closing once it holds
1/`buckets` of the capacity; `evicted` counts the identities forgotten that way). The window
lives in memory: a restart forgets it. Two distinct events collide with probability about n²/2⁶⁵
(3·10⁻⁸ for a million remembered events).
"""

from __future__ import annotations

import threading
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable

DEFAULT_WINDOW_SECONDS = 24 * 3600.0
DEFAULT_MAX_ENTRIES = 1_000_000

_U64 = (1 << 64) - 1
# The table doubles once more than this share of its slots is taken: linear probing stays at a
# few probes a look-up.
_MAX_LOAD = 0.6
_MIN_SLOTS = 1024
_GENERATIONS = 1 << 32


def _key(identity: tuple[str, str]) -> int:
    """The identity's 64-bit hash as an unsigned word; 0 marks an empty slot, so it becomes 1."""
    return (hash(identity) & _U64) or 1


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
        # The hash table: a key per slot (0: empty) and the generation of the bucket it is in.
        self._keys = array("Q", bytes(8 * _MIN_SLOTS))
        self._gens = array("I", bytes(4 * _MIN_SLOTS))
        self._mask = _MIN_SLOTS - 1
        # Buckets oldest first; the last one receives new identities. By generation too, for
        # `forget`.
        self._buckets: deque[_Bucket] = deque()
        self._by_gen: dict[int, _Bucket] = {}
        self._next_gen = 1
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
        with self._lock:
            self._expire(now)
            last = self._buckets[-1] if self._buckets else None
            keys, mask = self._keys, self._mask
            for identity in identities:
                key = _key(identity)
                i = key & mask
                while True:
                    k = keys[i]
                    if k == key or not k:
                        break
                    i = (i + 1) & mask
                if k:
                    out.append(False)
                    continue
                # A new bucket per time slice, and per 1/buckets of the capacity, so dropping
                # the oldest bucket under memory pressure forgets a slice, not everything.
                if (
                    last is None
                    or now - last.start >= self._slice
                    or last.added >= self._per_bucket
                ):
                    last = self._new_bucket(now)
                keys[i] = key
                self._gens[i] = last.gen
                last.keys.append(key)
                last.added += 1
                last.count += 1
                self._size += 1
                if self._size > self.max_entries and len(self._buckets) > 1:
                    while self._size > self.max_entries and len(self._buckets) > 1:
                        self.evicted += self._drop_oldest()
                if self._size > _MAX_LOAD * (mask + 1):
                    self._grow()
                    keys, mask = self._keys, self._mask
                out.append(True)
        return out

    def __contains__(self, identity: tuple[str, str]) -> bool:
        with self._lock:
            self._expire(self._clock())
            return self._find(_key(identity)) >= 0

    def forget(self, identity: tuple[str, str]) -> None:
        """Drop `identity` (an event that was remembered but could not be applied after all)."""
        with self._lock:
            i = self._find(_key(identity))
            if i >= 0:
                # Its hash stays in the bucket's list; dropping the bucket skips it then (the
                # generation no longer matches, or the slot is empty).
                bucket = self._by_gen.get(self._gens[i])
                if bucket is not None:
                    bucket.count -= 1
                self._delete(i)
                self._size -= 1

    def __len__(self) -> int:
        with self._lock:
            return self._size

    def _new_bucket(self, now: float) -> _Bucket:
        gen = self._next_gen
        # Generations are reused after 2³² buckets: by then the bucket that had it is long gone.
        self._next_gen = gen % (_GENERATIONS - 1) + 1
        bucket = _Bucket(now, gen)
        self._buckets.append(bucket)
        self._by_gen[gen] = bucket
        return bucket

    def _find(self, key: int) -> int:
        """The slot holding `key`, or -1."""
        keys, mask = self._keys, self._mask
        i = key & mask
        while True:
            k = keys[i]
            if k == key:
                return i
            if not k:
                return -1
            i = (i + 1) & mask

    def _delete(self, i: int) -> None:
        """Empty slot `i`, moving later keys of its probe run back so every key stays reachable."""
        keys, gens, mask = self._keys, self._gens, self._mask
        j = i
        while True:
            j = (j + 1) & mask
            k = keys[j]
            if not k:
                break
            home = k & mask
            # The key at j may fill the hole at i only if its home slot is not in (i, j].
            if (i < j and i < home <= j) or (j < i and (home > i or home <= j)):
                continue
            keys[i] = k
            gens[i] = gens[j]
            i = j
        keys[i] = 0

    def _grow(self) -> None:
        old_keys, old_gens = self._keys, self._gens
        slots = 2 * len(old_keys)
        keys = self._keys = array("Q", bytes(8 * slots))
        gens = self._gens = array("I", bytes(4 * slots))
        mask = self._mask = slots - 1
        for k, g in zip(old_keys, old_gens, strict=True):
            if k:
                i = k & mask
                while keys[i]:
                    i = (i + 1) & mask
                keys[i] = k
                gens[i] = g

    def _expire(self, now: float) -> None:
        # A bucket holds identities first seen in [start, start + slice); it is gone once its
        # newest possible entry is older than the window.
        while self._buckets and now - self._buckets[0].start >= self.window_seconds + self._slice:
            self._drop_oldest()

    def _drop_oldest(self) -> int:
        """Forget the oldest bucket; returns how many identities that dropped."""
        bucket = self._buckets.popleft()
        del self._by_gen[bucket.gen]
        gen, gens = bucket.gen, self._gens
        for key in bucket.keys:
            i = self._find(key)
            # Not there, or there again from a later bucket (forgotten, then added again).
            if i >= 0 and gens[i] == gen:
                self._delete(i)
        self._size -= bucket.count
        return bucket.count


class _Bucket:
    """The identities first seen in one slice of the window (hashes; some may be forgotten)."""

    __slots__ = ("added", "count", "gen", "keys", "start")

    def __init__(self, start: float, gen: int) -> None:
        self.start = start
        self.gen = gen
        self.keys = array("Q")
        # Identities added to it, and of those the ones still remembered here.
        self.added = 0
        self.count = 0
