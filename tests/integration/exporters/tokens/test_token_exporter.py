"""`aifinops-token-exporter` end to end: the real daemon, real HTTP, scraped by a real Prometheus."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from genai_prices import Usage, calc_price

from aifinops.cli.demo.stack import Prometheus
from aifinops.exporters.events import USAGE_TYPE, make_event
from support.token_daemon import BIN, TokenDaemon

pytestmark = pytest.mark.integration

TEAM_TOKEN = "ml-team-token"
GATEWAY_TOKEN = "gateway-token"


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


CONFIG = f"""
cluster: test-cluster
tokens:
  auth:
    enabled: true
    tokens:
      - {{sha256: {sha(TEAM_TOKEN)}, team: ml}}
      - {{sha256: {sha(GATEWAY_TOKEN)}, team: platform, gateway: true}}
llm:
  pricing:
    overrides_file: prices.yaml
  budgets:
    ml: {{daily: 20, monthly: 500}}
    web: {{monthly: 100.5}}
"""
OVERRIDES = """
overrides:
  - provider: openai
    model: gpt-4o
    discount_percent: 20
"""


def usage(event_id: str, provider: str, model: str, team: str, **tokens: int) -> dict:
    data = {"provider": provider, "model": model, "team": team, "app": "chat", **tokens}
    return make_event(USAGE_TYPE, "it-gateway", data, event_id=event_id)


@pytest.fixture
def daemon(tmp_path: Path, request: pytest.FixtureRequest) -> TokenDaemon:
    (tmp_path / "prices.yaml").write_text(OVERRIDES)
    instance = TokenDaemon(tmp_path, CONFIG)
    # The config names prices.yaml relative to the daemon's working directory.
    instance.start()
    request.addfinalizer(instance.stop)
    return instance


def catalogue(provider_id: str, model: str, **tokens: int) -> Decimal:
    return calc_price(
        Usage(**tokens), model, provider_id=provider_id, genai_request_timestamp=datetime.now(UTC)
    ).total_price


def test_posted_events_reach_prometheus_as_exact_dollars(
    daemon: TokenDaemon, prometheus_factory: Callable[..., Prometheus]
):
    gemini = dict(input_tokens=250_000, cache_read_tokens=200_000, output_tokens=4_000)
    claude = dict(input_tokens=12_000, cache_read_tokens=8_000, cache_write_tokens=2_000)
    claude["output_tokens"] = 1_000
    gpt = dict(input_tokens=1_000_000, output_tokens=100_000)
    batch = [
        usage("1", "gcp.gemini", "gemini-2.5-pro", "web", **gemini),
        usage("2", "anthropic", "claude-sonnet-4-5", "web", **claude),
        usage("3", "openai", "gpt-4o", "web", **gpt),
        usage("4", "openai", "in-house-model", "web", input_tokens=5, output_tokens=5),
    ]
    assert daemon.post(batch, token=GATEWAY_TOKEN) == (202, {"accepted": 4, "duplicates": 0})
    # A team token counts for its team, whatever the event claims.
    claims_web = usage("5", "anthropic", "claude-sonnet-4-5", "web", **claude)
    status, _ = daemon.post(claims_web, "application/cloudevents+json", token=TEAM_TOKEN)
    assert status == 202
    assert daemon.post(batch[:1], token=GATEWAY_TOKEN) == (202, {"accepted": 0, "duplicates": 1})
    assert daemon.post(batch, token="wrong")[0] == 401

    web = (
        catalogue("google", "gemini-2.5-pro", **gemini)
        + catalogue("anthropic", "claude-sonnet-4-5", **claude)
        + catalogue("openai", "gpt-4o", **gpt) * Decimal("0.8")
    )
    ml = catalogue("anthropic", "claude-sonnet-4-5", **claude)

    prometheus = prometheus_factory(
        scrape_configs=[
            {
                "job_name": "aifinops-tokens",
                "scrape_interval": "1s",
                "static_configs": [{"targets": [f"127.0.0.1:{daemon.port}"]}],
            }
        ]
    )
    result = prometheus.wait_for(
        "sum by (team) (aifinops_llm_cost_usd_total)", lambda r: len(r) == 2, timeout=60
    )
    by_team = {r["metric"]["team"]: Decimal(r["value"][1]) for r in result}
    assert abs(by_team["web"] - web) < Decimal("1e-9")
    assert abs(by_team["ml"] - ml) < Decimal("1e-9")

    def scalar(expr: str) -> float:
        return float(prometheus.query(expr)[0]["value"][1])

    assert (
        scalar('sum(aifinops_llm_tokens_total{team="web"})')
        == sum(t["input_tokens"] + t["output_tokens"] for t in (gemini, claude, gpt)) + 10
    )
    assert scalar('aifinops_llm_unpriced_requests_total{model="in-house-model"}') == 1
    assert scalar('aifinops_budget_usd{team="ml",period="daily"}') == 20
    assert scalar('aifinops_budget_usd{team="web",period="monthly"}') == 100.5
    assert scalar('aifinops_ingest_events_total{source="http",outcome="accepted"}') == 5
    assert scalar('aifinops_ingest_events_total{source="http",outcome="duplicate"}') == 1
    assert scalar(
        'aifinops_llm_price_usd_per_million_tokens{model="gpt-4o",token_type="input"}'
    ) == pytest.approx(2.5 * 0.8)
    assert scalar('up{job="aifinops-tokens"}') == 1


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_metrics_pass_promtool(daemon: TokenDaemon):
    daemon.post(
        [usage("p", "openai", "gpt-4o", "web", input_tokens=1, output_tokens=1)],
        token=GATEWAY_TOKEN,
    )
    text = daemon.metrics_text()
    assert "aifinops_llm_cost_usd_total{" in text
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=text.encode(), capture_output=True, timeout=30
    )
    assert result.returncode == 0, result.stderr.decode()


def test_auth_off_warns_at_start(tmp_path: Path):
    instance = TokenDaemon(tmp_path, "{}\n")
    instance.start()
    try:
        event = usage("w", "openai", "gpt-4o", "web", input_tokens=1, output_tokens=1)
        assert instance.post([event])[0] == 202
    finally:
        instance.stop()
    log = instance.process.log_tail(200)
    assert "authentication of POST /v1/events is off" in log


def test_bad_configuration_stops_the_daemon_with_every_problem(tmp_path: Path):
    (tmp_path / "prices.yaml").write_text(
        "overrides:\n  - {provider: openai, prices: {inptu: 1}}\n  - {provider: x}\n"
    )
    (tmp_path / "bad.yml").write_text(
        "llm:\n  budgets:\n    ml: {daily: -1}\n  cardinality: {max_values: 0}\n"
    )
    result = subprocess.run(
        [str(BIN), "--config.file", "bad.yml"], cwd=tmp_path, capture_output=True, timeout=60
    )
    assert result.returncode == 2
    err = result.stderr.decode()
    assert "llm.budgets.ml.daily: must be positive" in err
    assert "llm.cardinality.max_values: must be at least 1" in err
    (tmp_path / "good.yml").write_text("llm:\n  pricing:\n    overrides_file: prices.yaml\n")
    result = subprocess.run(
        [str(BIN), "--config.file", "good.yml"], cwd=tmp_path, capture_output=True, timeout=60
    )
    assert result.returncode == 2
    err = result.stderr.decode()
    assert "overrides[0].prices.inptu: unknown token type" in err
    assert "overrides[1]: needs prices or discount_percent" in err
