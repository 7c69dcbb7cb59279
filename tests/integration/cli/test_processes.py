"""The installed commands as processes: each daemon serves and stops cleanly on SIGTERM, and
`aifinops price` into a closed pipe ends quietly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from aifinops.cli.demo.stack import free_port, http_ok, wait_until

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "script", ["aifinops-gpu-exporter", "aifinops-token-exporter", "aifinops-bridge"]
)
def test_daemon_serves_and_stops_cleanly_on_sigterm(script, tmp_path):
    port = free_port()
    args = [str(BIN / script), f"--web.listen-address=127.0.0.1:{port}", "--log.level=debug"]
    env = {**os.environ, "AIFINOPS_CLUSTER": "t1"}
    if script == "aifinops-gpu-exporter":
        args.append("--source=simulated")
    if script == "aifinops-bridge":
        # The bridge requires Kafka; an unreachable one must not stop it serving its metrics.
        args.append(f"--kafka.bootstrap-servers=127.0.0.1:{free_port()}")
        env["AIFINOPS_BRIDGE_STATE_DIR"] = str(tmp_path / "state")
    # In a folder of its own: defaults under the working directory (the spool, the bridge's state)
    # must not meet another test's daemon or a developer's run in the checkout.
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/-/healthy"), 20, f"{script} up")
        assert http_ok(f"http://127.0.0.1:{port}/-/ready")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as resp:
            assert b"aifinops_build_info{" in resp.read()
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - start < 15
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "shutting down" in proc.stderr.read()


PRICE_ARGS = ["--provider", "openai", "--model", "gpt-4o", "--input", "1000", "--output", "10"]


def test_a_closed_pipe_ends_the_command_quietly():
    # `aifinops price ... | head -1` where head has already gone: the reading end is closed
    # before the command writes its first line.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [str(BIN / "aifinops"), "price", *PRICE_ARGS],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    assert proc.returncode == 141
