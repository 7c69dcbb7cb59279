"""The last-minute sum of a team's spend or tokens: a ring of 60 per-second integer buckets."""

from __future__ import annotations

WINDOW_SECONDS = 60


class MinuteWindow:
    """What was added during the last 60 whole seconds (the current second and the 59 before it).

    Amounts are integers (1e-24 USD units or tokens), so the sum is exact. Adding and reading are
    O(1): moving to a later second clears at most 60 buckets, whatever the number of events.
    Seconds come from a monotonic clock; an earlier second than the newest seen counts in the
    newest (a clock never goes back, but callers may read it before taking the lock).
    """

    __slots__ = ("_buckets", "_second", "total")

    def __init__(self) -> None:
        self._buckets = [0] * WINDOW_SECONDS
        self._second: int | None = None
        self.total = 0

    def _advance(self, second: int) -> int:
        """Move the window's end to `second`, dropping what fell out; returns the newest second."""
        last = self._second
        if last is None or second - last >= WINDOW_SECONDS:
            if self.total:
                self._buckets = [0] * WINDOW_SECONDS
                self.total = 0
            self._second = second
        elif second > last:
            buckets = self._buckets
            for s in range(last + 1, second + 1):
                i = s % WINDOW_SECONDS
                self.total -= buckets[i]
                buckets[i] = 0
            self._second = second
        else:
            return last
        return second

    def add(self, second: int, amount: int) -> int:
        """Add `amount` at `second`; returns the sum of the last minute including it."""
        newest = second if second == self._second else self._advance(second)
        index = newest % WINDOW_SECONDS
        self._buckets[index] += amount
        self.total += amount
        return self.total

    def total_at(self, second: int) -> int:
        """The sum of the minute ending at `second`."""
        self._advance(second)
        return self.total
