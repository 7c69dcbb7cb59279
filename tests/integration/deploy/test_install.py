"""The wheel built from what the Dockerfile copies, installed outside the checkout, runs every program
(`aifinops demo` included, with the rule pack it ships as package data).

The editable install the other tests use reads `exporters/`, `bridge/` and `cli/` from the
checkout, so it cannot show a module or data file missing from the wheel (the GPU price table
was the first candidate). Here the wheel is built, installed into a fresh venv that borrows only
the dependencies from the test venv, and its programs run from a directory outside the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from aifinops.cli.demo.stack import free_port, http_ok, wait_until
from aifinops.exporters.events import USAGE_TYPE, make_event
from support.token_daemon import TokenDaemon

REPO = Path(__file__).resolve().parents[3]
PRICE_ARGS = ["--provider", "openai", "--model", "gpt-4o", "--input", "1000", "--output", "100"]
PRICE_TIME = ["--time", "2026-11-01T00:00:00Z"]

pytestmark = pytest.mark.integration


def dockerfile_sources() -> list[str]:
    """What the Dockerfile's wheel stage copies from the build context (its `COPY` sources)."""
    sources = []
    for line in (REPO / "Dockerfile").read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            sources += [w.rstrip("/") for w in words[1:-1]]
    return sources


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The `bin` folder of a venv holding the wheel of this checkout and nothing else of it."""
    root = tmp_path_factory.mktemp("install")
    # Built from a copy of exactly what the image is built from: an in-tree build would reuse
    # files a former build left in build/ (a data file dropped from the package would still ship).
    source = root / "source"
    for name in dockerfile_sources():
        if (REPO / name).is_dir():
            shutil.copytree(
                REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(root / "wheels"),
            str(source),
        ],
        check=True,
        capture_output=True,
        cwd=root,
    )
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # The dependencies come from the test venv; its editable aifinops is a finder hook in a .pth
    # file, which a path added this way does not run, so `aifinops` resolves to the wheel only.
    Path(purelib, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (wheel,) = (root / "wheels").glob("aifinops-*.whl")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
    )
    return venv / "bin"


def environment() -> dict[str, str]:
    """This process's environment without the AIFINOPS_ overrides a developer may have set."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AIFINOPS_")}


def run(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        env=environment(),
    )


def test_the_wheel_holds_the_packages_and_the_price_table(installed, tmp_path):
    code = (
        "import aifinops.cli.aifinops, aifinops.cli.bridge, aifinops.cli.gpu_exporter, "
        "aifinops.cli.token_exporter\n"
        "from importlib.resources import files\n"
        "import aifinops.exporters as e\n"
        "print(e.__file__)\n"
        "print(files('aifinops.exporters').joinpath('data/gpu-prices.yaml').is_file())\n"
    )
    out = run(installed, "python", "-c", code, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    origin, has_prices = out.stdout.split()
    assert origin.startswith(str(installed.parent)), origin
    assert has_prices == "True"


def test_the_installed_cli_prices_as_the_checkout_does(installed, tmp_path):
    out = run(installed, "aifinops", "price", *PRICE_ARGS, *PRICE_TIME, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    checkout = subprocess.run(
        [str(Path(sys.executable).parent / "aifinops"), "price", *PRICE_ARGS, *PRICE_TIME],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == checkout.stdout
    assert "exact total: $0.0035" in out.stdout
    assert run(installed, "aifinops", "config", cwd=tmp_path).returncode == 0
    bridge_help = run(installed, "aifinops-bridge", "--help", cwd=tmp_path)
    assert bridge_help.returncode == 0 and "--kafka.bootstrap-servers" in bridge_help.stdout


def test_the_installed_gpu_exporter_prices_gpus_from_the_shipped_table(installed, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    proc = subprocess.Popen(
        [
            str(installed / "aifinops-gpu-exporter"),
            f"--web.listen-address=127.0.0.1:{port}",
            "--source=simulated",
        ],
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=environment(),
    )

    def hourly_costs() -> list[float]:
        with urllib.request.urlopen(url, timeout=10) as resp:
            text = resp.read().decode()
        return [
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "aifinops_gpu_hourly_cost_usd"
        ]

    try:
        wait_until(lambda: http_ok(url) and bool(hourly_costs()), 30, "simulated GPUs served")
        costs = hourly_costs()
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0, proc.stderr.read()
    # Every simulated model has a price in data/gpu-prices.yaml, which only the wheel provides.
    assert costs and all(c > 0 for c in costs), costs


def test_the_installed_token_exporter_counts_an_event_to_the_catalogue_price(installed, tmp_path):
    daemon = TokenDaemon(tmp_path, program=installed / "aifinops-token-exporter")
    daemon.start()
    try:
        data = {
            "provider": "openai",
            "model": "gpt-4o",
            "team": "ml",
            "app": "chat",
            "input_tokens": 1000,
            "output_tokens": 100,
        }
        status, body = daemon.post([make_event(USAGE_TYPE, "gw", data, event_id="e1")])
        assert (status, body) == (202, {"accepted": 1, "duplicates": 0})
        assert daemon.sample("aifinops_llm_cost_usd_total", team="ml") == pytest.approx(0.0035)
    finally:
        daemon.stop()


def test_the_installed_demo_starts_the_stack_with_its_packaged_rules_and_exits_0(
    installed, tmp_path
):
    # `--duration` ends the demo by itself; it exits 1 if any part of the stack fails to start
    # (Prometheus must load every rule group of the files it was given).
    out = subprocess.run(
        [
            str(installed / "aifinops"),
            "demo",
            "--duration=2",
            "--scenario=none",
            "--no-traffic",
            "--gpu-source=simulated",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
        env={**environment(), "TMPDIR": str(tmp_path)},
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    (loaded,) = [line for line in out.stdout.splitlines() if " rule files from " in line]
    count, rules_dir = loaded.split("loading ", 1)[1].split(" rule files from ")
    # The wheel's own copy of the rules, not the checkout's rules/ folder.
    assert Path(rules_dir).is_relative_to(installed.parent), loaded
    assert sorted(p.name for p in Path(rules_dir).glob("aifinops-*.yaml")) == sorted(
        p.name for p in (REPO / "rules").glob("aifinops-*.yaml")
    )
    assert int(count) == len(list((REPO / "rules").glob("aifinops-*.yaml")))
    for part in ("Prometheus", "Alertmanager", "GPU exporter", "token exporter", "bridge"):
        assert f"starting {part}" in out.stdout, out.stdout
    assert "stopping every process" in out.stdout
    assert not list(tmp_path.glob("aifinops-demo-*")), "the temporary work directory is removed"
