"""Issue 19, the HTTP surface of the real daemons: lengths and auth before the body, bounded
connections and threads under idle and stalled clients, long integers, per-token rate limits, and
TLS with basic auth (`--web.config.file`) scraped by a real Prometheus."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import http.client
import ipaddress
import json
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Callable
from pathlib import Path

import bcrypt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from aifinops.cli.demo.stack import Process, Prometheus, free_port, http_ok, wait_until
from aifinops.exporters.events import USAGE_TYPE, make_event
from support.bridge_daemon import BridgeDaemon, bridge_config
from support.token_daemon import BATCH, BIN, TokenDaemon

pytestmark = pytest.mark.integration

TOKEN = "team-ml-token"
CONFIG = f"""
tokens:
  auth:
    enabled: true
    tokens:
      - {{sha256: {hashlib.sha256(TOKEN.encode()).hexdigest()}, team: ml}}
  max_body_bytes: 314572800
  rate_limit: {{events_per_second: 0.5, burst: 5}}
web:
  max_connections: 50
  workers: 4
  read_timeout_seconds: 1
"""


def usage(event_id: str, **data: object) -> dict:
    fields = {"provider": "openai", "model": "gpt-4o", "team": "ml", "app": "chat"}
    return make_event(USAGE_TYPE, "it-gateway", {**fields, **data}, event_id=event_id)


@pytest.fixture
def daemon(tmp_path: Path, request: pytest.FixtureRequest) -> TokenDaemon:
    instance = TokenDaemon(tmp_path, CONFIG)
    instance.start()
    request.addfinalizer(instance.stop)
    return instance


def exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes, return what the daemon answers until it closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def post(daemon: TokenDaemon, body: bytes, token: str = TOKEN) -> tuple[int, dict, dict]:
    request = urllib.request.Request(
        f"{daemon.url}/v1/events",
        data=body,
        headers={"Content-Type": BATCH, "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, dict(resp.headers), json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read() or b"null")


@pytest.mark.parametrize("length", ["-1", "-400000000", "12abc"])
def test_a_negative_or_non_numeric_length_gets_400_unread(daemon: TokenDaemon, length: str):
    head = (
        f"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: {BATCH}\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Length: {length}\r\n\r\n"
    )
    answer = exchange(daemon.port, head.encode() + b"[]")
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert daemon.sample("aifinops_ingest_events_total", outcome="accepted") in (None, 0.0)


def test_a_bad_token_gets_401_before_a_200_mb_body_is_read(daemon: TokenDaemon):
    head = (
        f"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: {BATCH}\r\n"
        "Authorization: Bearer wrong\r\nContent-Length: 209715200\r\n\r\n"
    )
    # Only the headers go out: the 401 cannot have waited for (or read) the body.
    answer = exchange(daemon.port, head.encode())
    assert answer.startswith(b"HTTP/1.1 401 ")
    assert b"Connection: close" in answer


def test_an_integer_of_5000_digits_gets_400_naming_the_field(daemon: TokenDaemon):
    event = json.dumps(usage("long-int", input_tokens=1)).replace(
        '"input_tokens": 1', '"input_tokens": ' + "9" * 5000
    )
    status, _, body = post(daemon, f"[{event}]".encode())
    assert status == 400
    assert body[0]["index"] == 0
    assert body[0]["field"] == "data.input_tokens"
    assert "4300" in body[0]["reason"]
    daemon.process.check_alive()


def test_idle_connections_beyond_the_cap_hold_no_threads_and_scrapes_still_answer(
    daemon: TokenDaemon,
):
    pid = daemon.process.pid
    assert pid is not None
    daemon.metrics_text()
    before = threads_of(pid)
    idle = [socket.create_connection(("127.0.0.1", daemon.port), timeout=10) for _ in range(300)]
    try:
        for _ in range(3):
            assert "aifinops_http_connections" in daemon.metrics_text()
        assert threads_of(pid) <= before + 6  # at most the two pools filling up
        assert daemon.sample("aifinops_http_connections") <= 50
        assert daemon.sample("aifinops_http_connections_closed_total", reason="evicted") >= 250
    finally:
        for sock in idle:
            sock.close()


def test_stalled_bodies_hold_no_worker_and_are_cut_off(daemon: TokenDaemon):
    stalled = []
    for _ in range(8):  # twice the workers
        sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=10)
        sock.sendall(
            f"POST /v1/events HTTP/1.1\r\nContent-Type: {BATCH}\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Length: 1000\r\n\r\n[".encode()
        )
        stalled.append(sock)
    try:
        # No worker waits on a stalled body: a scrape and another client's post are answered.
        daemon.metrics_text()
        status, _, body = post(
            daemon, json.dumps([usage("beside-stall", input_tokens=5, output_tokens=1)]).encode()
        )
        assert status == 202, body
        for sock in stalled:
            assert sock.recv(100) == b""  # closed after web.read_timeout_seconds, unanswered
        assert daemon.sample("aifinops_http_connections_closed_total", reason="body_timeout") == 8
    finally:
        for sock in stalled:
            sock.close()


def test_a_token_over_its_rate_gets_429_with_retry_after(daemon: TokenDaemon):
    batch = [usage(f"rate-{i}", input_tokens=10, output_tokens=1) for i in range(5)]
    assert post(daemon, json.dumps(batch).encode())[0] == 202  # the burst
    status, headers, body = post(
        daemon, json.dumps([usage("rate-5", input_tokens=10, output_tokens=1)]).encode()
    )
    assert status == 429
    assert int(headers["Retry-After"]) >= 1
    assert "rate limit" in body["error"]
    assert daemon.sample("aifinops_ingest_rate_limited_events_total", team="ml") == 1
    assert daemon.sample("aifinops_llm_requests_total", team="ml") == 5  # nothing of it counted


def test_the_bridge_webhook_refuses_a_negative_length_unread(
    kafka_session_logs, topic_name, tmp_path
):
    topics = {"usage": topic_name("usage"), "gpu": topic_name("gpu")}
    bridge = BridgeDaemon(
        tmp_path / "bridge", bridge_config(kafka_session_logs.bootstrap, topics, tmp_path)
    )
    bridge.start(joined=False)
    try:
        head = b"POST /v1/alertmanager HTTP/1.1\r\nContent-Type: application/json\r\n"
        answer = exchange(bridge.port, head + b"Content-Length: -1\r\n\r\n{}")
        assert answer.startswith(b"HTTP/1.1 400 ")
        chunked = head + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
        assert exchange(bridge.port, chunked).startswith(b"HTTP/1.1 411 ")
    finally:
        bridge.stop()


# -- --web.config.file: TLS and basic auth ---------------------------------------------------


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aifinops-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


PASSWORD = "scrape-secret"


@pytest.fixture
def tls_daemon(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Process, int, Path]:
    cert, key = self_signed(tmp_path)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()
    web = tmp_path / "web.yml"
    web.write_text(
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n  min_version: TLS13\n"
        f"basic_auth_users:\n  prometheus: '{hashed}'\n"
    )
    port = free_port()
    process = Process(
        "token-exporter-tls",
        [str(BIN), f"--web.listen-address=127.0.0.1:{port}", f"--web.config.file={web}"],
        tmp_path,
    )
    process.start()
    request.addfinalizer(process.stop)
    context = ssl.create_default_context(cafile=str(cert))

    def healthy() -> bool:
        process.check_alive()
        try:
            with urllib.request.urlopen(
                f"https://127.0.0.1:{port}/-/healthy", timeout=2, context=context
            ) as resp:
                return resp.status == 200
        except OSError:
            return False

    wait_until(healthy, 30, "the TLS token exporter to serve")
    return process, port, cert


def test_tls_and_basic_auth_with_a_real_tls_client(tls_daemon):
    _, port, cert = tls_daemon
    context = ssl.create_default_context(cafile=str(cert))
    url = f"https://127.0.0.1:{port}/metrics"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=5, context=context)
    assert refused.value.code == 401
    assert refused.value.headers["WWW-Authenticate"].startswith("Basic")
    wrong = urllib.request.Request(url, headers={"Authorization": "Basic " + b64("prometheus:x")})
    with pytest.raises(urllib.error.HTTPError) as bad:
        urllib.request.urlopen(wrong, timeout=5, context=context)
    assert bad.value.code == 401
    good = urllib.request.Request(
        url, headers={"Authorization": "Basic " + b64(f"prometheus:{PASSWORD}")}
    )
    with urllib.request.urlopen(good, timeout=5, context=context) as resp:
        assert resp.status == 200
        assert b"aifinops_build_info" in resp.read()
    # Plain HTTP on the TLS port gets no answer; TLS 1.2 is refused by min_version TLS13.
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
        with contextlib.suppress(ConnectionResetError):
            answer = sock.recv(100)
    assert not answer.startswith(b"HTTP/1.1 200")
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.load_verify_locations(str(cert))
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises((ssl.SSLError, OSError)):
        urllib.request.urlopen(url, timeout=5, context=old)


def b64(text: str) -> str:
    return b64encode(text.encode()).decode()


def test_prometheus_scrapes_over_https_with_basic_auth(
    tls_daemon, prometheus_factory: Callable[..., Prometheus]
):
    _, port, cert = tls_daemon
    job = {
        "job_name": "token-exporter-tls",
        "scheme": "https",
        "scrape_interval": "1s",
        "tls_config": {"ca_file": str(cert)},
        "basic_auth": {"username": "prometheus", "password": PASSWORD},
        "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
    }
    wrong = {**job, "job_name": "wrong-password", "basic_auth": {"username": "prometheus"}}
    prometheus = prometheus_factory(scrape_configs=[job, wrong])

    def up(name: str) -> float | None:
        result = prometheus.api("query", query=f'up{{job="{name}"}}')["result"]
        return float(result[0]["value"][1]) if result else None

    wait_until(lambda: up("token-exporter-tls") == 1.0, 60, "Prometheus to scrape over HTTPS")
    wait_until(lambda: up("wrong-password") == 0.0, 60, "the unauthenticated scrape to fail")
    series = prometheus.api("query", query='aifinops_build_info{job="token-exporter-tls"}')
    assert series["result"]


def test_an_invalid_web_config_exits_2_listing_every_problem(tmp_path: Path):
    web = tmp_path / "web.yml"
    web.write_text(
        "tls_server_config:\n  cert_file: /nonexistent.crt\n  min_version: TLS9\n"
        "basic_auth_users:\n  admin: plaintext\nextra: 1\n"
    )
    result = subprocess.run(
        [str(BIN), "--web.listen-address=127.0.0.1:0", f"--web.config.file={web}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    for problem in (
        "extra: unknown key",
        "tls_server_config.cert_file: cannot read /nonexistent.crt",
        "tls_server_config.key_file: required",
        "tls_server_config.min_version: must be one of",
        "basic_auth_users.admin: must be a bcrypt hash",
    ):
        assert problem in result.stderr


def basic_get(
    port: int, path: str, password: str, source: str = "127.0.0.1"
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """`GET path` with basic credentials for `prometheus` from the loopback address `source`:
    the status, headers and body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    try:
        conn.request(
            "GET", path, headers={"Authorization": "Basic " + b64(f"prometheus:{password}")}
        )
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def test_a_flood_of_wrong_passwords_is_limited_while_the_right_one_keeps_scraping(tmp_path: Path):
    # Cost 10, as a real deployment would use: each uncached check is tens of ms of CPU.
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    daemon = TokenDaemon(tmp_path / "d", f"web: {{config_file: {str(web)!r}}}\n")
    daemon.process.start()
    try:
        wait_until(lambda: http_ok(f"{daemon.url}/-/ready"), 30, "the exporter to serve")
        assert basic_get(daemon.port, "/metrics", PASSWORD)[0] == 200  # remembered from now on
        started = time.monotonic()
        statuses: list[int] = []
        retry_after: set[str] = set()

        def flood(worker: int) -> None:
            for i in range(40):
                status, headers, _ = basic_get(daemon.port, "/metrics", f"guess-{worker}-{i}")
                statuses.append(status)
                if status == 429:
                    retry_after.add(headers["Retry-After"])

        threads = [threading.Thread(target=flood, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        scrapes = []
        while any(t.is_alive() for t in threads):
            scrapes.append(basic_get(daemon.port, "/metrics", PASSWORD)[0])
        for thread in threads:
            thread.join()
        # Many other addresses, 3 guesses each: together they get no more than the total budget.
        for host in range(2, 42):
            for i in range(3):
                statuses.append(basic_get(daemon.port, "/", f"x{i}", f"127.0.0.{host}")[0])
        elapsed = time.monotonic() - started

        assert set(statuses) <= {401, 429}
        checked = statuses.count(401)
        # Bursts of 10 per address and 20 in all, refilled at 1/s per address and 5/s in all.
        assert checked <= 20 + 5 * elapsed + 1
        assert statuses[:160].count(401) <= 10 + elapsed + 1
        assert len(statuses) == 280
        assert retry_after and all(int(value) >= 1 for value in retry_after)
        # The right password (remembered) and the probes were never refused meanwhile.
        assert scrapes and set(scrapes) == {200}
        assert http_ok(f"{daemon.url}/-/healthy")
        status, _, exposition = basic_get(daemon.port, "/metrics", PASSWORD)
        assert status == 200
        samples = {
            line.split()[0]: float(line.split()[1])
            for line in exposition.decode().splitlines()
            if line.startswith("aifinops_http_auth_refused_total{")
        }
        assert samples['aifinops_http_auth_refused_total{reason="invalid"}'] == checked
        assert samples['aifinops_http_auth_refused_total{reason="rate_limited"}'] == 280 - checked
    finally:
        daemon.stop()
