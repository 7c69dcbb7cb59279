"""Runs a built daemon: binds its server, starts its components, reports start-up failures as exit codes."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry

from aifinops.exporters.runtime.http import AddressError, HTTPServer, Route
from aifinops.exporters.runtime.selfmetrics import CollectorHealth, SelfCollector
from aifinops.exporters.runtime.service import Component, run_until_stopped

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
) -> int:
    """Bind `address`, start `components` then the server, and run until signalled. Returns the exit code."""
    try:
        server = HTTPServer(address, registry, routes=routes, ready=ready, title=prog)
    except (AddressError, OSError) as exc:
        print(f"{prog}: cannot listen on {address}: {exc}", file=sys.stderr)
        return 1
    log.info("%s starting on %s", prog, address)
    try:
        run_until_stopped([*components, server], stop)
    except Exception as exc:
        log.exception("%s failed", prog)
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    log.info("%s stopped", prog)
    return 0
