"""A webhook receiver served by the test: records every POST body with its arrival time."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookReceiver:
    """Listens on a free loopback port; `received` holds `(monotonic time, parsed JSON)` pairs."""

    def __init__(self) -> None:
        self.received: list[tuple[float, Any]] = []
        self._cond = threading.Condition()
        receiver = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._cond:
                    receiver.received.append((time.monotonic(), json.loads(body or b"null")))
                    receiver._cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Where to point the sender."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def start(self) -> None:
        """Start serving."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, predicate: Any, timeout: float = 30.0) -> list[Any]:
        """Wait until `predicate(bodies)` is true; return the bodies received so far."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                bodies = [b for _, b in self.received]
                if predicate(bodies):
                    return bodies
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"webhook: condition not met after {timeout}s: {bodies}")
                self._cond.wait(remaining)
