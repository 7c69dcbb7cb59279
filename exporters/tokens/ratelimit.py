"""Per-credential ingest rate limits: a token bucket of events per second with a burst, per token.

One gateway that floods the exporter is answered `429 Too Many Requests` with `Retry-After` while
the others keep their share. Buckets are kept for at most `max_buckets` credentials (least
recently used dropped first), so clients cannot grow the table without bound.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable, Iterable

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from ..runtime.buckets import BoundedBuckets

RATE_LIMITED = "aifinops_ingest_rate_limited_events_total"


class RateLimiter:
    """Token buckets of `rate` events per second holding at most `burst`, one per key."""

    def __init__(
        self,
        rate: float,
        burst: int,
        max_buckets: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1 or max_buckets < 1:
            raise ValueError("rate must be above 0, burst and max_buckets at least 1")
        self._burst = float(burst)
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets = BoundedBuckets(rate, self._burst, max_buckets)
        self._refused: dict[str, int] = {}

    def take(self, key: Hashable, events: int, team: str = "") -> float:
        """Take `events` from `key`'s bucket: 0 when allowed, else the seconds to wait.

        A request larger than the burst passes once the bucket is full and leaves it in debt, so
        a batch at the size limit is slowed, never refused for ever.
        """
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key, now)
            wait = bucket.wait_for(min(float(events), self._burst))
            if wait == 0.0:
                bucket.tokens -= events
            else:
                self._refused[team] = self._refused.get(team, 0) + events
            return wait

    def refused(self) -> dict[str, int]:
        """Events refused so far, by team ("" for open ingest)."""
        with self._lock:
            return dict(self._refused)

    def collector(self) -> Collector:
        """`aifinops_ingest_rate_limited_events_total{team}`."""
        return _RateLimitCollector(self)


def retry_after(wait: float) -> str:
    """A `Retry-After` value (whole seconds, at least 1) for a wait in seconds."""
    return str(max(1, math.ceil(wait)))


class _RateLimitCollector(Collector):
    """# TYPE aifinops_ingest_rate_limited_events_total counter"""

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            RATE_LIMITED,
            "Events refused with 429 because their credential exceeded tokens.rate_limit, by the "
            "credential's team (empty with authentication off); the client retries them.",
            labels=["team"],
        )
        for team, n in sorted(self._limiter.refused().items()):
            family.add_metric([team], n)
        yield family
