"""Token buckets, and a bounded table of them by key: the one refill rule every rate limit uses."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable


class TokenBucket:
    """`rate` tokens a second, holding at most `burst`; full when made. Not locked: its owner
    holds its own lock around each use."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = burst, now

    def refill(self, now: float) -> None:
        """Add what has accrued since the last refill, up to the burst."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """0.0 when `amount` tokens are there, else the seconds until they are."""
        return 0.0 if self.tokens >= amount else (amount - self.tokens) / self.rate

    def give_back(self, amount: float) -> None:
        """Return `amount` tokens (never above the burst)."""
        self.tokens = min(self.burst, self.tokens + amount)


class BoundedBuckets:
    """One `TokenBucket` per key, at most `max_keys` of them: the least recently used key is
    forgotten first (it comes back full), so clients cannot grow the table without bound."""

    def __init__(self, rate: float, burst: float, max_keys: int) -> None:
        if rate <= 0 or burst <= 0 or max_keys < 1:
            raise ValueError("rate and burst must be above 0 and max_keys at least 1")
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._buckets: OrderedDict[Hashable, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def get(self, key: Hashable, now: float) -> TokenBucket:
        """`key`'s bucket refilled to `now` (a full one for a key not held), as most recently
        used."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.refill(now)
        return bucket

    def peek(self, key: Hashable) -> TokenBucket | None:
        """`key`'s bucket as it is, or None; its place in the order unchanged."""
        return self._buckets.get(key)
