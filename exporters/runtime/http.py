"""The daemons' HTTP/1.1 server: /metrics, /-/healthy, /-/ready and POST routes, with bounded resources.

One event-loop thread owns every connection that is not being answered: it accepts (up to
`max_connections`, evicting the longest-waiting idle connection when full), completes TLS
handshakes, and reads request headers without blocking, each under its deadline. A connection
whose headers are complete goes to a bounded worker pool, which checks the request (lengths,
basic auth, the route's own authorisation) *before* reading any body, reads the body under a
deadline, answers, and hands a keep-alive connection back to the loop. `GET /metrics` and the
health endpoints run on a small pool of their own, so a flood of ingest requests or stalled bodies
never keeps Prometheus from scraping. Idle connections cost a socket and a few hundred bytes,
never a thread.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import json
import logging
import math
import re
import selectors
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .exposition import render_metrics
from .webconfig import (
    UNAUTHENTICATED_PATHS,
    BasicAuth,
    TLSContextSource,
    WebSecurity,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 1 << 20
# Descriptors left free below the count at which accept first failed.
_FD_HEADROOM = 16
# How long a worker waits for a body before leaving it to the event loop.
_BODY_GRACE_SECONDS = 0.05
_PRIORITY_PATHS = frozenset({"/metrics", "/-/healthy", "/-/ready"})
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE"})
_CONTENT_LENGTH = re.compile(rb"^[0-9]{1,18}$")
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Why the server closed connections: the label values of aifinops_http_connections_closed_total.
CLOSE_REASONS = (
    "idle_timeout",
    "header_timeout",
    "body_timeout",
    "evicted",
    "over_capacity",
    "tls_error",
    "busy",
)


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
# Looks at the headers of a request before its body is read: None to go on, or the refusal.
Authorize = Callable[[Mapping[str, str]], "Response | None"]


@dataclass(frozen=True)
class Route:
    """A POST or GET endpoint; bodies above `max_body_bytes` are refused with 413 unread.

    `authorize`, when set, sees the headers before the body is read, so a request without valid
    credentials is refused without reading (or buffering) what it sends.
    """

    method: str
    path: str
    handler: Handler
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    authorize: Authorize | None = None


@dataclass(frozen=True)
class ServerLimits:
    """Connection, worker, size and time limits of the server (config section `web`)."""

    max_connections: int = 512
    workers: int = 16
    metrics_workers: int = 2
    header_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 30.0
    idle_timeout_seconds: float = 60.0
    max_request_line_bytes: int = 8192
    max_header_bytes: int = 16384
    # Slow bodies the event loop buffers at once (each up to its route's limit); more get 503.
    max_pending_bodies: int = 64


class _Stats:
    """Counts the server keeps about its connections, read by `HTTPCollector`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.closed = dict.fromkeys(CLOSE_REASONS, 0)
        self.accepted = 0
        self.open = 0
        self.accept_errors = 0
        self.cap = 0

    def close(self, reason: str) -> None:
        with self.lock:
            self.closed[reason] += 1


class HTTPCollector(Collector):
    """`aifinops_http_*`: open connections, the cap, and why connections were closed.

    # TYPE aifinops_http_connections gauge
    aifinops_http_connections 3
    """

    def __init__(self, stats: _Stats, limits: ServerLimits, auth: BasicAuth | None = None) -> None:
        self._stats = stats
        self._limits = limits
        self._auth = auth

    def collect(self) -> Iterable[Metric]:
        """Connection gauges and counters."""
        with self._stats.lock:
            closed = dict(self._stats.closed)
            accepted, open_, errors, cap = (
                self._stats.accepted,
                self._stats.open,
                self._stats.accept_errors,
                self._stats.cap,
            )
        yield GaugeMetricFamily(
            "aifinops_http_connections", "Open HTTP connections (idle and in use).", value=open_
        )
        yield GaugeMetricFamily(
            "aifinops_http_connections_limit",
            "The most HTTP connections the server keeps open: web.max_connections, or fewer "
            "once accepting failed for want of file descriptors.",
            value=cap or self._limits.max_connections,
        )
        yield CounterMetricFamily(
            "aifinops_http_connections_accepted_total", "HTTP connections accepted.", value=accepted
        )
        family = CounterMetricFamily(
            "aifinops_http_connections_closed_total",
            "HTTP connections the server closed on its own, by reason: idle_timeout (keep-alive "
            "idle), header_timeout, body_timeout (a stalled request), evicted (the longest idle "
            "one, to make room under web.max_connections), over_capacity (refused: every "
            "connection busy), tls_error (failed handshake), busy (a slow body refused with 503 "
            "while too many others were being received).",
            labels=["reason"],
        )
        for reason, n in closed.items():
            family.add_metric([reason], n)
        yield family
        yield CounterMetricFamily(
            "aifinops_http_accept_errors_total",
            "Failed accepts (for example the file-descriptor limit reached); accepting pauses "
            "briefly after each.",
            value=errors,
        )
        if self._auth is not None and self._auth.enabled:
            refused = CounterMetricFamily(
                "aifinops_http_auth_refused_total",
                "Requests refused by basic auth (--web.config.file), by reason: missing (no "
                "basic credentials), invalid (wrong user or password), rate_limited (answered "
                "429 without a check: too many failed checks from the address or in all).",
                labels=["reason"],
            )
            for reason, n in self._auth.refused().items():
                refused.add_metric([reason], n)
            yield refused


class _Conn:
    """One client connection: its socket, unparsed input, and deadline while the loop owns it."""

    __slots__ = (
        "buf",
        "client",
        "deadline",
        "events",
        "handshaking",
        "head",
        "need",
        "reason",
        "sock",
    )

    def __init__(self, sock: socket.socket, client: str) -> None:
        self.sock = sock
        self.client = client
        self.buf = bytearray()
        # Set while the loop reads a body: the checked request and the body's length.
        self.head: _Head | None = None
        self.need = 0
        self.deadline = 0.0
        self.reason = "header_timeout"
        self.handshaking = False
        self.events = selectors.EVENT_READ


class _Head:
    """A parsed request line and headers."""

    __slots__ = ("error", "headers", "method", "target", "version")

    def __init__(self) -> None:
        self.method = ""
        self.target = ""
        self.version = "HTTP/1.1"
        self.headers: dict[str, str] = {}
        self.error: Response | None = None


class HTTPServer:
    """Serves the registry and the routes on one address with bounded threads and connections."""

    def __init__(
        self,
        address: str,
        registry: CollectorRegistry,
        *,
        routes: list[Route] | None = None,
        ready: Callable[[], bool] = lambda: True,
        title: str = "aifinops",
        limits: ServerLimits | None = None,
        security: WebSecurity | None = None,
    ) -> None:
        self._registry = registry
        self._ready = ready
        self._title = title
        self._routes = {(r.method, r.path): r for r in routes or ()}
        self.limits = limits or ServerLimits()
        self._security = security or WebSecurity()
        self._tls = TLSContextSource(self._security.tls) if self._security.tls else None
        self._basic = BasicAuth(self._security.basic_auth_users)
        self._extra_headers = dict(self._security.headers)
        self.stats = _Stats()
        host, port = parse_address(address)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind((host, port))
            self._listener.listen(256)
        except OSError:
            self._listener.close()
            raise
        self._listener.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        # Connections the loop owns, oldest first: the first is the one to evict when full.
        self._idle: OrderedDict[int, _Conn] = OrderedDict()
        self._returned: list[_Conn] = []
        self._returned_lock = threading.Lock()
        self._open = 0
        self._pending_bodies = 0
        self._accept_paused_until = 0.0
        # The connection cap in force: max_connections, lowered if descriptors run out first.
        self._cap = self.limits.max_connections
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._workers = ThreadPoolExecutor(self.limits.workers, thread_name_prefix="http")
        self._metrics_workers = ThreadPoolExecutor(
            self.limits.metrics_workers, thread_name_prefix="http-metrics"
        )

    @property
    def port(self) -> int:
        """The bound port (useful when the address asked for port 0)."""
        return int(self._listener.getsockname()[1])

    @property
    def url(self) -> str:
        """Base URL of the server on loopback, for tests and logs."""
        scheme = "https" if self._tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def collector(self) -> Collector:
        """The `aifinops_http_*` self-metrics of this server."""
        return HTTPCollector(self.stats, self.limits, self._basic)

    def start(self) -> None:
        """Serve in a background thread."""
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._loop, name="http", daemon=True)
        self._thread.start()
        log.info(
            "listening on %s (%s, at most %d connections)",
            self._listener.getsockname(),
            "https" if self._tls else "http",
            self.limits.max_connections,
        )

    def stop(self) -> None:
        """Stop accepting, close idle connections, and let requests in hand finish."""
        self._stopping.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._workers.shutdown(wait=True, cancel_futures=True)
        self._metrics_workers.shutdown(wait=True, cancel_futures=True)
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()

    # -- dispatch ---------------------------------------------------------------------------

    def dispatch(self, request: Request) -> Response:
        """Answer one request; the built-in endpoints first, then the registered routes."""
        if request.method in ("GET", "HEAD"):
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
            _PRIORITY_PATHS
        ):
            return Response.text(405, "method not allowed")
        return Response.text(404, "not found")

    def route_for(self, method: str, path: str) -> Route | None:
        """The registered route for a method and path, if any."""
        return self._routes.get((method, path))

    # -- the event loop ---------------------------------------------------------------------

    def _wake(self) -> None:
        # A full pipe means the loop is awake already.
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _loop(self) -> None:
        next_sweep = 0.0
        try:
            while not self._stopping.is_set():
                timeout = 0.25
                if self._accept_paused_until:
                    timeout = max(0.0, min(timeout, self._accept_paused_until - time.monotonic()))
                for key, _mask in self._selector.select(timeout=timeout):
                    if key.fileobj is self._listener:
                        self._accept()
                    elif key.fileobj is self._wake_r:
                        self._drain_wake()
                    else:
                        self._readable(key.data)
                now = time.monotonic()
                self._take_returned(now)
                if self._accept_paused_until and now >= self._accept_paused_until:
                    self._accept_paused_until = 0.0
                    self._selector.register(self._listener, selectors.EVENT_READ, None)
                if now >= next_sweep:
                    next_sweep = now + 0.25
                    self._sweep(now)
        except Exception:
            log.exception("the HTTP event loop failed")
        finally:
            for conn in list(self._idle.values()):
                self._close(conn)
            self._selector.close()

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass

    def _accept(self) -> None:
        for _ in range(64):
            try:
                sock, address = self._listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                with self.stats.lock:
                    self.stats.accept_errors += 1
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Out of descriptors: from now on keep fewer connections than this (so the
                    # next ones evict the longest idle instead of failing), free a few, and stop
                    # polling the listener for a moment instead of spinning on a failing accept.
                    cap = max(8, self._open - _FD_HEADROOM)
                    if cap < self._cap:
                        log.warning(
                            "accept failed (%s) with %d connections open: keeping at most %d",
                            exc.strerror,
                            self._open,
                            cap,
                        )
                        self._cap = cap
                        with self.stats.lock:
                            self.stats.cap = cap
                    while self._open > self._cap and self._evict_one():
                        pass
                    self._evict_one()
                    self._selector.unregister(self._listener)
                    self._accept_paused_until = time.monotonic() + 0.05
                return
            if self._open >= self._cap and not self._evict_one():
                self.stats.close("over_capacity")
                sock.close()
                continue
            with self._returned_lock, self.stats.lock:
                self._open += 1
                self.stats.accepted += 1
                self.stats.open = self._open
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(sock, str(address[0]))
            if self._tls is not None:
                try:
                    conn.sock = self._tls.context().wrap_socket(
                        sock, server_side=True, do_handshake_on_connect=False
                    )
                except (OSError, ssl.SSLError):
                    self._forget(conn, "tls_error")
                    continue
                conn.handshaking = True
            conn.deadline = time.monotonic() + self.limits.header_timeout_seconds
            conn.reason = "header_timeout"
            self._watch(conn)

    def _evict_one(self) -> bool:
        if not self._idle:
            return False
        _, victim = self._idle.popitem(last=False)
        self._unwatch(victim)
        self._forget(victim, "evicted")
        return True

    def _watch(self, conn: _Conn) -> None:
        fd = conn.sock.fileno()
        self._idle[fd] = conn
        self._selector.register(conn.sock, conn.events, conn)

    def _unwatch(self, conn: _Conn) -> None:
        fd = conn.sock.fileno()
        self._idle.pop(fd, None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.sock)

    def _forget(self, conn: _Conn, reason: str | None = None) -> None:
        """Close a connection the loop no longer watches."""
        if reason is not None:
            self.stats.close(reason)
        self._close(conn)

    def _close(self, conn: _Conn) -> None:
        with contextlib.suppress(OSError):
            conn.sock.close()
        with self._returned_lock:
            if conn.head is not None:
                conn.head = None
                self._pending_bodies -= 1
            self._open -= 1
            with self.stats.lock:
                self.stats.open = self._open

    def _sweep(self, now: float) -> None:
        expired = [c for c in self._idle.values() if c.deadline <= now]
        for conn in expired:
            self._unwatch(conn)
            self._forget(conn, conn.reason)

    def _take_returned(self, now: float) -> None:
        with self._returned_lock:
            returned, self._returned = self._returned, []
        for conn in returned:
            if self._stopping.is_set():
                self._close(conn)
                continue
            conn.events = selectors.EVENT_READ
            if conn.head is not None:
                # One deadline for the whole body: a client dripping bytes is cut off too.
                conn.deadline = now + self.limits.read_timeout_seconds
                conn.reason = "body_timeout"
            elif conn.buf:
                conn.deadline = now + self.limits.header_timeout_seconds
                conn.reason = "header_timeout"
            else:
                conn.deadline = now + self.limits.idle_timeout_seconds
                conn.reason = "idle_timeout"
            try:
                conn.sock.setblocking(False)
                self._watch(conn)
            except (OSError, ValueError):
                self._close(conn)
                continue
            if isinstance(conn.sock, ssl.SSLSocket) and conn.sock.pending():
                self._readable(conn)  # decrypted bytes the selector cannot see
            elif conn.buf and conn.head is None:
                self._parse(conn)  # a pipelined request may be complete already

    def _readable(self, conn: _Conn) -> None:
        if conn.handshaking:
            self._handshake(conn)
            return
        limit = self.limits.max_request_line_bytes + self.limits.max_header_bytes + 4
        try:
            while True:
                chunk = conn.sock.recv(65536)
                if not chunk:
                    self._unwatch(conn)
                    self._forget(conn)
                    return
                if not conn.buf and conn.head is None:
                    conn.deadline = time.monotonic() + self.limits.header_timeout_seconds
                    conn.reason = "header_timeout"
                conn.buf += chunk
                if conn.head is not None:
                    if len(conn.buf) >= conn.need:
                        break
                    continue
                if len(conn.buf) > limit or not isinstance(conn.sock, ssl.SSLSocket):
                    break
                if not conn.sock.pending():
                    break
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        except (OSError, ssl.SSLError):
            self._unwatch(conn)
            self._forget(conn)
            return
        if conn.head is None:
            self._parse(conn)
        elif len(conn.buf) >= conn.need:
            self._unwatch(conn)
            self._submit(self._workers, conn, None)

    def _handshake(self, conn: _Conn) -> None:
        sock = conn.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._set_events(conn, selectors.EVENT_READ)
            return
        except ssl.SSLWantWriteError:
            self._set_events(conn, selectors.EVENT_WRITE)
            return
        except (OSError, ssl.SSLError) as exc:
            log.debug("TLS handshake with %s failed: %s", conn.client, exc)
            self._unwatch(conn)
            self._forget(conn, "tls_error")
            return
        conn.handshaking = False
        self._set_events(conn, selectors.EVENT_READ)
        # The request may have come with the handshake's last flight, already decrypted.
        self._readable(conn)

    def _set_events(self, conn: _Conn, events: int) -> None:
        if conn.events != events:
            conn.events = events
            self._selector.modify(conn.sock, events, conn)

    def _parse(self, conn: _Conn) -> None:
        """Hand the connection to a worker once its headers are in, or refuse oversized ones."""
        buf = conn.buf
        while buf[:2] == b"\r\n":  # RFC 9112 2.2: ignore empty lines before a request
            del buf[:2]
        end = buf.find(b"\r\n\r\n")
        line_end = buf.find(b"\r\n")
        limits = self.limits
        if line_end < 0 and len(buf) > limits.max_request_line_bytes:
            self._refuse_from_loop(conn, Response.text(414, "request line too long"))
            return
        if line_end > limits.max_request_line_bytes:
            self._refuse_from_loop(conn, Response.text(414, "request line too long"))
            return
        if end < 0:
            if len(buf) > limits.max_request_line_bytes + limits.max_header_bytes:
                self._refuse_from_loop(conn, Response.text(431, "request headers too large"))
            return
        if end - line_end > limits.max_header_bytes:
            self._refuse_from_loop(conn, Response.text(431, "request headers too large"))
            return
        head = _parse_head(bytes(buf[:end]))
        del buf[: end + 4]
        self._unwatch(conn)
        pool = self._workers
        if head.method in ("GET", "HEAD") and urlsplit(head.target).path in _PRIORITY_PATHS:
            pool = self._metrics_workers
        self._submit(pool, conn, head)

    def _submit(self, pool: ThreadPoolExecutor, conn: _Conn, head: _Head | None) -> None:
        try:
            pool.submit(self._work, conn, head)
        except RuntimeError:  # shutting down
            self._forget(conn)

    def _refuse_from_loop(self, conn: _Conn, response: Response) -> None:
        self._unwatch(conn)
        with contextlib.suppress(OSError, ssl.SSLError):
            conn.sock.send(_render(response, "HTTP/1.1", close=True, extra=self._extra_headers))
        self._forget(conn)

    # -- workers ----------------------------------------------------------------------------

    def _work(self, conn: _Conn, head: _Head | None) -> None:
        """Answer the request in `head` (None: the one whose body the loop has just read) and
        any complete pipelined ones; hand the connection back to the loop or close it.

        A worker never waits on a client's body: when it is not in yet, the loop reads it.
        """
        try:
            conn.sock.settimeout(self.limits.read_timeout_seconds)  # bounds the writes
            while True:
                if head is None:
                    head, length = conn.head, conn.need
                    assert head is not None
                    with self._returned_lock:
                        conn.head = None
                        self._pending_bodies -= 1
                    keep: bool | None = self._respond(conn, head, self._take(conn, length))
                else:
                    keep = self._start(conn, head)
                    if keep is None:
                        break  # the loop reads the body
                if not keep or self._stopping.is_set():
                    self._close(conn)
                    return
                head = self._next_head(conn)
                if head is None:
                    break
        except (OSError, ssl.SSLError) as exc:
            log.debug("connection from %s: %s", conn.client, exc)
            self._close(conn)
            return
        except Exception:
            log.exception("serving a connection from %s failed", conn.client)
            self._close(conn)
            return
        with self._returned_lock:
            self._returned.append(conn)
        self._wake()

    def _next_head(self, conn: _Conn) -> _Head | None:
        """A complete pipelined request head already buffered, if any."""
        end = conn.buf.find(b"\r\n\r\n")
        if end < 0 or end > self.limits.max_request_line_bytes + self.limits.max_header_bytes:
            return None
        head = _parse_head(bytes(conn.buf[:end]))
        del conn.buf[: end + 4]
        return head

    @staticmethod
    def _take(conn: _Conn, length: int) -> bytes:
        body = bytes(conn.buf[:length])
        del conn.buf[:length]
        return body

    def _start(self, conn: _Conn, head: _Head) -> bool | None:
        """Check a request before its body; answer it when complete. Whether the connection
        stays open, or None when the body is still to come (the loop then reads it)."""
        send = self._sender(conn, head)
        if head.error is not None:
            return send(head.error, close=True)
        headers = head.headers
        parts = urlsplit(head.target)
        method = head.method
        keep_alive = _keep_alive(head)
        has_body = "content-length" in headers or "transfer-encoding" in headers
        if "transfer-encoding" in headers:
            # Chunked bodies have no length to check before reading: ask for a Content-Length.
            return send(Response.text(411, "a Content-Length header is required"), close=True)
        raw_length = headers.get("content-length", "0").strip()
        if not _CONTENT_LENGTH.match(raw_length.encode()):
            return send(
                Response.text(400, f"bad Content-Length {raw_length[:40]!r}: must be 0 or more"),
                close=True,
            )
        length = int(raw_length)
        if self._basic.enabled and parts.path not in UNAUTHENTICATED_PATHS:
            decision = self._basic.authenticate(headers.get("authorization", ""), conn.client)
            if decision.reason == "rate_limited":
                # Too many failed checks from this address (or all): refused without bcrypt.
                response = Response.text(429, "too many failed authentication attempts; retry")
                response.headers["Retry-After"] = str(max(1, math.ceil(decision.retry_after)))
                return send(response, close=(has_body and length > 0) or not keep_alive)
            if not decision.ok:
                response = Response.text(401, "Unauthorized")
                response.headers["WWW-Authenticate"] = 'Basic realm="aifinops"'
                return send(response, close=(has_body and length > 0) or not keep_alive)
        route = self._routes.get((method, parts.path))
        limit = route.max_body_bytes if route else DEFAULT_MAX_BODY_BYTES
        if length > limit:
            return send(
                Response.json(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    {"error": f"body of {length} bytes exceeds the limit of {limit}"},
                ),
                close=True,
            )
        if route is not None and route.authorize is not None:
            refusal = route.authorize(headers)
            if refusal is not None:
                return send(refusal, close=length > 0 or not keep_alive)
        if length and headers.get("expect", "").lower() == "100-continue":
            conn.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if len(conn.buf) < length and not self._read_briefly(conn, length):
            with self._returned_lock:
                busy = self._pending_bodies >= self.limits.max_pending_bodies
                if not busy:
                    self._pending_bodies += 1
                    conn.head, conn.need = head, length
            if busy:
                # Each slow body is buffered whole: bound how many at once, not just their size.
                self.stats.close("busy")
                response = Response.text(503, "too many slow request bodies at once; retry")
                response.headers["Retry-After"] = "1"
                return send(response, close=True)
            return None
        return self._respond(conn, head, self._take(conn, length))

    def _read_briefly(self, conn: _Conn, length: int) -> bool:
        """Wait a moment for a body that follows its headers (clients send them in separate
        writes); whether it is all in. A slower body goes back to the loop, not held here."""
        deadline = time.monotonic() + _BODY_GRACE_SECONDS
        sock = conn.sock
        try:
            while len(conn.buf) < length:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                sock.settimeout(remaining)
                chunk = sock.recv(min(length - len(conn.buf), 1 << 20))
                if not chunk:
                    raise ConnectionResetError("the client closed the connection mid-body")
                conn.buf += chunk
        except TimeoutError:
            return False
        finally:
            sock.settimeout(self.limits.read_timeout_seconds)
        return True

    def _respond(self, conn: _Conn, head: _Head, body: bytes) -> bool:
        """Dispatch a complete request and send the answer; whether the connection stays open."""
        send = self._sender(conn, head)
        headers = head.headers
        parts = urlsplit(head.target)
        method = head.method
        keep_alive = _keep_alive(head)
        request = Request(
            method=method,
            path=parts.path,
            query=parse_qs(parts.query),
            headers=headers,
            body=body,
            client=conn.client,
        )
        try:
            response = self.dispatch(request)
        except Exception:
            log.exception("handler for %s %s failed", method, parts.path)
            response = Response.text(500, "internal error")
        return send(
            response,
            close=not keep_alive,
            gzip_ok="gzip" in headers.get("accept-encoding", ""),
        )

    def _sender(self, conn: _Conn, head: _Head) -> Callable[..., bool]:
        def send(response: Response, *, close: bool = False, gzip_ok: bool = False) -> bool:
            data = _render(
                response,
                head.version if head.version in ("HTTP/1.0", "HTTP/1.1") else "HTTP/1.1",
                close=close,
                gzip_ok=gzip_ok,
                head_only=head.method == "HEAD",
                extra=self._extra_headers,
            )
            conn.sock.sendall(data)
            return not close

        return send


def _parse_head(raw: bytes) -> _Head:
    """The request line and headers; `error` set to the answer for a malformed one."""
    head = _Head()
    try:
        text = raw.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        head.error = Response.text(400, "bad request")
        return head
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        head.error = Response.text(400, "bad request line")
        return head
    head.method, head.target, head.version = parts
    if head.version not in ("HTTP/1.0", "HTTP/1.1"):
        head.error = Response.text(505, "HTTP version not supported")
        head.version = "HTTP/1.1"
        return head
    if not _TOKEN.match(head.method):
        head.error = Response.text(400, "bad method")
        return head
    if head.method not in _METHODS:
        head.error = Response.text(501, "not implemented")
        return head
    if not head.target.startswith("/"):
        head.error = Response.text(400, "request target must be an absolute path")
        return head
    headers = head.headers
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.match(name):
            # Obsolete line folding and whitespace before the colon are refused (RFC 9112 5).
            head.error = Response.text(400, "bad header line")
            return head
        key = name.lower()
        value = value.strip(" \t")
        if key in headers:
            if key in ("content-length", "host", "authorization"):
                if key != "content-length" or headers[key] != value:
                    head.error = Response.text(400, f"repeated {name} header")
                    return head
                continue
            headers[key] = f"{headers[key]}, {value}"
        else:
            headers[key] = value
    if "transfer-encoding" in headers and "content-length" in headers:
        head.error = Response.text(400, "both Transfer-Encoding and Content-Length")
    return head


def _keep_alive(head: _Head) -> bool:
    connection = head.headers.get("connection", "").lower()
    if head.version == "HTTP/1.0":
        return "keep-alive" in connection
    return "close" not in connection


def _render(
    response: Response,
    version: str,
    *,
    close: bool,
    gzip_ok: bool = False,
    head_only: bool = False,
    extra: Mapping[str, str] | None = None,
) -> bytes:
    body = response.body
    status = int(response.status)
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    lines = [f"{version} {status} {phrase}", f"Content-Type: {response.content_type}"]
    if gzip_ok and len(body) > 1024:
        body = gzip.compress(body, compresslevel=1)
        lines.append("Content-Encoding: gzip")
    lines.append(f"Content-Length: {len(body)}")
    for name, value in {**(extra or {}), **response.headers}.items():
        lines.append(f"{name}: {value}")
    lines.append("X-Content-Type-Options: nosniff")
    if close:
        lines.append("Connection: close")
    elif version == "HTTP/1.0":
        lines.append("Connection: keep-alive")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return data if head_only else data + body
