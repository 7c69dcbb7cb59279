"""Starts a daemon's components in order, waits for SIGTERM or SIGINT, and stops them in reverse."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Sequence
from typing import Any, Protocol

log = logging.getLogger(__name__)


class Component(Protocol):
    """A part of a daemon with a lifecycle: a server, a poller, a consumer, a producer."""

    def start(self) -> None:
        """Begin work; return once running."""
        ...

    def stop(self) -> None:
        """Finish what is in hand and release resources."""
        ...


def run_until_stopped(components: Sequence[Component], stop: threading.Event | None = None) -> None:
    """Start `components` in order, block until `stop` is set or a signal arrives, then stop them.

    Signal handlers are installed only on the main thread (tests run daemons on other threads and
    stop them through `stop`). Components that started are stopped even when a later one fails.
    """
    stop = stop or threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):

            def _handler(signum: int, _frame: object) -> None:
                log.info("received %s, shutting down", signal.Signals(signum).name)
                stop.set()

            previous[sig] = signal.signal(sig, _handler)
    started: list[Component] = []
    try:
        for component in components:
            component.start()
            started.append(component)
        while not stop.wait(0.5):
            pass
    finally:
        for component in reversed(started):
            try:
                component.stop()
            except Exception:
                log.exception("stopping %s failed", type(component).__name__)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
