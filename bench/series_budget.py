"""Sizing of the series budget: the real token exporter fed `--teams` x `--apps` label sets.

Starts `aifinops-token-exporter` (Kafka off) with `llm.cardinality.max_series` from `--max-series`
and per-label limits out of the way, posts one event per (team, app) in batches of 400, then
prints the series on `/metrics`, its size, the slowest and median of `--scrapes` scrapes, and the
daemon's peak and final resident memory (from /proc). The default budget (40,000 per family) is
meant to keep 500 teams x 400 apps (1.8 M series unbounded) under 200 MB and a scrape well under a
second.

    .venv/bin/python bench/series_budget.py [--teams 500] [--apps 400] [--max-series 40000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
import uuid

from aifinops.cli.demo.stack import free_port, http_ok, wait_until
from aifinops.exporters.events import USAGE_TYPE, make_event


def rss_mb(pid: int) -> tuple[float, float]:
    """(peak, current) resident memory of `pid` in MB."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.split()
    return int(fields["VmHWM"][0]) / 1024, int(fields["VmRSS"][0]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=500)
    parser.add_argument("--apps", type=int, default=400)
    parser.add_argument("--max-series", type=int, default=40_000)
    parser.add_argument("--scrapes", type=int, default=5)
    args = parser.parse_args()

    port = free_port()
    code = "from aifinops.cli.token_exporter import main; raise SystemExit(main())"
    argv = [sys.executable, "-c", code, "--web.listen-address", f"127.0.0.1:{port}"]
    env = {
        **os.environ,
        "AIFINOPS_LLM_CARDINALITY_MAX_VALUES": str(max(args.teams, args.apps) + 10),
        "AIFINOPS_LLM_CARDINALITY_MAX_SERIES": str(args.max_series),
    }
    process = subprocess.Popen([*argv, "--log.level", "warn"], env=env)
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/-/ready"), 30, "the exporter")
        run = uuid.uuid4().hex[:8]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        start = time.perf_counter()
        for team in range(args.teams):
            batch = [
                make_event(
                    USAGE_TYPE,
                    f"bench-{run}",
                    {
                        "provider": "openai",
                        "model": "gpt-4o",
                        "team": f"team-{team}",
                        "app": f"app-{app}",
                        "input_tokens": 1000,
                        "output_tokens": 100,
                    },
                    event_id=f"{team}-{app}",
                )
                for app in range(args.apps)
            ]
            for i in range(0, len(batch), 400):
                conn.request(
                    "POST",
                    "/v1/events",
                    body=json.dumps(batch[i : i + 400]),
                    headers={"Content-Type": "application/cloudevents-batch+json"},
                )
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 202:
                    raise SystemExit(f"POST answered {resp.status}: {body[:200]!r}")
        posted = time.perf_counter() - start
        times, size, series = [], 0, 0
        for _ in range(args.scrapes):
            t0 = time.perf_counter()
            conn.request("GET", "/metrics")
            text = conn.getresponse().read()
            times.append(time.perf_counter() - t0)
            size = len(text)
            series = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))
        conn.close()
        peak, now = rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(10)
    sets = args.teams * args.apps
    print(f"label sets posted: {sets:,} in {posted:.1f} s; budget {args.max_series:,} per family")
    print(f"/metrics: {series:,} series, {size / 1e6:.1f} MB")
    print(
        f"scrape: slowest {max(times) * 1000:.0f} ms, median {statistics.median(times) * 1000:.0f} ms"
    )
    print(f"token exporter resident memory: peak {peak:.0f} MB, final {now:.0f} MB")


if __name__ == "__main__":
    main()
