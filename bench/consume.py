"""Consume throughput of one `aifinops-bridge` process against the raw kafka-python poll loop, same data.

Starts a Tansu broker (or uses `KAFKA_BOOTSTRAP_SERVERS`), writes `--events` realistic usage events
(the ingest bench's events: JSON CloudEvents of about 450 bytes, 6 models, 200 team/app pairs) to a
10-partition topic, then in the same run:

- raw: a plain `KafkaConsumer` (same fetch sizes as the bridge) polling every record and touching
  its value: the ceiling for any kafka-python consumer on this machine;
- bridge: the real daemon as its own process, consuming the topic through its consumer group
  (validation, pricing, dedupe, aggregation, checkpointed scrapes), timed from its
  `aifinops_bridge_messages_total` scraped every second.

Both are timed from 10 % to 100 % of the events, so start-up and the group join are excluded. Prints
events/s for each, the ratio, and checks the bridge counted every event. Targets: bridge
≥ 40,000 events/s and ≥ 80 % of raw.

    .venv/bin/python bench/consume.py [--events 500000] [--rounds 2] [--ceilings]

`--ceilings` adds two cut-down daemons (bench/variants/cut_bridge.py) that show where the time goes:
the bridge's loop with each message only counted, and the same plus JSON decoding.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import yaml
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from prometheus_client.parser import text_string_to_metric_families

from aifinops.cli.demo.stack import KafkaBroker, free_port, http_ok, wait_until
from aifinops.exporters.events import encode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import events

PARTITIONS = 10
BRIDGE = Path(sys.executable).parent / "aifinops-bridge"
VARIANT = Path(__file__).resolve().parent / "variants" / "cut_bridge.py"


def produce(bootstrap: str, topic: str, n: int) -> float:
    """Write `n` events keyed `team/app`; returns the mean value size in bytes."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks=1,
        linger_ms=20,
        batch_size=512 << 10,
        enable_idempotence=False,
    )
    size = 0
    for event in events(n):
        value = encode(event)
        size += len(value)
        key = f"{event['data']['team']}/{event['data']['app']}".encode()
        producer.send(topic, value, key=key)
    producer.flush()
    producer.close()
    return size / n


def raw(bootstrap: str, topic: str, n: int) -> float:
    """The plain poll loop; events/s from 10 % to 100 %."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 << 20,
        fetch_max_bytes=64 << 20,
        max_poll_records=5000,
        metrics_enabled=False,
    )
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    count, size, t10 = 0, 0, None
    mark = n // 10
    while count < n:
        for records in consumer.poll(timeout_ms=500, max_records=5000).values():
            for record in records:
                size += len(record.value)
            count += len(records)
        if t10 is None and count >= mark:
            t10, c10 = time.perf_counter(), count
    elapsed = time.perf_counter() - t10
    consumer.close()
    return (count - c10) / elapsed


def applied(url: str, topic: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "aifinops_bridge_messages_total" and s.labels.get("topic") == topic
    )


def bridge(
    bootstrap: str, topic: str, n: int, workdir: Path, variant: str | None = None
) -> tuple[float, float]:
    """The daemon (or a `variants/cut_bridge.py` cut-down of it); (events/s from 10 % to 100 %, events
    it counted)."""
    port = free_port()
    config = {
        "kafka": {
            "bootstrap_servers": [bootstrap],
            "topics": {"usage": {"name": topic}, "gpu": {"name": f"{topic}-gpu"}},
        },
        "bridge": {
            "group_id": f"bench-{uuid.uuid4().hex[:8]}",
            "state_dir": str(workdir / "state"),
            "max_poll_interval_ms": 3000,
            "session_timeout_ms": 3000,
            "heartbeat_interval_ms": 1000,
        },
    }
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "aifinops.yml").write_text(yaml.safe_dump(config))
    log = open(workdir / "bridge.log", "wb")  # noqa: SIM115 - the child owns it
    command = [str(BRIDGE)] if variant is None else [sys.executable, str(VARIANT), variant]
    proc = subprocess.Popen(
        [
            *command,
            f"--config.file={workdir / 'aifinops.yml'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_ok(f"{url}/-/ready"), 30, "the bridge")
        # Scraped once a second, as a fast Prometheus would. The start is the first scrape at or
        # past 10 % (its exact time and count). The end is extrapolated from the last scrape
        # before 100 % at the rate of the interval before it: interpolating within the interval
        # where the run finished (or started, while the member was still joining) would spread
        # its events over the idle part of that second and understate the rate.
        mark = n // 10
        start: tuple[float, float] | None = None
        previous = (time.perf_counter(), 0.0)
        rate = 0.0
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            time.sleep(1.0)
            count = applied(url, topic)
            now = time.perf_counter()
            if count >= n:
                if start is None or start[0] == previous[0] or rate <= 0:
                    raise SystemExit(
                        f"the bridge read {n} events within one scrape interval; use more --events"
                    )
                t100 = previous[0] + (n - previous[1]) / rate
                return (n - start[1]) / (t100 - start[0]), count
            if start is not None:
                rate = (count - previous[1]) / (now - previous[0])
            elif count >= mark:
                start = (now, count)
            previous = (now, count)
        raise SystemExit("the bridge did not finish in time; see " + str(workdir / "bridge.log"))
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--ceilings",
        action="store_true",
        help="also time the daemon with its per-message work cut down (bench/variants/cut_bridge.py); "
        "these run near the raw rate: give them 1,000,000 events",
    )
    args = parser.parse_args()
    variants = {"bridge": None}
    if args.ceilings:
        variants |= {
            "bridge loop, messages only counted": "count",
            "bridge loop + JSON decoding": "decode",
        }
    rates: dict[str, list[float]] = {"raw": []} | {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="aifinops-bench-") as tmp:
        work = Path(tmp)
        broker = KafkaBroker(work / "kafka", external=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
        broker.start()
        try:
            topic = f"bench-usage-{uuid.uuid4().hex[:8]}"
            admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
            admin.create_topics(
                [NewTopic(topic, PARTITIONS, 1), NewTopic(f"{topic}-gpu", PARTITIONS, 1)]
            )
            admin.close()
            t = time.perf_counter()
            size = produce(broker.bootstrap, topic, args.events)
            print(
                f"wrote {args.events} events ({size:.0f} bytes each on average) to {PARTITIONS} "
                f"partitions in {time.perf_counter() - t:.1f}s"
            )
            for r in range(args.rounds):
                rates["raw"].append(raw(broker.bootstrap, topic, args.events))
                line = [f"raw kafka-python poll loop {rates['raw'][-1]:,.0f} events/s"]
                for name, variant in variants.items():
                    rate, counted = bridge(
                        broker.bootstrap, topic, args.events, work / f"{variant}-{r}", variant
                    )
                    if counted != args.events:
                        raise SystemExit(f"{name} counted {counted} of {args.events} events")
                    rates[name].append(rate)
                    line.append(f"{name} {rate:,.0f} events/s")
                print(f"round {r + 1}: " + ", ".join(line))
        finally:
            broker.stop()
    raw_rate = statistics.median(rates["raw"])
    print(f"raw kafka-python poll loop: {raw_rate:,.0f} events/s (median of {args.rounds})")
    for name in variants:
        rate = statistics.median(rates[name])
        print(
            f"{name}: {rate:,.0f} events/s, {rate / raw_rate:.0%} of raw "
            f"(median of {args.rounds}; {1e6 / rate:.1f} us/event against raw {1e6 / raw_rate:.1f})"
        )
    bridge_rate = statistics.median(rates["bridge"])
    print(
        f"aifinops-bridge (1 process): {bridge_rate:,.0f} events/s (target >= 40,000); "
        f"ratio bridge/raw: {bridge_rate / raw_rate:.0%} (target >= 80%)"
    )


if __name__ == "__main__":
    main()
