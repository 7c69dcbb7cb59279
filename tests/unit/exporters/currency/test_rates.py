"""Currency: effective-dated rates from the config or a rates file, the rate in force at an instant,
typed errors where none applies, and the gauge the exporters serve."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from aifinops.exporters.config import Config, CurrencyConfig
from aifinops.exporters.currency import NoRateError, RateSchedule, RatesFileError, parse_rates
from aifinops.exporters.currency.source import FxRateCollector, FxRateSource, load_schedule
from aifinops.exporters.runtime.config import ConfigError, load_config
from aifinops.exporters.runtime.poll import Poller
from aifinops.exporters.runtime.selfmetrics import CollectorHealth, SelfCollector

GBP_YAML = """
currency:
  code: GBP
  rates:
    - {from: 2026-11-01, rate: 0.7893}
    - {from: "2026-12-01T12:00:00Z", rate: 0.8012}
"""


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def load(tmp_path, text, environ=None):
    path = tmp_path / "aifinops.yml"
    path.write_text(text)
    return load_config(Config, path, environ=environ or {})


def test_defaults_are_us_dollars_at_exactly_one():
    config = load_config(Config, None, environ={})
    assert config.currency.code == "USD"
    rate = RateSchedule.from_config(config.currency).rate_at(at("2020-01-01T00:00:00Z"))
    assert rate.rate == Decimal(1)


def test_rate_in_force_is_the_latest_started_one_exactly(tmp_path):
    schedule = RateSchedule.from_config(load(tmp_path, GBP_YAML).currency)
    assert schedule.rate_at(at("2026-11-01T00:00:00Z")).rate == Decimal("0.7893")
    assert schedule.rate_at(at("2026-12-01T11:59:59Z")).rate == Decimal("0.7893")
    assert schedule.rate_at(at("2026-12-01T12:00:00Z")).rate == Decimal("0.8012")
    assert schedule.rate_at(at("2027-06-01T00:00:00Z")).rate == Decimal("0.8012")
    # Exact: no binary float, no 28-digit rounding.
    usd = Decimal("123456789.123456789123456789")
    converted = schedule.convert(usd, at("2026-11-15T00:00:00Z"))
    assert Fraction(converted) == Fraction(usd) * Fraction("0.7893")
    assert str(schedule.convert(Decimal("0.000001"), at("2026-11-15T00:00:00Z"))) == "7.893E-7"


def test_no_rate_before_the_first_is_an_error_never_one(tmp_path):
    schedule = RateSchedule.from_config(load(tmp_path, GBP_YAML).currency)
    with pytest.raises(NoRateError, match=r"USD->GBP.*first rate starts 2026-11-01"):
        schedule.rate_at(at("2026-10-31T23:59:59Z"))


def test_a_rate_past_its_maximum_age_no_longer_applies():
    schedule = RateSchedule(
        "EUR",
        (parse_rates([{"from": "2026-11-01", "rate": "0.92"}])[0]),
        max_age=timedelta(days=3),
    )
    assert schedule.rate_at(at("2026-11-04T00:00:00Z")).rate == Decimal("0.92")
    with pytest.raises(NoRateError, match="older than 3 days"):
        schedule.rate_at(at("2026-11-04T00:00:01Z"))


def test_every_bad_rate_is_listed_by_path(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load(
            tmp_path,
            """
currency:
  code: gbp
  max_rate_age_days: 0
  rates:
    - {from: 2026-11-01, rate: 0}
    - {from: 2026-12-01, rate: 0.8}
    - {from: 2026-11-15, rate: 0.81}
    - {from: someday, rate: 0.8}
    - {rate: 0.8}
    - {from: 2027-01-01, rate: one}
""",
        )
    problems = caught.value.problems
    assert "currency.code: must be 3 upper-case letters (ISO 4217)" in problems
    assert "currency.max_rate_age_days: must be positive" in problems
    assert "currency.rates[0].rate: must be positive" in problems
    assert "currency.rates[2].from: must be later than the previous rate's from" in problems
    assert any(p.startswith("currency.rates[3].from: must be a date") for p in problems)
    assert "currency.rates[4].from: required" in problems
    assert any(p.startswith("currency.rates[5].rate: must be a decimal number") for p in problems)


def test_a_currency_other_than_usd_needs_rates(tmp_path):
    with pytest.raises(ConfigError, match=r"currency.rates: required for currency GBP"):
        load(tmp_path, "currency: {code: GBP}")
    # The code alone can come from the environment, with the rates in a file.
    rates = tmp_path / "rates.csv"
    rates.write_text("from,rate\n2026-11-01,0.7893\n")
    config = load(
        tmp_path, f"currency: {{rates_file: {rates}}}", environ={"AIFINOPS_CURRENCY_CODE": "GBP"}
    )
    assert load_schedule(config.currency).rate_at(at("2026-11-02T00:00:00Z")).rate == Decimal(
        "0.7893"
    )


def test_rates_file_in_yaml_or_csv_and_its_errors(tmp_path):
    yaml_file = tmp_path / "rates.yaml"
    yaml_file.write_text("rates:\n  - {from: 2026-11-01, rate: 0.7893}\n")
    config = CurrencyConfig(code="GBP", rates_file=str(yaml_file))
    assert load_schedule(config).rates[0].rate == Decimal("0.7893")
    bad = tmp_path / "bad.csv"
    bad.write_text("from,rate\n2026-11-02,0.79\n2026-11-01,0.78\n")
    with pytest.raises(RatesFileError, match=r"rates\[1\].from: must be later"):
        load_schedule(CurrencyConfig(code="GBP", rates_file=str(bad)))
    with pytest.raises(RatesFileError, match="cannot read"):
        load_schedule(CurrencyConfig(code="GBP", rates_file=str(tmp_path / "absent.csv")))


def test_gauge_and_health_follow_the_file_and_the_clock(tmp_path):
    rates = tmp_path / "rates.csv"
    rates.write_text("from,rate\n2026-11-01,0.7893\n")
    now = [at("2026-11-02T00:00:00Z")]
    source = FxRateSource(
        CurrencyConfig(code="GBP", rates_file=str(rates), max_rate_age_days=2),
        clock=lambda: now[0],
    )
    health = CollectorHealth()
    poller = Poller("fx_rates", source, 60, health)
    registry = CollectorRegistry()
    registry.register(SelfCollector(health))
    registry.register(FxRateCollector(lambda: poller.latest))

    def scrape() -> str:
        poller.poll_once()
        return generate_latest(registry).decode()

    text = scrape()
    assert 'aifinops_fx_rate{currency="GBP"} 0.7893' in text
    assert 'aifinops_collector_success{collector="fx_rates"} 1.0' in text
    # Stale: the last rate is older than max_rate_age_days. No gauge, collector failing.
    now[0] = at("2026-11-04T00:00:01Z")
    text = scrape()
    assert "aifinops_fx_rate{" not in text
    assert 'aifinops_collector_success{collector="fx_rates"} 0.0' in text
    # The operator refreshes the file: it is read again without a restart.
    rates.write_text("from,rate\n2026-11-01,0.7893\n2026-11-04,0.7901\n")
    stat = rates.stat()
    os.utime(rates, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    text = scrape()
    assert 'aifinops_fx_rate{currency="GBP"} 0.7901' in text
    assert 'aifinops_collector_success{collector="fx_rates"} 1.0' in text
    # A broken rewrite is an error too, not the previous rates.
    rates.write_text("from,rate\n2026-11-04,-1\n")
    os.utime(rates, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    text = scrape()
    assert "aifinops_fx_rate{" not in text
    assert 'aifinops_collector_success{collector="fx_rates"} 0.0' in text


def test_schedule_needs_an_aware_instant():
    schedule = RateSchedule("GBP", parse_rates([{"from": "2026-11-01", "rate": 1}])[0])
    with pytest.raises(ValueError):
        schedule.rate_at(datetime(2026, 11, 2))
    assert schedule.rate_at(datetime(2026, 11, 2, tzinfo=UTC)).rate == 1
