"""Runs a built daemon: binds its server, starts its components, reports start-up failures as exit codes."""

from __future__ import annotations

import logging
import resource
import sys
import threading
from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry

from aifinops.exporters.config import WebConfig
from aifinops.exporters.runtime.http import AddressError, HTTPServer, Route, ServerLimits
from aifinops.exporters.runtime.selfmetrics import CollectorHealth, SelfCollector
from aifinops.exporters.runtime.service import Component, run_until_stopped
from aifinops.exporters.runtime.webconfig import WebConfigError, load_web_config

log = logging.getLogger(__name__)


def new_registry(health: CollectorHealth) -> CollectorRegistry:
    """A registry holding the self-metrics every daemon exposes."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SelfCollector(health))
    return registry


def serve(
    prog: str,
    address: str,
    registry: CollectorRegistry,
    components: Sequence[Component] = (),
    *,
    routes: list[Route] | None = None,
    ready: Callable[[], bool] = lambda: True,
    stop: threading.Event | None = None,
    web: WebConfig | None = None,
) -> int:
    """Bind `address`, start `components` then the server, and run until signalled. Returns the exit code."""
    web = web or WebConfig()
    try:
        security = load_web_config(web.config_file) if web.config_file else None
    except WebConfigError as exc:
        print(f"{prog}: invalid web config: {exc}", file=sys.stderr)
        return 2
    limits = server_limits(web)
    try:
        server = HTTPServer(
            address,
            registry,
            routes=routes,
            ready=ready,
            title=prog,
            limits=limits,
            security=security,
        )
    except (AddressError, OSError) as exc:
        print(f"{prog}: cannot listen on {address}: {exc}", file=sys.stderr)
        return 1
    registry.register(server.collector())
    log.info("%s starting on %s", prog, address)
    try:
        run_until_stopped([*components, server], stop)
    except Exception as exc:
        log.exception("%s failed", prog)
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    log.info("%s stopped", prog)
    return 0


# Descriptors kept free of HTTP connections: Kafka sockets, the spool, logs, the price catalogue.
_RESERVED_FDS = 128


def server_limits(web: WebConfig) -> ServerLimits:
    """The server's limits from `web`, with `max_connections` kept under the descriptor limit.

    The soft `RLIMIT_NOFILE` is raised to the hard one first (as Go programs do), so a cap the
    hard limit allows is honoured; one it does not is lowered, with a warning, rather than
    letting accept fail once descriptors run out.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    cap = web.max_connections
    if soft != resource.RLIM_INFINITY and cap > soft - _RESERVED_FDS:
        cap = max(8, soft - _RESERVED_FDS)
        log.warning(
            "web.max_connections %d exceeds what the open-file limit (%d) allows; using %d",
            web.max_connections,
            soft,
            cap,
        )
    return ServerLimits(
        max_connections=cap,
        workers=web.workers,
        header_timeout_seconds=web.header_timeout_seconds,
        read_timeout_seconds=web.read_timeout_seconds,
        idle_timeout_seconds=web.idle_timeout_seconds,
        max_header_bytes=web.max_header_bytes,
    )
