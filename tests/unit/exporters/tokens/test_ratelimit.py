"""Per-credential token buckets: burst, refill, Retry-After, bounded table, refusals counted."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from aifinops.exporters.tokens.ratelimit import RateLimiter, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill_at_the_rate():
    clock = Clock()
    limiter = RateLimiter(rate=10, burst=50, clock=clock)
    assert limiter.take("a", 50) == 0
    assert limiter.take("a", 10) == pytest.approx(1.0)  # 10 events at 10/s
    clock.now += 0.5
    assert limiter.take("a", 10) == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.take("a", 10) == 0
    assert retry_after(0.2) == "1"
    assert retry_after(2.1) == "3"


def test_one_credential_does_not_starve_another():
    limiter = RateLimiter(rate=1, burst=5, clock=Clock())
    assert limiter.take("gateway-a", 5, "a") == 0
    assert limiter.take("gateway-a", 1, "a") > 0
    assert limiter.take("gateway-b", 5, "b") == 0
    assert limiter.refused() == {"a": 1}


def test_a_request_over_the_burst_passes_on_a_full_bucket_and_leaves_debt():
    clock = Clock()
    limiter = RateLimiter(rate=10, burst=20, clock=clock)
    assert limiter.take("a", 100) == 0
    assert limiter.take("a", 1) == pytest.approx(8.1)  # 80 events of debt, then 1 more


def test_the_bucket_table_is_bounded():
    limiter = RateLimiter(rate=1, burst=1, max_buckets=3, clock=Clock())
    for key in range(10):
        limiter.take(key, 1)
    assert len(limiter._buckets) == 3
    assert limiter.take(9, 1) > 0  # the most recent keys are kept


def test_refusals_are_exposed_by_team():
    limiter = RateLimiter(rate=1, burst=1, clock=Clock())
    limiter.take("t", 1, "ml")
    limiter.take("t", 4, "ml")
    registry = CollectorRegistry()
    registry.register(limiter.collector())
    assert (
        'aifinops_ingest_rate_limited_events_total{team="ml"} 4.0'
        in generate_latest(registry).decode()
    )


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (1, 0), (-1, 5)])
def test_bad_limits_are_refused(rate, burst):
    with pytest.raises(ValueError):
        RateLimiter(rate=rate, burst=burst)
