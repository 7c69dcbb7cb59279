"""How long `aifinops focus export` takes for a day of events, end to end against a real broker.

Starts a Tansu broker (or uses `KAFKA_BOOTSTRAP_SERVERS`), writes `--events` usage events (6 models,
cache reads and writes, `--pairs` team/app pairs) and `--gpu-samples` GPU samples (16 GPUs) spread
over 24 hours, then runs the export of that day in this process and prints what it printed, the time
it took, events/s, the rows written and the file size. With 200 pairs nearly every event starts a
row of its own (the worst case); real traffic puts many calls in one row.

    .venv/bin/python bench/focus_export.py [--events 200000] [--gpu-samples 50000] [--pairs 200]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from aifinops.cli.aifinops import main as aifinops
from aifinops.cli.demo.stack import KafkaBroker
from aifinops.exporters.events import GPU_SAMPLE_TYPE, USAGE_TYPE, encode, make_event

MODELS = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-sonnet-4-0"),
    ("anthropic", "claude-3-5-haiku-latest"),
    ("gcp.gemini", "gemini-2.5-pro"),
    ("gcp.gemini", "gemini-2.5-flash"),
]


def produce(bootstrap: str, topic: str, values: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=256 * 1024
    )
    for key, value in values:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--gpu-samples", type=int, default=50_000)
    parser.add_argument(
        "--pairs", type=int, default=200, help="team/app pairs (fewer: more events per row)"
    )
    args = parser.parse_args()
    rng = random.Random(7)
    day = (datetime.now(UTC) - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = KafkaBroker(work / "kafka", external=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
        broker.start()
        try:
            bootstrap = broker.bootstrap
            suffix = uuid.uuid4().hex[:6]
            usage_topic, gpu_topic = f"ai-api-costs-{suffix}", f"gpu-utilization-events-{suffix}"
            admin = KafkaAdminClient(bootstrap_servers=bootstrap)
            admin.create_topics([NewTopic(usage_topic, 10, 1), NewTopic(gpu_topic, 10, 1)])
            admin.close()
            usage = []
            for i in range(args.events):
                provider, model = rng.choice(MODELS)
                pair = rng.randrange(args.pairs)
                team, app = f"team-{pair % 20}", f"app-{pair}"
                read = rng.randrange(0, 2000)
                write = rng.randrange(0, 500) if provider == "anthropic" else 0
                data = {
                    "provider": provider,
                    "model": model,
                    "team": team,
                    "app": app,
                    "input_tokens": read + write + rng.randrange(10, 4000),
                    "cache_read_tokens": read,
                    "cache_write_tokens": write,
                    "output_tokens": rng.randrange(1, 1500),
                }
                when = day + timedelta(seconds=rng.randrange(86400))
                event = make_event(USAGE_TYPE, "/bench", data, event_id=f"u{i}", time=when)
                usage.append((f"{team}/{app}".encode(), encode(event)))
            gpus = []
            for i in range(args.gpu_samples):
                gpu = i % 16
                data = {
                    "node": f"node-{gpu // 8}",
                    "gpu": gpu % 8,
                    "uuid": f"GPU-{gpu:04d}",
                    "model": "NVIDIA H100 80GB HBM3",
                    "utilization_ratio": rng.choice([0.0, 0.25, 0.5, 0.95]),
                    "memory_used_bytes": 1 << 30,
                    "memory_total_bytes": 80 << 30,
                    "power_watts": 300.0,
                    "hourly_cost_usd": 4.5,
                    "interval_seconds": 15,
                    "namespace": "ml",
                    "pod": f"train-{gpu}",
                    "team": f"team-{gpu % 4}",
                }
                when = day + timedelta(seconds=(i // 16) * 86400 // (args.gpu_samples // 16 + 1))
                event = make_event(GPU_SAMPLE_TYPE, "/bench", data, event_id=f"g{i}", time=when)
                gpus.append((f"{data['node']}/{data['uuid']}".encode(), encode(event)))
            produce(bootstrap, usage_topic, usage)
            produce(bootstrap, gpu_topic, gpus)
            config = {
                "kafka": {
                    "bootstrap_servers": [bootstrap],
                    "topics": {
                        "usage": {"name": usage_topic, "partitions": 10, "retention_ms": 86400000},
                        "gpu": {"name": gpu_topic, "partitions": 10, "retention_ms": 86400000},
                    },
                },
                "currency": {"code": "GBP", "rates": [{"from": "2020-01-01", "rate": "0.7893"}]},
            }
            (work / "config.yml").write_text(yaml.safe_dump(config))
            out = io.StringIO()
            start = time.perf_counter()
            with contextlib.redirect_stdout(out):
                code = aifinops(
                    [
                        "focus",
                        "export",
                        "--config.file",
                        str(work / "config.yml"),
                        "--from",
                        day.date().isoformat(),
                        "--to",
                        (day + timedelta(days=1)).date().isoformat(),
                        "--out",
                        str(work / "out"),
                        "--format",
                        "csv",
                    ]
                )
            elapsed = time.perf_counter() - start
        finally:
            broker.stop()
        print(out.getvalue(), end="")
        if code != 0:
            print(f"export failed with exit code {code}", file=sys.stderr)
            return 1
        files = list((work / "out").glob("*.csv"))
        rows = sum(1 for _ in files[0].open()) - 1
        total = args.events + args.gpu_samples
        print(
            f"{total:,} events in {elapsed:.1f} s: {total / elapsed:,.0f} events/s; "
            f"{rows:,} rows, {files[0].stat().st_size / 1e6:.1f} MB CSV"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
