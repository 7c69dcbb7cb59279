"""terraform/ and the rendered charts through the external linters: `terraform fmt` finds
nothing to change, and checkov finds nothing outside the reviewed skip list
(tests/fixtures/checkov-skips.yaml)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import helm_python as helm
import pytest
import yaml

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]

TF = REPO / "terraform"

KAFKA_CHART = TF / "charts" / "kafka-cluster"

SKIPS = REPO / "tests" / "fixtures" / "checkov-skips.yaml"


def test_every_file_is_in_terraform_fmt_canonical_form():
    # Offline: `fmt` needs no providers (`validate` does, and the registry is not reachable here).
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("no terraform binary on PATH")
    out = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(TF)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TF_CLI_CONFIG_FILE": os.devnull},
    )
    assert out.returncode == 0, f"run `terraform fmt -recursive terraform`:\n{out.stdout}"


# --- checkov -----------------------------------------------------------------------------------------


def _checkov() -> str | None:
    for candidate in (
        os.environ.get("CHECKOV"),
        str(REPO / ".venv-checkov" / "bin" / "checkov"),
        shutil.which("checkov"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def _scan(directory: Path, framework: str) -> list[tuple[str, str]]:
    binary = _checkov()
    if binary is None:
        pytest.skip("checkov is not installed: `make checkov` puts it in .venv-checkov/")
    proc = subprocess.run(
        [
            binary,
            "-d",
            str(directory),
            "--framework",
            framework,
            "--quiet",
            "--skip-download",
            *("-o", "json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = []
    for report in reports:
        assert report["summary"]["parsing_errors"] == 0, report["summary"]
        assert report["summary"]["passed"] > 0
        failed += [(f["check_id"], f["resource"]) for f in report["results"]["failed_checks"]]
    return failed


def _unreviewed(failed: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], set[int]]:
    skips = yaml.safe_load(SKIPS.read_text())
    assert all(len(s["reason"]) > 40 for s in skips), "every skip needs a reason"
    used, unreviewed = set(), []
    for check, resource in failed:
        hits = [
            i
            for i, s in enumerate(skips)
            if s["check"] == check and re.search(s["resource"], resource)
        ]
        used.update(hits)
        if not hits:
            unreviewed.append((check, resource))
    return unreviewed, used


@pytest.fixture(scope="module")
def rendered_dir(tmp_path_factory) -> Path:
    """The aifinops chart (defaults) and the Kafka chart, rendered to plain manifests."""
    out = tmp_path_factory.mktemp("rendered")
    for name, path in (("aifinops", REPO / "charts" / "aifinops"), ("kafka", KAFKA_CHART)):
        with helm.Chart.load(path) as chart:
            rendered = chart.render(name=name, namespace=name)
        for template, text in rendered.items():
            if text.strip() and not template.endswith("NOTES.txt"):
                (out / template.replace("/", "_")).write_text(text, encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def checkov_failures(rendered_dir) -> list[tuple[str, str]]:
    return _scan(TF, "terraform") + _scan(rendered_dir, "kubernetes")


def test_checkov_finds_nothing_outside_the_reviewed_skips(checkov_failures):
    unreviewed, _ = _unreviewed(checkov_failures)
    assert unreviewed == []


def test_checkov_skip_list_has_no_stale_entries(checkov_failures):
    _, used = _unreviewed(checkov_failures)
    skips = yaml.safe_load(SKIPS.read_text())
    assert [s["check"] for i, s in enumerate(skips) if i not in used] == []


def test_checkov_digest_finding_goes_away_with_a_digest(tmp_path):
    """The CKV_K8S_43 skip is honest: pinning image.digest satisfies the check."""
    values = {"image": {"digest": "sha256:" + "b" * 64}}
    with helm.Chart.load(REPO / "charts" / "aifinops") as chart:
        rendered = chart.render(values, name="aifinops", namespace="aifinops")
    for template, text in rendered.items():
        if text.strip() and not template.endswith("NOTES.txt"):
            (tmp_path / template.replace("/", "_")).write_text(text, encoding="utf-8")
    assert "CKV_K8S_43" not in {check for check, _ in _scan(tmp_path, "kubernetes")}
