"""HTTP ingest throughput of `aifinops-token-exporter`: batches of 100 usage events on loopback.

Starts the real daemon as its own process (Kafka off unless `--kafka HOST:PORT` is given), posts
pre-encoded `application/cloudevents-batch+json` batches over keep-alive connections from this
process, and prints events per second (target ≥ 20,000 for one process). The same calls then go
as OTLP/HTTP protobuf GenAI spans (`POST /v1/traces`, 100 spans a request) to a fresh exporter,
and their rate is printed beside the CloudEvents one (target ≥ 50 % of it). As the baseline, it also
prices the same events in-process with `genai_prices.calc_price` (what a naive exporter would call
per event) and with the cached rate cards the exporter uses, and prints the ratio.

    .venv/bin/python bench/ingest.py [--events 200000] [--batch 100] [--connections 4]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime

from genai_prices import Usage, calc_price

from aifinops.cli.demo.stack import free_port, http_ok, wait_until
from aifinops.exporters.events import USAGE_TYPE, make_event, parse_usage_event
from aifinops.exporters.pricing import Pricer

MODELS = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-sonnet-4-5"),
    ("gcp.gemini", "gemini-2.5-pro"),
    ("aws.bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0"),
    ("mistral_ai", "mistral-large-latest"),
]


def events(n: int, teams: int = 25, apps: int = 8) -> list[dict]:
    """`n` usage events with unique ids, spread over the models, `teams` teams and `apps` apps
    (event i has its own label set as long as i < len(MODELS) * teams * apps)."""
    run = uuid.uuid4().hex[:8]
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        provider, model = MODELS[i % len(MODELS)]
        data = {
            "provider": provider,
            "model": model,
            "team": f"team-{i // len(MODELS) % teams}",
            "app": f"app-{i // (len(MODELS) * teams) % apps}",
            "input_tokens": 1_000 + i % 5_000,
            "cache_read_tokens": i % 700,
            "cache_write_tokens": i % 3 * 100,
            "output_tokens": 150 + i % 400,
            "reasoning_tokens": i % 50,
        }
        out.append(make_event(USAGE_TYPE, f"bench-{run}", data, event_id=str(i), time=now))
    return out


def start_exporter(port: int, kafka: str | None) -> subprocess.Popen:
    code = "from aifinops.cli.token_exporter import main; raise SystemExit(main())"
    argv = [sys.executable, "-c", code, "--web.listen-address", f"127.0.0.1:{port}"]
    argv += ["--log.level", "warn"]
    if kafka:
        argv += ["--kafka.bootstrap-servers", kafka]
    env = {**os.environ, "AIFINOPS_LLM_CARDINALITY_MAX_VALUES": "5000"}
    process = subprocess.Popen(argv, env=env)
    wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/-/ready"), 30, "the token exporter")
    return process


def otlp_bodies(all_events: list[dict], batch: int) -> list[bytes]:
    """The events as OTLP protobuf requests of `batch` GenAI spans, each with the attributes
    openai-v2 and the GenAI conventions set (plus a few a real span carries)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    def kv(key: str, value: object) -> KeyValue:
        if isinstance(value, int):
            return KeyValue(key=key, value=AnyValue(int_value=value))
        return KeyValue(key=key, value=AnyValue(string_value=str(value)))

    now = time.time_ns()
    bodies = []
    for start in range(0, len(all_events), batch):
        request = ExportTraceServiceRequest()
        chunk = all_events[start : start + batch]
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.extend(
            [kv("service.name", chunk[0]["data"]["app"]), kv("telemetry.sdk.language", "python")]
        )
        scope_spans = resource_spans.scope_spans.add()
        scope_spans.scope.name = "opentelemetry.instrumentation.openai_v2"
        for event in chunk:
            data = event["data"]
            span = scope_spans.spans.add(
                trace_id=uuid.uuid4().bytes,
                span_id=uuid.uuid4().bytes[:8],
                name=f"chat {data['model']}",
                kind=3,
                start_time_unix_nano=now - 1_000_000_000,
                end_time_unix_nano=now,
            )
            span.attributes.extend(
                [
                    kv("gen_ai.operation.name", "chat"),
                    kv("gen_ai.provider.name", data["provider"]),
                    kv("gen_ai.request.model", data["model"]),
                    kv("gen_ai.response.model", data["model"]),
                    kv("gen_ai.response.id", f"{event['source']}-{event['id']}"),
                    kv("gen_ai.usage.input_tokens", data["input_tokens"]),
                    kv("gen_ai.usage.cache_read.input_tokens", data["cache_read_tokens"]),
                    kv("gen_ai.usage.cache_creation.input_tokens", data["cache_write_tokens"]),
                    kv("gen_ai.usage.output_tokens", data["output_tokens"]),
                    kv("gen_ai.usage.reasoning.output_tokens", data["reasoning_tokens"]),
                    kv("aifinops.team", data["team"]),
                    kv("server.address", "api.example.com"),
                    kv("server.port", 443),
                ]
            )
        bodies.append(request.SerializeToString())
    return bodies


def post_all(
    port: int,
    bodies: list[bytes],
    connections: int,
    path: str = "/v1/events",
    content_type: str = "application/cloudevents-batch+json",
    ok: int = 202,
) -> float:
    queue = list(reversed(bodies))
    lock = threading.Lock()
    errors: list[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Content-Type": content_type}
        while True:
            with lock:
                if not queue:
                    break
                body = queue.pop()
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
            if resp.status != ok:
                errors.append(f"{resp.status} {payload[:200]!r}")
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, first: {errors[0]}")
    return elapsed


def server_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pricing_baseline(sample: list[dict]) -> tuple[float, float]:
    """Events per second priced by `calc_price` and by the cached rate cards (in-process)."""
    usages = [parse_usage_event(e).usage for e in sample]
    now = datetime.now(UTC)
    start = time.perf_counter()
    for u in usages:
        calc_price(
            Usage(**u.usage), u.model, provider_id=u.prices_provider, genai_request_timestamp=now
        )
    stock = len(usages) / (time.perf_counter() - start)
    pricer = Pricer()
    for u in usages[:50]:
        pricer.price(u, now)
    start = time.perf_counter()
    for u in usages:
        pricer.price(u, now)
    cached = len(usages) / (time.perf_counter() - start)
    return stock, cached


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--kafka", metavar="HOST:PORT", help="also publish to this Kafka")
    args = parser.parse_args()

    all_events = events(args.events)
    bodies = [
        json.dumps(all_events[i : i + args.batch], separators=(",", ":")).encode()
        for i in range(0, len(all_events), args.batch)
    ]
    port = free_port()
    process = start_exporter(port, args.kafka)
    try:
        # Warm up: the first call of each model resolves and compiles its prices.
        warm = json.dumps(events(len(MODELS) * 10)).encode()
        post_all(port, [warm], 1)
        cpu_before = server_cpu_seconds(process.pid)
        elapsed = post_all(port, bodies, args.connections)
        cpu = server_cpu_seconds(process.pid) - cpu_before
        with open(f"/proc/{process.pid}/status") as f:
            rss = next(line for line in f if line.startswith("VmHWM")).split()[1]
    finally:
        process.terminate()
        process.wait(timeout=30)
    # The same calls as OTLP spans, to a fresh exporter (nothing deduplicated across the runs).
    spans = otlp_bodies(all_events, args.batch)
    port = free_port()
    process = start_exporter(port, args.kafka)
    try:
        protobuf = "application/x-protobuf"
        post_all(port, otlp_bodies(events(len(MODELS) * 10), 100), 1, "/v1/traces", protobuf, 200)
        otlp_cpu_before = server_cpu_seconds(process.pid)
        otlp_elapsed = post_all(port, spans, args.connections, "/v1/traces", protobuf, 200)
        otlp_cpu = server_cpu_seconds(process.pid) - otlp_cpu_before
    finally:
        process.terminate()
        process.wait(timeout=30)
    rate = args.events / elapsed
    otlp_rate = args.events / otlp_elapsed
    print(
        f"HTTP ingest: {args.events} events in {len(bodies)} batches of {args.batch} over "
        f"{args.connections} connections: {elapsed:.2f} s, {rate:,.0f} events/s (target >= 20,000)"
    )
    print(
        f"exporter process: {cpu:.2f} CPU s ({cpu / args.events * 1e6:.1f} us/event), "
        f"peak RSS {int(rss) / 1024:.0f} MB; Kafka {'on: ' + args.kafka if args.kafka else 'off'}"
    )
    print(
        f"OTLP spans: {args.events} spans in {len(spans)} protobuf requests of {args.batch}: "
        f"{otlp_elapsed:.2f} s, {otlp_rate:,.0f} events/s = {otlp_rate / rate:.0%} of the "
        f"CloudEvents rate (target >= 50 %); {otlp_cpu / args.events * 1e6:.1f} us/event"
    )
    stock, cached = pricing_baseline(all_events[:5_000])
    print(
        f"pricing alone, in-process: calc_price {stock:,.0f} events/s (baseline), "
        f"cached rate cards {cached:,.0f} events/s ({cached / stock:.0f}x)"
    )
    print(
        f"bench client peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


if __name__ == "__main__":
    main()
