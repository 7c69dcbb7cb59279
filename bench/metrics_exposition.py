"""`/metrics` with 50,000 LLM series: the fast encoder against prometheus_client's `generate_latest`.

Fills the token exporter's aggregator through the real pipeline (validated, priced events), then
times full scrapes over HTTP (text and OpenMetrics), the encoders alone, and the stock encoder on
the same registry, and prints the process's peak resident memory. Targets: ≤ 250 ms per scrape,
≤ 200 MB resident.

    .venv/bin/python bench/metrics_exposition.py [--series 50000] [--scrapes 10]
"""

from __future__ import annotations

import argparse
import http.client
import resource
import statistics
import time
from datetime import UTC, datetime

from ingest import MODELS, events  # bench/ingest.py: the same events the ingest bench posts
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from aifinops.cli.daemon import new_registry
from aifinops.exporters.config import CardinalityConfig, LLMConfig
from aifinops.exporters.llm import UsageIngest
from aifinops.exporters.runtime.exposition import encode_openmetrics, encode_text
from aifinops.exporters.runtime.http import HTTPServer
from aifinops.exporters.runtime.selfmetrics import CollectorHealth


def fill(series: int) -> tuple[UsageIngest, int]:
    """Apply events until the LLM families hold about `series` series; returns the event count."""
    # Each (provider, model, team, app) set makes 1 request + 4 token + 4 cost series.
    label_sets = series // 9
    teams = 100
    apps = -(-label_sets // (len(MODELS) * teams))
    ingest = UsageIngest.from_config(
        LLMConfig(cardinality=CardinalityConfig(max_values=100_000)), sources=("http",)
    )
    now = datetime.now(UTC)
    batch = events(label_sets, teams, apps)
    for event in batch:
        ingest.apply(ingest.prepare(event, now=now), "http")
    return ingest, len(batch)


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def scrape(port: int, accept: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics", headers={"Accept": accept})
    body = conn.getresponse().read()
    conn.close()
    return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=50_000)
    parser.add_argument("--scrapes", type=int, default=10)
    args = parser.parse_args()

    ingest, events = fill(args.series)
    registry = new_registry(CollectorHealth())
    for collector in ingest.collectors({}):
        registry.register(collector)
    text = encode_text(registry).decode()
    count = sum(len(f.samples) for f in text_string_to_metric_families(text))
    print(f"registry: {count} series from {events} events, {len(text) / 1e6:.1f} MB of text")

    server = HTTPServer("127.0.0.1:0", registry)
    server.start()
    try:
        om = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
        http_text = timed(lambda: scrape(server.port, "text/plain"), args.scrapes)
        http_om = timed(lambda: scrape(server.port, om), args.scrapes)
    finally:
        server.stop()
    fast_text = timed(lambda: encode_text(registry), args.scrapes)
    fast_om = timed(lambda: encode_openmetrics(registry), args.scrapes)
    stock = timed(lambda: generate_latest(registry), max(3, args.scrapes // 3))
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def ms(values: list[float]) -> str:
        return (
            f"median {statistics.median(values) * 1000:6.1f} ms  max {max(values) * 1000:6.1f} ms"
        )

    print(f"HTTP scrape, text format        {ms(http_text)}   (target <= 250 ms)")
    print(f"HTTP scrape, OpenMetrics        {ms(http_om)}")
    print(f"encode_text                     {ms(fast_text)}")
    print(f"encode_openmetrics              {ms(fast_om)}")
    print(f"stock generate_latest (baseline) {ms(stock)}")
    print(
        f"speed-up over stock: {statistics.median(stock) / statistics.median(fast_text):.1f}x "
        f"(encoder), {statistics.median(stock) / statistics.median(http_text):.1f}x (HTTP scrape)"
    )
    print(f"peak resident memory: {rss_mb:.0f} MB (target <= 200 MB)")


if __name__ == "__main__":
    main()
