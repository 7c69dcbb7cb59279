"""The bridge serves the exchange rate in force like the token exporter: a central Prometheus that
scrapes only bridges still gets `aifinops_fx_rate` for the rule pack in the reporting currency."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from aifinops.bridge.app import build_bridge
from aifinops.exporters.config import Config
from aifinops.exporters.runtime.config import load_config
from aifinops.exporters.runtime.selfmetrics import CollectorHealth


def _scrape(config_text: str, tmp_path: Path) -> tuple[str, CollectorHealth]:
    path = tmp_path / "aifinops.yaml"
    path.write_text(config_text)
    config = load_config(Config, path, environ={})
    health = CollectorHealth()
    bridge = build_bridge(config, health)
    try:
        for component in bridge.pollers:
            component.poll_once()  # type: ignore[attr-defined]
        registry = CollectorRegistry()
        for collector in bridge.collectors:
            registry.register(collector)
        return generate_latest(registry).decode(), health
    finally:
        bridge.close()


GBP = "currency:\n  code: GBP\n  rates:\n    - {from: 2020-01-01, rate: 0.7893}\n"
BUDGETS = "llm:\n  budgets:\n    search: {daily: 288, monthly: 6000}\n"


def test_bridge_serves_the_rate_in_force(tmp_path: Path) -> None:
    text, health = _scrape(GBP, tmp_path)
    assert 'aifinops_fx_rate{currency="GBP"} 0.7893' in text
    assert health.snapshot()["fx_rates"].success is True


def test_bridge_without_a_rate_in_force_serves_none_and_fails_the_collector(
    tmp_path: Path,
) -> None:
    text, health = _scrape(
        "currency:\n  code: GBP\n  rates:\n    - {from: 2999-01-01, rate: 0.7893}\n", tmp_path
    )
    assert "aifinops_fx_rate{" not in text
    assert health.snapshot()["fx_rates"].success is False


def test_budgets_are_in_the_reporting_currency_when_it_is_not_usd(tmp_path: Path) -> None:
    text, _ = _scrape(GBP + BUDGETS, tmp_path)
    assert 'aifinops_budget{currency="GBP",period="daily",team="search"} 288.0' in text
    assert 'aifinops_budget{currency="GBP",period="monthly",team="search"} 6000.0' in text
    assert "aifinops_budget_usd{" not in text


def test_budgets_stay_in_dollars_by_default(tmp_path: Path) -> None:
    text, _ = _scrape(BUDGETS, tmp_path)
    assert 'aifinops_budget_usd{period="daily",team="search"} 288.0' in text
    assert "aifinops_budget{" not in text
