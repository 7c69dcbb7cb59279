"""promtool accepts the LLM families as the fast text encoder writes them."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime

import pytest
from prometheus_client import (
    CollectorRegistry,
)

from aifinops.exporters.config import LLMConfig
from aifinops.exporters.events import USAGE_TYPE, make_event
from aifinops.exporters.llm import UsageIngest
from aifinops.exporters.runtime.exposition import (
    encode_text,
)

pytestmark = pytest.mark.integration


def llm_registry() -> CollectorRegistry:
    ingest = UsageIngest.from_config(LLMConfig(), sources=("http",))
    now = datetime(2025, 9, 1, tzinfo=UTC)
    for i, (provider, model) in enumerate(
        [("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4-5"), ("openai", "unknown-x")]
    ):
        data = {
            "provider": provider,
            "model": model,
            "team": f"t{i}",
            "app": "a",
            "input_tokens": 100,
            "output_tokens": 10,
        }
        event = make_event(USAGE_TYPE, "s", data, time=now)
        ingest.apply(ingest.prepare(event, now=now), "http")
    reg = CollectorRegistry()
    for collector in ingest.collectors({}):
        reg.register(collector)
    return reg


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_accepts_the_llm_families():
    # promtool reads the Prometheus text format (its OpenMetrics support is the scraper's).
    body = encode_text(llm_registry())
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=body, capture_output=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == b""
