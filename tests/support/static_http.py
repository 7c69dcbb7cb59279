"""A real HTTP server on loopback that answers every GET with a body, status and content type the
test sets (and may change at any time): stands in for a dcgm-exporter, a kubelet or an API server
the tests cannot run, with the exact bytes those serve (fixtures in tests/fixtures/)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StaticHTTPServer:
    """`url` answers GETs with `body`/`status`; `requests` records (path, Authorization header).
    With `token` set, a request without `Authorization: Bearer <token>` gets 401."""

    def __init__(
        self,
        body: bytes | str = b"",
        *,
        status: int = 200,
        content_type: str = "text/plain; version=0.0.4; charset=utf-8",
        token: str | None = None,
    ) -> None:
        self.body = body.encode() if isinstance(body, str) else body
        self.status = status
        self.content_type = content_type
        self.requests: list[tuple[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                auth = self.headers.get("Authorization", "")
                owner.requests.append((self.path, auth))
                status = owner.status
                if token is not None and auth != f"Bearer {token}":
                    status = 401
                body = owner.body if isinstance(owner.body, bytes) else owner.body.encode()
                self.send_response(status)
                self.send_header("Content-Type", owner.content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self.url = f"{self.base_url}/metrics"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
