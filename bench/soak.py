"""Soak: the token exporter, the bridge and a broker under load for a while, nothing lost or unbounded.

Starts a Tansu broker, `aifinops-token-exporter` publishing to it (cluster `edge`) and
`aifinops-bridge` consuming it (cluster `central`), all on loopback. Then, for `--duration`
seconds, `--clients` clients post batches of `--batch` usage events with unique ids over keep-alive
connections (a 503 or 429 is retried with the same events after its `Retry-After`, as a gateway
does), `--idle` more connections are held open without sending a byte, and the broker is paused
twice (SIGSTOP for `--pause` seconds, then SIGCONT, at a third and two thirds of the run). Both
daemons' `/metrics` are scraped every second and every process's resident memory sampled.

Afterwards it waits for the bridge to catch up and prints: events sent, accepted (from the 202
answers and from the exporter's own counter), counted by the bridge (all equal when nothing was
lost), the 503/429 answers retried, the peak and final resident memory of each process, the
slowest `/metrics` scrape of each daemon, and how many idle connections the exporter kept. With
`--tracemalloc`, the daemons run under `bench/traced_daemon.py` and their memory by source file
at the end is printed too (the split; their RSS is then inflated by the tracing).

    .venv/bin/python bench/soak.py [--duration 600] [--clients 50] [--idle 1000] [--pause 15]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from prometheus_client.parser import text_string_to_metric_families

from aifinops.cli.demo.stack import KafkaBroker, free_port, http_ok, wait_until
from aifinops.exporters.events import USAGE_TYPE, make_event

BIN = Path(sys.executable).parent
PARTITIONS = 10
BATCH_TYPE = "application/cloudevents-batch+json"


@dataclass
class Totals:
    """What the clients saw, under a lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    refused_503: int = 0
    limited_429: int = 0
    errors: int = 0
    unfinished: int = 0


@dataclass
class Watch:
    """Peak and latest resident memory per process, slowest scrape per daemon."""

    rss_peak: dict[str, float] = field(default_factory=dict)
    rss_last: dict[str, float] = field(default_factory=dict)
    slowest: dict[str, float] = field(default_factory=dict)
    failed_scrapes: dict[str, int] = field(default_factory=dict)


def rss_mb(pid: int) -> tuple[float, float]:
    """(peak, current) resident memory of `pid` in MB, from /proc."""
    fields: dict[str, list[str]] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.split()
    return int(fields["VmHWM"][0]) / 1024, int(fields["VmRSS"][0]) / 1024


def scrape(url: str) -> tuple[float, str]:
    start = time.perf_counter()
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as resp:
        text = resp.read().decode()
    return time.perf_counter() - start, text


def total(text: str, name: str, **labels: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def start_daemon(
    name: str, workdir: Path, config: dict[str, Any], env: dict[str, str], traced: bool = False
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `aifinops-<name>` with `config`; with `traced`, under `bench/traced_daemon.py`,
    which starts tracing on SIGUSR1 and writes its memory by source file to
    `workdir/tracemalloc.txt` on SIGUSR2."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "aifinops.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = open(workdir / f"{name}.log", "wb")  # noqa: SIM115 - the child owns it
    command = [str(BIN / f"aifinops-{name}")]
    if traced:
        module = f"aifinops.cli.{name.replace('-', '_')}"
        command = [
            sys.executable,
            str(Path(__file__).with_name("traced_daemon.py")),
            str(workdir / "tracemalloc.txt"),
            module,
        ]
    proc = subprocess.Popen(
        [
            *command,
            f"--config.file={workdir / 'aifinops.yml'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: http_ok(f"{url}/-/ready"), 60, f"the {name}")
    return proc, url


def client(
    port: int, index: int, batch: int, deadline: float, stop: threading.Event, totals: Totals
) -> None:
    """Post batches of fresh events until the deadline; retry a refused batch until accepted."""
    run = uuid.uuid4().hex[:6]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    seq = 0
    while time.monotonic() < deadline and not stop.is_set():
        events = [
            make_event(
                USAGE_TYPE,
                f"soak-{run}",
                {
                    "provider": "openai",
                    "model": "gpt-4o",
                    "team": f"team-{index % 10}",
                    "app": f"app-{(seq + i) % 5}",
                    "input_tokens": 1000 + i,
                    "output_tokens": 100,
                },
                event_id=f"{index}-{seq + i}",
            )
            for i in range(batch)
        ]
        seq += batch
        body = json.dumps(events).encode()
        with totals.lock:
            totals.sent += batch
        give_up = time.monotonic() + 120  # a batch in hand is retried past the deadline
        while True:
            try:
                conn.request("POST", "/v1/events", body=body, headers={"Content-Type": BATCH_TYPE})
                resp = conn.getresponse()
                payload = resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                with totals.lock:
                    totals.errors += 1
                status, payload = 0, b""
            if status == 202:
                answer = json.loads(payload)
                with totals.lock:
                    totals.accepted += answer["accepted"]
                    totals.duplicates += answer["duplicates"]
                break
            with totals.lock:
                if status == 503:
                    totals.refused_503 += 1
                elif status == 429:
                    totals.limited_429 += 1
                elif status != 0:
                    totals.errors += 1
            if time.monotonic() > give_up:
                with totals.lock:
                    totals.unfinished += batch
                break
            retry_after = resp.getheader("Retry-After") if status in (503, 429) else None
            time.sleep(min(float(retry_after or 0.2), 2.0))
    conn.close()


def hold_idle(port: int, n: int) -> list[socket.socket]:
    """`n` connections that never send a byte."""
    out = []
    for _ in range(n):
        try:
            out.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            break
    return out


def still_open(sockets: list[socket.socket]) -> int:
    """How many of `sockets` the server has not closed."""
    n = 0
    for s in sockets:
        s.setblocking(False)
        try:
            n += s.recv(1) != b""
        except BlockingIOError:
            n += 1
        except OSError:
            pass
    return n


def watch(pids: dict[str, int], urls: dict[str, str], state: Watch, stop: threading.Event) -> None:
    """Every second: resident memory of each process, a timed scrape of each daemon."""
    while not stop.wait(1.0):
        for name, pid in pids.items():
            with contextlib.suppress(OSError):
                peak, now = rss_mb(pid)
                state.rss_peak[name] = max(state.rss_peak.get(name, 0.0), peak)
                state.rss_last[name] = now
        for name, url in urls.items():
            try:
                seconds, _ = scrape(url)
            except OSError:
                state.failed_scrapes[name] = state.failed_scrapes.get(name, 0) + 1
                continue
            state.slowest[name] = max(state.slowest.get(name, 0.0), seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--batch", type=int, default=100, help="events per request")
    parser.add_argument("--idle", type=int, default=1000, help="idle connections held open")
    parser.add_argument("--pause", type=float, default=15.0, help="seconds per broker pause")
    parser.add_argument("--drain", type=float, default=300.0, help="seconds to wait for the bridge")
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="run the daemons under tracemalloc and print their memory by source file at the "
        "end (slower; their RSS then includes the tracing's own)",
    )
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = args.idle + args.clients + 512
    if soft < wanted:  # the daemons inherit it
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(wanted, soft)), hard))

    work = Path(tempfile.mkdtemp(prefix="aifinops-soak-"))
    broker = KafkaBroker(work / "kafka")
    broker.start()
    procs: list[subprocess.Popen[bytes]] = []
    memory_split: dict[str, str] = {}
    baseline: dict[str, float] = {}
    try:
        topic = f"soak-usage-{uuid.uuid4().hex[:8]}"
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        admin.create_topics(
            [
                NewTopic(topic, PARTITIONS, 1),
                NewTopic(f"{topic}-gpu", PARTITIONS, 1),
                NewTopic(f"{topic}.dlq", 1, 1),
            ]
        )
        admin.close()
        topics = {"usage": {"name": topic}, "gpu": {"name": f"{topic}-gpu"}}
        kafka = {"bootstrap_servers": [broker.bootstrap], "topics": topics}
        env = dict(os.environ)
        exporter, exporter_url = start_daemon(
            "token-exporter",
            work / "exporter",
            {
                "cluster": "edge",
                "kafka": kafka,
                "producer": {"spool_dir": str(work / "spool")},
                "tokens": {"max_batch_events": max(1000, args.batch)},
            },
            env,
            args.tracemalloc,
        )
        procs.append(exporter)
        bridge, bridge_url = start_daemon(
            "bridge",
            work / "bridge",
            {
                "cluster": "central",
                "kafka": kafka,
                "bridge": {
                    "group_id": f"soak-{uuid.uuid4().hex[:8]}",
                    "state_dir": str(work / "state"),
                    "max_poll_interval_ms": 5000,
                    "session_timeout_ms": 6000,
                    "heartbeat_interval_ms": 1000,
                },
            },
            env,
            args.tracemalloc,
        )
        procs.append(bridge)
        port = int(exporter_url.rsplit(":", 1)[1])
        assert broker.process is not None and broker.process.pid is not None
        broker_pid = broker.process.pid
        pids = {"token-exporter": exporter.pid, "bridge": bridge.pid, "broker": broker_pid}
        if args.tracemalloc:
            for name in ("token-exporter", "bridge"):
                baseline[name] = rss_mb(pids[name])[1]
                os.kill(pids[name], signal.SIGUSR1)
        state = Watch()
        stop = threading.Event()
        watcher = threading.Thread(
            target=watch,
            args=(pids, {"token-exporter": exporter_url, "bridge": bridge_url}, state, stop),
            daemon=True,
        )
        watcher.start()
        idle = hold_idle(port, args.idle)
        print(
            f"holding {len(idle)} idle connections; {args.clients} clients for {args.duration:g} s"
        )

        totals = Totals()
        begin = time.monotonic()
        deadline = begin + args.duration
        threads = [
            threading.Thread(
                target=client, args=(port, i, args.batch, deadline, stop, totals), daemon=True
            )
            for i in range(args.clients)
        ]
        for t in threads:
            t.start()
        for fraction in (1 / 3, 2 / 3):
            time.sleep(max(0.0, begin + args.duration * fraction - time.monotonic()))
            os.kill(broker_pid, signal.SIGSTOP)
            print(f"t={time.monotonic() - begin:5.0f}s broker paused for {args.pause:g} s")
            time.sleep(args.pause)
            os.kill(broker_pid, signal.SIGCONT)
        for t in threads:
            t.join()
        load_seconds = time.monotonic() - begin
        kept = still_open(idle)

        _, text = scrape(exporter_url)
        exporter_accepted = total(
            text, "aifinops_ingest_events_total", source="http", outcome="accepted"
        )
        drain_deadline = time.monotonic() + args.drain
        counted = 0.0
        while time.monotonic() < drain_deadline:
            _, text = scrape(bridge_url)
            counted = total(text, "aifinops_llm_requests_total")
            if counted >= exporter_accepted:
                break
            time.sleep(1.0)
        drained = time.monotonic() - begin - load_seconds
        time.sleep(1.5)  # one more sample of every process after the drain
        stop.set()
        watcher.join()
        _, text = scrape(exporter_url)
        dropped = total(text, "aifinops_bridge_dropped_messages_total")
        if args.tracemalloc:
            splits = {"token-exporter": exporter, "bridge": bridge}
            for daemon in splits.values():
                daemon.send_signal(signal.SIGUSR2)
            for name in splits:
                dumped = (
                    work / ("exporter" if name == "token-exporter" else name) / "tracemalloc.txt"
                )
                wait_until(dumped.exists, 120, f"the {name}'s tracemalloc summary")
                time.sleep(1.0)  # written whole
                memory_split[name] = dumped.read_text()
        for s in idle:
            s.close()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(30)
        broker.stop()

    equal = totals.accepted == exporter_accepted == counted == totals.sent - totals.unfinished
    print(f"load: {load_seconds:.0f} s, {args.clients} clients, batches of {args.batch}")
    print(f"events sent:                         {totals.sent:,}")
    print(f"events accepted (202 answers):       {totals.accepted:,}")
    print(f"events accepted (exporter counter):  {exporter_accepted:,.0f}")
    print(f"events counted by the bridge:        {counted:,.0f}  (caught up {drained:.0f} s after)")
    print(f"equal: {'yes' if equal else 'NO'}; dropped by the producer: {dropped:,.0f}")
    print(
        f"retried answers: 503 {totals.refused_503:,}, 429 {totals.limited_429:,}; "
        f"errors {totals.errors:,}; unfinished events {totals.unfinished:,}"
    )
    print(f"idle connections still open at the end: {kept} of {len(idle)}")
    for name in ("token-exporter", "bridge", "broker"):
        print(
            f"{name:15s} RSS peak {state.rss_peak.get(name, 0):6.0f} MB, "
            f"final {state.rss_last.get(name, 0):6.0f} MB"
        )
    for name in ("token-exporter", "bridge"):
        print(
            f"{name:15s} slowest /metrics scrape {state.slowest.get(name, 0) * 1000:7.0f} ms"
            f" ({state.failed_scrapes.get(name, 0)} failed)"
        )
    for name, summary in memory_split.items():
        print(
            f"{name}: {baseline[name]:.0f} MB resident when the load began; then, by source file "
            "(tracemalloc):"
        )
        print(summary, end="")
    if not equal:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
