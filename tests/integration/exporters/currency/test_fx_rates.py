"""`aifinops-token-exporter` serves the exchange rate in force from a rates file it re-reads, and
reports a missing or stale rate as a failing collector instead of a silent 1.0."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aifinops.cli.demo.stack import wait_until
from support.token_daemon import TokenDaemon

pytestmark = pytest.mark.integration


def test_rate_gauge_follows_the_rates_file(tmp_path):
    today = datetime.now(UTC).date()
    rates = tmp_path / "usd-gbp.csv"
    rates.write_text(f"from,rate\n{today - timedelta(days=1)},0.7893\n")
    config = (
        "currency:\n"
        "  code: GBP\n"
        f"  rates_file: {rates}\n"
        "  max_rate_age_days: 3\n"
        "  reload_interval_seconds: 1\n"
    )
    daemon = TokenDaemon(tmp_path / "token", config)
    daemon.start()
    try:
        assert daemon.sample("aifinops_fx_rate", currency="GBP") == 0.7893
        assert daemon.sample("aifinops_collector_success", collector="fx_rates") == 1
        # The operator's refresh: a new rate from today, read without a restart.
        rates.write_text(f"from,rate\n{today - timedelta(days=1)},0.7893\n{today},0.7951\n")
        wait_until(
            lambda: daemon.sample("aifinops_fx_rate", currency="GBP") == 0.7951,
            15,
            "the new rate to be served",
        )
        # A file whose latest rate is older than max_rate_age_days: stale, no gauge, collector 0.
        rates.write_text(f"from,rate\n{today - timedelta(days=10)},0.7893\n")
        wait_until(
            lambda: daemon.sample("aifinops_collector_success", collector="fx_rates") == 0,
            15,
            "the stale rate to fail the collector",
        )
        assert daemon.sample("aifinops_fx_rate") is None
        # The exporter keeps serving.
        assert daemon.sample("aifinops_build_info") == 1
    finally:
        daemon.stop()
