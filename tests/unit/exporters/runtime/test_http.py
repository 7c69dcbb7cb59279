"""The runtime HTTP server: built-in endpoints, routes, limits, content negotiation."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import threading
import time

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from aifinops.exporters.runtime.http import (
    AddressError,
    HTTPServer,
    Response,
    Route,
    ServerLimits,
    parse_address,
)
from aifinops.exporters.runtime.selfmetrics import CollectorHealth, SelfCollector


@pytest.fixture
def server():
    ready = {"value": True}
    health = CollectorHealth()
    health.record("test", False, 0.5)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SelfCollector(health, version="1.2.3"))

    def echo(request):
        return Response.json(202, {"len": len(request.body), "team": request.query.get("t")})

    srv = HTTPServer(
        "127.0.0.1:0",
        registry,
        routes=[Route("POST", "/v1/echo", echo, max_body_bytes=2048)],
        ready=lambda: ready["value"],
    )
    srv.start()
    srv.ready_flag = ready
    yield srv
    srv.stop()


def request(srv, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, data


def test_metrics_expose_build_info_and_collector_health(server):
    resp, body = request(server, "GET", "/metrics")
    assert resp.status == 200
    assert resp.getheader("Content-Type").startswith("text/plain; version=0.0.4")
    text = body.decode()
    assert 'aifinops_build_info{version="1.2.3"} 1.0' in text
    assert 'aifinops_collector_success{collector="test"} 0.0' in text
    assert 'aifinops_collector_duration_seconds{collector="test"} 0.5' in text


def test_metrics_negotiate_openmetrics_and_gzip(server):
    resp, body = request(
        server,
        "GET",
        "/metrics",
        headers={
            "Accept": "application/openmetrics-text; version=1.0.0",
            "Accept-Encoding": "gzip",
        },
    )
    assert resp.getheader("Content-Type").startswith("application/openmetrics-text")
    text = gzip.decompress(body).decode() if resp.getheader("Content-Encoding") else body.decode()
    assert text.endswith("# EOF\n")


def test_health_and_readiness(server):
    assert request(server, "GET", "/-/healthy")[0].status == 200
    assert request(server, "GET", "/-/ready")[0].status == 200
    server.ready_flag["value"] = False
    assert request(server, "GET", "/-/ready")[0].status == 503


def test_routes_limits_and_unknown_paths(server):
    resp, body = request(server, "POST", "/v1/echo?t=ml", body=b"x" * 100)
    assert resp.status == 202
    assert json.loads(body) == {"len": 100, "team": ["ml"]}
    resp, body = request(server, "POST", "/v1/echo", body=b"x" * 4096)
    assert resp.status == 413
    assert "exceeds the limit of 2048" in json.loads(body)["error"]
    assert request(server, "GET", "/v1/echo")[0].status == 405
    assert request(server, "POST", "/metrics", body=b"")[0].status == 405
    assert request(server, "GET", "/nope")[0].status == 404


def test_keep_alive_serves_several_requests_on_one_connection(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    for _ in range(3):
        conn.request("POST", "/v1/echo", body=b"abc")
        resp = conn.getresponse()
        assert resp.status == 202
        resp.read()
    conn.close()


@pytest.mark.parametrize(
    ("address", "expected"),
    [(":9872", ("0.0.0.0", 9872)), ("127.0.0.1:0", ("127.0.0.1", 0)), ("[::1]:80", ("::1", 80))],
)
def test_parse_address(address, expected):
    assert parse_address(address) == expected


@pytest.mark.parametrize("address", ["9872", "host:", "host:99999", "host:http"])
def test_parse_address_rejects_garbage(address):
    with pytest.raises(AddressError):
        parse_address(address)


# -- hardening: lengths, auth before the body, bounded connections and threads, timeouts ------


def make_server(**kwargs):
    """A server on loopback with an echo route (optionally guarded by `authorize`)."""
    registry = CollectorRegistry(auto_describe=False)
    authorize = kwargs.pop("authorize", None)
    max_body = kwargs.pop("max_body_bytes", 2048)

    def echo(request):
        return Response.json(202, {"len": len(request.body)})

    srv = HTTPServer(
        "127.0.0.1:0",
        registry,
        routes=[Route("POST", "/v1/echo", echo, max_body_bytes=max_body, authorize=authorize)],
        **kwargs,
    )
    registry.register(srv.collector())
    srv.start()
    return srv


@pytest.fixture
def hardened():
    started = []

    def factory(**kwargs):
        srv = make_server(**kwargs)
        started.append(srv)
        return srv

    yield factory
    for srv in started:
        srv.stop()


def raw(srv, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes on a fresh connection and return everything until the server closes it."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_until_closed(sock)


def read_until_closed(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def metric(srv, name: str, **labels: str) -> float:
    _, body = request(srv, "GET", "/metrics")
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    raise AssertionError(f"no sample {name}{labels}")


@pytest.mark.parametrize("length", [b"-1", b"-400000000", b"abc", b"1e3", b"+5", b" ", b"0x10"])
def test_a_negative_or_non_numeric_length_is_refused_before_reading(hardened, length):
    srv = hardened()
    # Only the headers are sent: the answer cannot depend on reading a body.
    answer = raw(
        srv, b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n"
    )
    assert status_of(answer) == 400
    assert b"Content-Length" in answer
    assert b"Connection: close" in answer


def test_conflicting_or_chunked_lengths_are_refused(hardened):
    srv = hardened()
    two = b"POST /v1/echo HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"
    assert status_of(raw(srv, two)) == 400
    chunked = b"POST /v1/echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    assert status_of(raw(srv, chunked)) == 411
    smuggle = (
        b"POST /v1/echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc"
    )
    assert status_of(raw(srv, smuggle)) == 400


def test_route_authorisation_runs_before_the_body_is_read(hardened):
    seen = []

    def authorize(headers):
        seen.append(headers.get("authorization"))
        if headers.get("authorization") != "Bearer good":
            return Response.json(401, {"error": "bad token"})
        return None

    srv = hardened(authorize=authorize, max_body_bytes=300 << 20)
    # 200 MB announced, not one byte of it sent: a 401 proves nothing waited for the body.
    answer = raw(
        srv,
        b"POST /v1/echo HTTP/1.1\r\nAuthorization: Bearer bad\r\nContent-Length: 209715200\r\n\r\n",
    )
    assert status_of(answer) == 401
    assert b"Connection: close" in answer
    assert seen == ["Bearer bad"]
    resp, body = request(srv, "POST", "/v1/echo", b"abc", {"Authorization": "Bearer good"})
    assert resp.status == 202
    assert json.loads(body) == {"len": 3}


def test_expect_100_continue_is_answered_after_the_checks(hardened):
    srv = hardened()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/echo HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"abc")
        assert b'{"len":3}' in sock.recv(1000)


def test_pipelined_requests_are_each_answered(hardened):
    srv = hardened()
    one = b"POST /v1/echo HTTP/1.1\r\nContent-Length: 2\r\n\r\nab"
    last = b"GET /-/healthy HTTP/1.1\r\nConnection: close\r\n\r\n"
    answer = raw(srv, one + one + last)
    assert answer.count(b"HTTP/1.1 202") == 2
    assert answer.count(b"HTTP/1.1 200") == 1


def test_oversized_request_line_and_headers(hardened):
    srv = hardened()
    assert status_of(raw(srv, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n")) == 414
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(200))
    assert status_of(raw(srv, b"GET /metrics HTTP/1.1\r\n" + headers + b"\r\n")) == 431
    assert status_of(raw(srv, b"BREW /pot HTTP/1.1\r\n\r\n")) == 501
    assert status_of(raw(srv, b"GET /metrics HTTP/2.0\r\n\r\n")) == 505
    assert status_of(raw(srv, b"GET /x HTTP/1.1\r\nBad Header: v\r\n\r\n")) == 400


def test_no_version_banner(hardened):
    srv = hardened()
    resp, _ = request(srv, "GET", "/-/healthy")
    assert resp.getheader("Server") is None
    assert resp.getheader("X-Content-Type-Options") == "nosniff"
    head, _ = request(srv, "HEAD", "/metrics")
    assert head.status == 200


def test_idle_connections_beyond_the_cap_cost_no_thread_and_scrapes_still_answer(hardened):
    srv = hardened(limits=ServerLimits(max_connections=20, workers=4, metrics_workers=1))
    request(srv, "GET", "/-/healthy")  # let the pools start their threads
    threads_before = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", srv.port), timeout=5) for _ in range(60)]
    try:
        for _ in range(3):
            resp, _body = request(srv, "GET", "/metrics")
            assert resp.status == 200
        assert metric(srv, "aifinops_http_connections") <= 20
        assert metric(srv, "aifinops_http_connections_closed_total", reason="evicted") >= 40
        assert threading.active_count() <= threads_before + 5
    finally:
        for sock in idle:
            sock.close()


def test_stalled_bodies_hold_no_worker_and_are_cut_off(hardened):
    limits = ServerLimits(workers=2, metrics_workers=1, read_timeout_seconds=1.0)
    srv = hardened(limits=limits)
    stalled = []
    for _ in range(4):  # more stalled bodies than workers
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        sock.sendall(b"POST /v1/echo HTTP/1.1\r\nContent-Length: 100\r\n\r\n0123456789")
        stalled.append(sock)
    try:
        # No worker waits on a stalled body: scrapes and other clients' posts are answered.
        assert request(srv, "GET", "/metrics")[0].status == 200
        assert request(srv, "POST", "/v1/echo", b"abc")[0].status == 202
        assert metric(srv, "aifinops_http_connections_closed_total", reason="body_timeout") == 0
        for sock in stalled:
            assert read_until_closed(sock) == b""  # closed by the server, not answered
        assert metric(srv, "aifinops_http_connections_closed_total", reason="body_timeout") == 4
    finally:
        for sock in stalled:
            sock.close()


def test_header_and_idle_timeouts_close_connections(hardened):
    limits = ServerLimits(header_timeout_seconds=0.5, idle_timeout_seconds=0.5)
    srv = hardened(limits=limits)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as slow:
        slow.sendall(b"GET /metrics HTTP/1.1\r\nX-Slow: ")  # and never the end of the headers
        assert read_until_closed(slow) == b""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request("GET", "/-/healthy")
    conn.getresponse().read()
    assert conn.sock.recv(10) == b""  # the idle keep-alive connection is closed
    conn.close()
    assert metric(srv, "aifinops_http_connections_closed_total", reason="header_timeout") == 1
    assert metric(srv, "aifinops_http_connections_closed_total", reason="idle_timeout") >= 1


def test_slow_bodies_beyond_the_buffer_bound_get_503(hardened):
    srv = hardened(limits=ServerLimits(max_pending_bodies=2, read_timeout_seconds=5))
    head = b"POST /v1/echo HTTP/1.1\r\nContent-Length: 100\r\n\r\n0123"
    slow = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(2)]
    try:
        for sock in slow:
            sock.sendall(head)
        time.sleep(0.5)  # both are being received by the loop now
        answer = raw(srv, head)
        assert status_of(answer) == 503
        assert b"Retry-After: 1" in answer
        slow[0].sendall(b"x" * 96)  # one completes and frees its place
        assert b'{"len":100}' in slow[0].recv(1000)
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as third:
            third.sendall(head)
            time.sleep(0.2)
            third.sendall(b"x" * 96)
            assert b'{"len":100}' in third.recv(1000)
    finally:
        for sock in slow:
            sock.close()
