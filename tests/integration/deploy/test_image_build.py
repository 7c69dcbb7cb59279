"""The image Docker builds from the Dockerfile runs every program as nobody with a read-only
root (skipped where no Docker daemon is reachable)."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


def docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


def test_the_image_builds_and_runs_its_programs_as_nobody():
    if not docker_available():
        pytest.skip("needs a reachable Docker daemon")
    tag = f"aifinops-test:{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "build", "-q", "-t", tag, str(REPO)], check=True, timeout=900)
    try:

        def run(*args: str) -> str:
            return subprocess.run(
                ["docker", "run", "--rm", "--read-only", tag, *args],
                check=True,
                capture_output=True,
                text=True,
                timeout=120,
            ).stdout

        assert run("id", "-u").strip() == "65534"
        assert "valid" in run("aifinops", "config")
        price = ["--provider", "openai", "--model", "gpt-4o", "--input", "1000", "--output", "100"]
        assert "exact total: $0.0035" in run("aifinops", "price", *price)
        for program in ("aifinops-gpu-exporter", "aifinops-token-exporter", "aifinops-bridge"):
            assert "--web.listen-address" in run(program, "--help")
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
