"""The dedupe window against a plain model: exactly-once inside the window, expiry, the bound."""

from __future__ import annotations

import random

import pytest

from aifinops.exporters.llm.dedupe import DedupeWindow


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Model:
    """What the window must answer, kept the obvious way: identities (not hashes) in buckets."""

    def __init__(self, window: float, max_entries: int, buckets: int) -> None:
        self.window, self.max_entries = window, max_entries
        self.slice, self.per_bucket = window / buckets, max(1, max_entries // buckets)
        self.buckets: list[list] = []  # [start, added, set of identities]
        self.evicted = 0

    def size(self) -> int:
        return sum(len(b[2]) for b in self.buckets)

    def expire(self, now: float) -> None:
        while self.buckets and now - self.buckets[0][0] >= self.window + self.slice:
            self.buckets.pop(0)

    def add(self, identity: tuple[str, str], now: float) -> bool:
        self.expire(now)
        if any(identity in b[2] for b in self.buckets):
            return False
        last = self.buckets[-1] if self.buckets else None
        if last is None or now - last[0] >= self.slice or last[1] >= self.per_bucket:
            last = [now, 0, set()]
            self.buckets.append(last)
        last[1] += 1
        last[2].add(identity)
        while self.size() > self.max_entries and len(self.buckets) > 1:
            self.evicted += len(self.buckets.pop(0)[2])
        return True

    def forget(self, identity: tuple[str, str]) -> None:
        for bucket in self.buckets:
            bucket[2].discard(identity)

    def contains(self, identity: tuple[str, str], now: float) -> bool:
        self.expire(now)
        return any(identity in b[2] for b in self.buckets)


@pytest.mark.parametrize("seed", range(6))
def test_the_window_answers_as_the_model_through_adds_forgets_expiry_and_eviction(seed: int):
    rng = random.Random(seed)
    clock = Clock()
    # Small enough to evict and expire often; thousands of keys so the table grows and probe
    # runs form, then shrink under deletions (backward shifts).
    window = DedupeWindow(window_seconds=100, max_entries=3000, buckets=8, clock=clock)
    model = Model(100, 3000, 8)
    pool = [("src", f"id-{i}") for i in range(6000)]
    for _ in range(400):
        clock.now += rng.choice((0.0, 0.0, 1.0, 7.5, 40.0))
        op = rng.random()
        if op < 0.7:
            batch = [rng.choice(pool) for _ in range(rng.randint(1, 60))]
            expected = [model.add(identity, clock.now) for identity in batch]
            assert window.add_all(batch) == expected
        elif op < 0.85:
            identity = rng.choice(pool)
            model.forget(identity)
            window.forget(identity)
        else:
            probe = rng.sample(pool, 50)
            assert [identity in window for identity in probe] == [
                model.contains(identity, clock.now) for identity in probe
            ]
        assert len(window) == model.size() <= 3000
        assert window.evicted == model.evicted


def test_every_remembered_identity_stays_found_after_many_deletions():
    window = DedupeWindow(max_entries=100_000)
    ids = [("s", str(i)) for i in range(20_000)]
    assert all(window.add_all(ids))
    for identity in ids[::3]:
        window.forget(identity)
    kept = [identity for n, identity in enumerate(ids) if n % 3]
    assert not any(window.add_all(kept))  # every one still there: counted once
    assert all(window.add_all(ids[::3]))  # the forgotten ones are new again
    assert len(window) == 20_000


def test_an_identity_forgotten_and_added_again_in_the_same_bucket_is_dropped_once():
    clock = Clock()
    window = DedupeWindow(window_seconds=10, max_entries=1000, buckets=2, clock=clock)
    assert window.add(("s", "a"))
    window.forget(("s", "a"))
    assert window.add(("s", "a"))
    assert window.add(("s", "b"))
    clock.now = 5.0
    assert window.add(("s", "c"))  # a second bucket
    clock.now = 15.0  # the first bucket expires with both of its identities
    assert ("s", "a") not in window and ("s", "b") not in window
    assert ("s", "c") in window
    assert len(window) == 1
