"""The daemons' threaded single-process HTTP server: /metrics, /-/healthy, /-/ready and POST routes."""

from __future__ import annotations

import gzip
import json
import logging
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CollectorRegistry

from .exposition import render_metrics

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 1 << 20


class AddressError(ValueError):
    """A listen address that is not `HOST:PORT`."""


def parse_address(address: str) -> tuple[str, int]:
    """Split `HOST:PORT`, `:PORT` (all interfaces) or `[v6]:PORT` into a bindable pair."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise AddressError(f"listen address {address!r}: must be HOST:PORT")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port_text)


@dataclass(frozen=True)
class Request:
    """One HTTP request as a route handler sees it; header names are lower case."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    client: str


@dataclass
class Response:
    """What a route handler returns."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        """A JSON response."""
        return cls(
            status,
            json.dumps(payload, separators=(",", ":")).encode(),
            "application/json",
            headers or {},
        )

    @classmethod
    def text(cls, status: int, text: str) -> Response:
        """A plain-text response; a newline is added."""
        return cls(status, (text + "\n").encode())


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    """A POST or GET endpoint; bodies above `max_body_bytes` are refused with 413 unread."""

    method: str
    path: str
    handler: Handler
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


class HTTPServer:
    """Serves the registry and the routes on one address, one thread per connection."""

    def __init__(
        self,
        address: str,
        registry: CollectorRegistry,
        *,
        routes: list[Route] | None = None,
        ready: Callable[[], bool] = lambda: True,
        title: str = "aifinops",
    ) -> None:
        self._registry = registry
        self._ready = ready
        self._title = title
        self._routes = {(r.method, r.path): r for r in routes or ()}
        host, port = parse_address(address)
        handler = _make_handler(self)
        server_cls = _IPv6Server if ":" in host else _Server
        self._server = server_cls((host, port), handler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when the address asked for port 0)."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL of the server on loopback, for tests and logs."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="http", kwargs={"poll_interval": 0.2}
        )
        self._thread.daemon = True
        self._thread.start()
        log.info("listening on %s", self._server.server_address)

    def stop(self) -> None:
        """Stop accepting connections and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def dispatch(self, request: Request) -> Response:
        """Answer one request; the built-in endpoints first, then the registered routes."""
        if request.method == "GET":
            if request.path == "/metrics":
                body, content_type = render_metrics(
                    self._registry, request.headers.get("accept", "")
                )
                return Response(200, body, content_type)
            if request.path == "/-/healthy":
                return Response.text(200, f"{self._title} is Healthy.")
            if request.path == "/-/ready":
                if self._ready():
                    return Response.text(200, f"{self._title} is Ready.")
                return Response.text(503, "Service Unavailable")
            if request.path == "/":
                return Response(
                    200,
                    f"<html><head><title>{self._title}</title></head><body><h1>{self._title}</h1>"
                    '<p><a href="/metrics">Metrics</a></p></body></html>'.encode(),
                    "text/html; charset=utf-8",
                )
        route = self._routes.get((request.method, request.path))
        if route is not None:
            return route.handler(request)
        if any(path == request.path for _, path in self._routes) or request.path in (
            "/metrics",
            "/-/healthy",
            "/-/ready",
        ):
            return Response.text(405, "method not allowed")
        return Response.text(404, "not found")

    def route_for(self, method: str, path: str) -> Route | None:
        """The registered route for a method and path, if any."""
        return self._routes.get((method, path))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class _IPv6Server(_Server):
    address_family = socket.AF_INET6


def _make_handler(app: HTTPServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes; without TCP_NODELAY the body waits for
        # the peer's delayed ACK (about 40 ms) on every keep-alive request.
        disable_nagle_algorithm = True
        server_version = "aifinops"

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PUT(self) -> None:
            self._handle("PUT")

        def do_DELETE(self) -> None:
            self._handle("DELETE")

        def _handle(self, method: str) -> None:
            parts = urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            body = b""
            route = app.route_for(method, parts.path)
            if method in ("POST", "PUT"):
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    self._send(
                        Response.text(411, "a Content-Length header is required"), close=True
                    )
                    return
                try:
                    length = int(headers.get("content-length", "0"))
                except ValueError:
                    self._send(Response.text(400, "bad Content-Length"), close=True)
                    return
                limit = route.max_body_bytes if route else DEFAULT_MAX_BODY_BYTES
                if length > limit:
                    self._send(
                        Response.json(
                            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                            {"error": f"body of {length} bytes exceeds the limit of {limit}"},
                        ),
                        close=True,
                    )
                    return
                body = self.rfile.read(length) if length else b""
            request = Request(
                method=method,
                path=parts.path,
                query=parse_qs(parts.query),
                headers=headers,
                body=body,
                client=self.client_address[0],
            )
            try:
                response = app.dispatch(request)
            except Exception:
                log.exception("handler for %s %s failed", method, parts.path)
                response = Response.text(500, "internal error")
            self._send(response, gzip_ok="gzip" in headers.get("accept-encoding", ""))

        def _send(self, response: Response, *, close: bool = False, gzip_ok: bool = False) -> None:
            body = response.body
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            if gzip_ok and len(body) > 1024:
                body = gzip.compress(body, compresslevel=1)
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s %s", self.address_string(), format % args)

    return _Handler
