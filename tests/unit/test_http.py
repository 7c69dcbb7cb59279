"""The runtime HTTP server: built-in endpoints, routes, limits, content negotiation."""

from __future__ import annotations

import gzip
import http.client
import json

import pytest
from prometheus_client import CollectorRegistry

from aifinops.exporters.runtime.http import (
    AddressError,
    HTTPServer,
    Response,
    Route,
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
