"""The real `aifinops-bridge` as a child process: config from the test, scrape helpers, SIGKILL and restart."""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from aifinops.cli.demo.stack import Process, free_port, http_ok, wait_until

BIN = Path(sys.executable).parent / "aifinops-bridge"


def bridge_config(bootstrap: str, topics: dict[str, str], workdir: Path, **extra: Any) -> dict:
    """A config for a test bridge: its own topics, group and state directory; short group timings
    (Tansu holds a join for the whole rebalance timeout)."""
    bridge = {
        "group_id": f"bridge-{topics['usage']}",
        "state_dir": str(workdir / "state"),
        "max_poll_interval_ms": 3000,
        "session_timeout_ms": 3000,
        "heartbeat_interval_ms": 1000,
        **extra.pop("bridge", {}),
    }
    return {
        "cluster": "bridge-test",
        "kafka": {
            "bootstrap_servers": [bootstrap],
            "topics": {key: {"name": name} for key, name in topics.items()},
        },
        "producer": {"delivery_timeout_ms": 3000},
        "bridge": bridge,
        **extra,
    }


class BridgeDaemon:
    """The bridge on a fixed free port (kept across restarts), its log in `workdir`."""

    def __init__(self, workdir: Path, config: dict) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.config = config
        self.config_path = workdir / "aifinops.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.process = Process(
            "bridge",
            [
                str(BIN),
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--config.file={self.config_path}",
                "--log.level=info",
            ],
            workdir,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    @property
    def partitions(self) -> int:
        """Partitions of the usage and GPU topics (what one member is assigned)."""
        return 20

    def start(self, timeout: float = 30, *, joined: bool = True) -> None:
        """Start; with `joined`, wait until the member has every partition (lag known for each)."""
        self.process.start()

        def up() -> bool:
            self.process.check_alive()
            return http_ok(f"{self.url}/-/ready")

        wait_until(up, timeout, "the bridge to serve")
        if joined:
            self.wait_joined(timeout)

    def wait_joined(self, timeout: float = 30) -> None:
        def assigned() -> bool:
            self.process.check_alive()
            return len(self.samples("aifinops_bridge_consumer_lag_messages")) >= self.partitions

        wait_until(assigned, timeout, "the bridge to be assigned its partitions", interval=0.2)

    def stop(self) -> None:
        self.process.stop()

    def kill(self) -> None:
        self.process.kill()

    def metrics_text(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=30) as resp:
            return resp.read().decode()

    def samples(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        """Every sample of `name` whose labels include `labels`."""
        return [
            (s.labels, float(s.value))
            for family in text_string_to_metric_families(self.metrics_text())
            for s in family.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]

    def sample(self, name: str, **labels: str) -> float:
        """The sum of the matching samples (0 when there is none)."""
        return sum(v for _, v in self.samples(name, **labels))

    def consumed(self, topic: str) -> float:
        """Messages of `topic` the bridge is done with, whatever the result."""
        return self.sample("aifinops_bridge_messages_total", topic=topic)
