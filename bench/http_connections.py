"""Idle and stalled connections against the real token exporter: RSS, threads, and scrape time.

Starts `aifinops-token-exporter` (loopback, default config unless `--max-connections` is given),
opens `--idle` connections that send nothing (header and idle timeouts set to 10 minutes, so
they are held rather than closed after `web.header_timeout_seconds`) (as a connection flood or a pool of idle keep-alive
clients would), and prints, before and with them held open: the daemon's RSS and thread count,
the open connections it reports (`aifinops_http_connections`) and how long a `/metrics` scrape
took. Then `--stalled` requests that announce a body and stop sending, and when the daemon cut
them off (`web.read_timeout_seconds`, 30 s by default; `--read-timeout` shortens it).

For comparison, `--baseline` runs `--baseline-idle` idle connections against the design this
server replaced: the standard library's `ThreadingHTTPServer`, one thread per connection, in a
child process of its own.

    .venv/bin/python bench/http_connections.py [--idle 8000] [--max-connections 512]
        [--stalled 32] [--read-timeout 5] [--nofile 1024] [--baseline [--baseline-idle 300]]
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from aifinops.cli.demo.stack import free_port, wait_until

BIN = Path(sys.executable).parent / "aifinops-token-exporter"
BASELINE = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = b"up 1\\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
server.daemon_threads = True
server.request_queue_size = 4096
server.serve_forever()
"""


def status(pid: int) -> tuple[float, int]:
    """RSS in MiB and thread count of a process."""
    rss, threads = 0.0, 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    return rss, threads


def cpu_percent(pid: int, seconds: float = 2.0) -> float:
    """CPU the process used over `seconds`, in percent of one core (a spinning loop shows 100)."""

    def ticks() -> int:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    start = ticks()
    time.sleep(seconds)
    return (ticks() - start) / os.sysconf("SC_CLK_TCK") / seconds * 100


def scrape(url: str) -> tuple[float, str]:
    """Seconds a GET took, and the body."""
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as resp:
        body = resp.read().decode()
    return time.perf_counter() - start, body


def sample(body: str, name: str) -> str:
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return line.rsplit(" ", 1)[1]
    return "-"


def open_idle(port: int, n: int) -> list[socket.socket]:
    sockets = []
    for _ in range(n):
        try:
            sockets.append(socket.create_connection(("127.0.0.1", port), timeout=30))
        except OSError as exc:
            print(f"  connect {len(sockets) + 1} failed: {exc}")
            break
    time.sleep(2.0)  # let the server accept (and, for the baseline, start its threads)
    return sockets


def report(label: str, pid: int, url: str, metrics: bool) -> None:
    cpu = cpu_percent(pid)
    rss, threads = status(pid)
    seconds, body = scrape(url)
    extra = ""
    if metrics:
        evicted = sample(body, 'aifinops_http_connections_closed_total{reason="evicted"}')
        extra = f", open {sample(body, 'aifinops_http_connections')}, evicted {evicted}"
    print(
        f"  {label:<28} RSS {rss:6.1f} MiB, threads {threads:4d}, idle CPU {cpu:5.1f} %, "
        f"scrape {seconds * 1000:6.1f} ms{extra}"
    )


def run_daemon(args: argparse.Namespace, workdir: Path) -> None:
    port = free_port()
    config = workdir / "aifinops.yml"
    # Long header and idle timeouts, so the idle connections are held rather than timed out.
    web = [
        f"  read_timeout_seconds: {args.read_timeout}",
        "  header_timeout_seconds: 600",
        "  idle_timeout_seconds: 600",
    ]
    if args.max_connections:
        web.append(f"  max_connections: {args.max_connections}")
    config.write_text("web:\n" + "\n".join(web) + "\n")
    log = (workdir / "daemon.log").open("w")
    command = [str(BIN), f"--web.listen-address=127.0.0.1:{port}", f"--config.file={config}"]
    if args.nofile:
        # A hard limit the daemon cannot raise: web.max_connections is lowered to fit under it.
        command = ["prlimit", f"--nofile={args.nofile}:{args.nofile}", "--", *command]
    process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        wait_until(lambda: _up(url), 60, "the token exporter")
        limit = f", open-file limit {args.nofile}" if args.nofile else ""
        print(
            f"aifinops-token-exporter (web.max_connections {args.max_connections or 512}{limit}):"
        )
        report("no client", process.pid, url, True)
        idle = open_idle(port, args.idle)
        settled(url)
        report(f"{len(idle)} idle connections", process.pid, url, True)
        stalled = []
        for _ in range(args.stalled):
            sock = socket.create_connection(("127.0.0.1", port), timeout=120)
            sock.sendall(b"POST /v1/events HTTP/1.1\r\nContent-Length: 100000\r\n\r\n[")
            stalled.append(sock)
        start = time.monotonic()
        report(f"+ {args.stalled} stalled bodies", process.pid, url, True)
        for sock in stalled:
            sock.recv(1)
        print(f"  stalled bodies cut off after {time.monotonic() - start:.1f} s")
        for sock in idle + stalled:
            sock.close()
        time.sleep(1.0)
        report("all closed", process.pid, url, True)
    finally:
        process.terminate()
        process.wait(10)


def settled(url: str, timeout: float = 20.0) -> None:
    """Wait until the daemon's open-connection count stops rising (accepting lags connecting
    by the listen backlog's retries)."""
    last, deadline = "", time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = sample(scrape(url)[1], "aifinops_http_connections")
        if now == last:
            return
        last = now
        time.sleep(1.0)


def run_baseline(args: argparse.Namespace) -> None:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", BASELINE, str(port)])
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until(lambda: _up(url), 30, "the baseline server")
        print("baseline: stdlib ThreadingHTTPServer, one thread per connection:")
        report("no client", process.pid, url, False)
        idle = open_idle(port, args.baseline_idle)
        report(f"{len(idle)} idle connections", process.pid, url, False)
        for sock in idle:
            sock.close()
    finally:
        process.terminate()
        process.wait(10)


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--idle", type=int, default=8000)
    parser.add_argument("--max-connections", type=int, default=0)
    parser.add_argument("--stalled", type=int, default=32)
    parser.add_argument("--read-timeout", type=float, default=5.0)
    parser.add_argument("--nofile", type=int, default=0, help="the daemon's open-file limit")
    parser.add_argument("--baseline", action="store_true")
    # Each connection costs the baseline a thread started on accept; here that takes about
    # 0.15 s each on 2 busy cores, so it holds fewer.
    parser.add_argument("--baseline-idle", type=int, default=300)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = args.idle + args.stalled + 256
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))
    print(f"open-file limit: {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        run_daemon(args, Path(tmp))
    if args.baseline:
        run_baseline(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
