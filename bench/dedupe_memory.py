"""Memory and speed of the dedupe window: bytes per remembered identity, and adds per second.

Fills a `DedupeWindow` of `--entries` capacity with that many fresh `(source, id)` identities (the
ids a gateway sends: UUID strings), then adds as many again (a full window: the oldest buckets are
dropped as new ones come), and looks up repeats. Prints the memory the window holds (tracemalloc,
and the process's resident-memory growth in a separate run without tracing), the time per add and
the slowest batch of 100.

    .venv/bin/python bench/dedupe_memory.py [--entries 1000000]
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
import uuid

from aifinops.exporters.llm.dedupe import DedupeWindow


def rss_bytes() -> int:
    """The current resident memory of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def identities(n: int, source: str = "gateway-eu-1") -> list[tuple[str, str]]:
    """`n` fresh identities, as events carry them."""
    return [(source, str(uuid.uuid4())) for _ in range(n)]


def measure(entries: int, traced: bool) -> dict[str, float]:
    """Fill a window to capacity and past it: the memory it holds, the time per add and the
    slowest batch of 100."""
    batch = 100
    first, second = identities(entries), identities(entries)
    gc.collect()
    if traced:
        tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0] if traced else rss_bytes()
    window = DedupeWindow(24 * 3600.0, entries)
    worst = 0.0
    start = time.perf_counter()
    for i in range(0, entries, batch):
        began = time.perf_counter()
        window.add_all(first[i : i + batch])
        worst = max(worst, time.perf_counter() - began)
    fill = time.perf_counter() - start
    held = (tracemalloc.get_traced_memory()[0] if traced else rss_bytes()) - base
    start = time.perf_counter()
    for i in range(0, entries, batch):
        began = time.perf_counter()
        window.add_all(second[i : i + batch])
        worst = max(worst, time.perf_counter() - began)
    churn = time.perf_counter() - start
    start = time.perf_counter()
    repeats = second[-entries // 2 :]
    for i in range(0, len(repeats), batch):
        assert not any(window.add_all(repeats[i : i + batch]))
    lookup = time.perf_counter() - start
    after = (tracemalloc.get_traced_memory()[0] if traced else rss_bytes()) - base
    if traced:
        tracemalloc.stop()
    return {
        "held": held,
        "after": after,
        "remembered": len(window),
        "fill_us": fill / entries * 1e6,
        "churn_us": churn / entries * 1e6,
        "lookup_us": lookup / len(repeats) * 1e6,
        "worst_ms": worst * 1e3,
    }


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    args = parser.parse_args()
    n = args.entries
    traced = measure(n, traced=True)
    plain = measure(n, traced=False)
    print(f"dedupe window of {n:,} identities ({int(plain['remembered']):,} remembered when full)")
    print(
        f"  held when full: {traced['held'] / 1e6:.1f} MB traced "
        f"({traced['held'] / n:.1f} B/identity), resident growth {plain['held'] / 1e6:.1f} MB"
    )
    print(
        f"  after {n:,} more (oldest buckets dropped): {traced['after'] / 1e6:.1f} MB traced, "
        f"resident growth {plain['after'] / 1e6:.1f} MB"
    )
    print(
        f"  per add: {plain['fill_us']:.2f} µs filling, {plain['churn_us']:.2f} µs when full; "
        f"{plain['lookup_us']:.2f} µs per repeat found; slowest batch of 100 "
        f"{plain['worst_ms']:.0f} ms (the table growing, or a bucket dropped)"
    )


if __name__ == "__main__":
    main()
