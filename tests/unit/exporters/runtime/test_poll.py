"""The poller keeps the latest snapshot and records each fetch's outcome."""

from __future__ import annotations

from aifinops.exporters.runtime.poll import Poller
from aifinops.exporters.runtime.selfmetrics import CollectorHealth


class FlakySource:
    def __init__(self):
        self.calls = 0

    def fetch(self):
        self.calls += 1
        if self.calls == 2:
            raise OSError("device gone")
        return ("snapshot", self.calls)


def test_a_failed_fetch_clears_the_snapshot_and_marks_the_collector_failed():
    health = CollectorHealth()
    seen = []
    poller = Poller("flaky", FlakySource(), 60, health, on_snapshot=seen.append)
    assert poller.poll_once() is True
    assert poller.latest == ("snapshot", 1)
    assert health.snapshot()["flaky"].success is True
    assert poller.poll_once() is False
    assert poller.latest is None
    assert health.snapshot()["flaky"].success is False
    assert poller.poll_once() is True
    assert poller.latest == ("snapshot", 3)
    assert seen == [("snapshot", 1), ("snapshot", 3)]


def test_keep_stale_keeps_the_last_good_snapshot():
    poller = Poller("flaky", FlakySource(), 60, CollectorHealth(), keep_stale=True)
    poller.poll_once()
    poller.poll_once()
    assert poller.latest == ("snapshot", 1)
