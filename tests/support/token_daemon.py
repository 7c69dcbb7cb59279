"""The real `aifinops-token-exporter` as a child process, with helpers to post events and scrape it."""

from __future__ import annotations

import http.client
import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from aifinops.cli.demo.stack import Process, free_port, http_ok, wait_until

BIN = Path(sys.executable).parent / "aifinops-token-exporter"
BATCH = "application/cloudevents-batch+json"


class TokenDaemon:
    """The exporter on a fixed free port (kept across restarts), its log in `workdir`."""

    def __init__(
        self,
        workdir: Path,
        config: str = "{}\n",
        args: list[str] | None = None,
        program: Path = BIN,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.config_path = workdir / "aifinops.yml"
        self.config_path.write_text(config)
        self.process = Process(
            "token-exporter",
            [
                str(program),
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--config.file={self.config_path}",
                "--log.level=debug",
                *(args or []),
            ],
            workdir,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        self.process.start()

        def ready() -> bool:
            self.process.check_alive()
            return http_ok(f"{self.url}/-/ready")

        wait_until(ready, timeout, "the token exporter to become ready")

    def stop(self) -> None:
        self.process.stop()

    def post(
        self, events: Any, content_type: str = BATCH, token: str | None = None
    ) -> tuple[int, Any]:
        headers = {"Content-Type": content_type}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("POST", "/v1/events", body=json.dumps(events), headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        return resp.status, json.loads(body) if body else None

    def metrics_text(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as resp:
            return resp.read().decode()

    def sample(self, name: str, **labels: str) -> float | None:
        """The sum of the samples of `name` whose labels include `labels` (None: no such sample)."""
        values = [
            float(s.value)
            for family in text_string_to_metric_families(self.metrics_text())
            for s in family.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]
        return sum(values) if values else None
