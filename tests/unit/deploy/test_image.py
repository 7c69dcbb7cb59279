"""The Dockerfile agrees with what it packages and with the chart that runs it.

tests/integration/deploy/test_install.py builds the wheel from the same COPY sources and runs every
program from it, tests/integration/deploy/test_image_build.py builds and runs the image where
Docker runs; this file checks the rest of the contract without a Docker daemon.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from aifinops.cli import bridge, gpu_exporter, token_exporter

REPO = Path(__file__).resolve().parents[3]
DOCKERFILE = (REPO / "Dockerfile").read_text()
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
VALUES = yaml.safe_load((REPO / "charts/aifinops/values.yaml").read_text())


def instructions(name: str) -> list[list[str]]:
    """The arguments of every `name` instruction (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line.split()[1:] for line in text.splitlines() if line.split()[:1] == [name]]


def copied_sources() -> set[str]:
    return {
        src.rstrip("/")
        for args in instructions("COPY")
        if not any(a.startswith("--from") for a in args)
        for src in args[:-1]
    }


def test_the_build_copies_every_package_folder_and_the_project_files():
    folders = set(PYPROJECT["tool"]["setuptools"]["package-dir"].values())
    needed = folders | {"pyproject.toml", PYPROJECT["project"]["readme"]}
    assert copied_sources() == needed


def test_dockerignore_lets_every_copied_source_into_the_build_context():
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "everything is excluded first, then the sources are let back in"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert copied_sources() <= allowed


def test_the_image_runs_as_the_user_the_chart_expects():
    [[user]] = instructions("USER")
    uid, gid = (int(part) for part in user.split(":"))
    pod = VALUES["podSecurityContext"]
    assert (uid, gid) == (pod["runAsUser"], pod["runAsGroup"])
    assert uid != 0 and pod["runAsNonRoot"] is True


def test_the_base_image_python_meets_requires_python():
    [[arg]] = [a for a in instructions("ARG") if a[0].startswith("PYTHON_IMAGE=")]
    version = re.match(r"PYTHON_IMAGE=python:(\d+)\.(\d+)-", arg)
    assert version, arg
    required = re.fullmatch(r">=(\d+)\.(\d+)", PYPROJECT["project"]["requires-python"])
    assert required
    assert tuple(map(int, version.groups())) >= tuple(map(int, required.groups()))


def test_the_exposed_ports_are_the_daemons_default_ports():
    exposed = {int(p) for args in instructions("EXPOSE") for p in args}
    defaults = {m.SPEC.default_port for m in (gpu_exporter, token_exporter, bridge)}
    assert exposed == defaults


def test_the_chart_pulls_the_tag_make_image_builds():
    chart = yaml.safe_load((REPO / "charts/aifinops/Chart.yaml").read_text())
    # An empty image.tag means the chart's appVersion; `make image` tags the package version.
    assert VALUES["image"]["tag"] == ""
    assert chart["appVersion"] == PYPROJECT["project"]["version"]
    makefile = (REPO / "Makefile").read_text()
    assert "IMAGE ?= " + VALUES["image"]["repository"] + ":" in makefile


def test_every_program_the_chart_runs_is_a_console_script_of_the_package():
    templates = "\n".join(
        p.read_text() for p in (REPO / "charts/aifinops/templates").glob("*.yaml")
    )
    commands = set(re.findall(r'"command" "([\w-]+)"', templates))
    commands |= set(re.findall(r'command: \["([\w-]+)"', templates))
    assert commands == {"aifinops-gpu-exporter", "aifinops-token-exporter", "aifinops-bridge"}
    assert commands <= set(PYPROJECT["project"]["scripts"])
