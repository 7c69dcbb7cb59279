"""The token exporter's builder: what the daemon serves and runs follows the config, and what
tripwires and the publisher see is the same ingest that counts."""

from __future__ import annotations

from dataclasses import replace

import pytest

from aifinops.exporters.config import Config, RateLimitConfig, TripwiresConfig
from aifinops.exporters.runtime.config import ConfigError
from aifinops.exporters.runtime.selfmetrics import CollectorHealth
from aifinops.exporters.tokens.app import build_token_exporter
from aifinops.exporters.tripwire import AlertmanagerNotifier


def families(exporter):
    return {family.name for c in exporter.collectors for family in c.collect()}


def routes(exporter):
    return [(r.method, r.path) for r in exporter.routes]


def test_the_default_exporter_serves_events_and_spans_and_checks_tripwires():
    exporter = build_token_exporter(Config(), CollectorHealth())
    assert routes(exporter) == [("POST", "/v1/events"), ("POST", "/v1/traces")]
    (notifier,) = [c for c in exporter.components if isinstance(c, AlertmanagerNotifier)]
    # The tripwires see every event the ingest counts.
    assert exporter.ingest.on_counted == notifier.observe
    assert "aifinops_fx_rate" in families(exporter)
    assert "aifinops_ingest_rate_limited_events" not in families(exporter)


def test_options_add_and_remove_what_is_served():
    config = Config()
    config = replace(
        config,
        tokens=replace(
            config.tokens,
            otlp=replace(config.tokens.otlp, traces=False, metrics=True),
            rate_limit=RateLimitConfig(events_per_second=10),
        ),
        tripwires=TripwiresConfig(enabled=False),
    )
    exporter = build_token_exporter(config, CollectorHealth())
    assert routes(exporter) == [("POST", "/v1/events"), ("POST", "/v1/metrics")]
    assert not [c for c in exporter.components if isinstance(c, AlertmanagerNotifier)]
    assert exporter.ingest.on_counted is None
    assert "aifinops_ingest_rate_limited_events" in families(exporter)


def test_an_unusable_override_file_is_a_config_error(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text("overrides: [{provider: openai}]\n")
    config = Config()
    config = replace(
        config,
        llm=replace(config.llm, pricing=replace(config.llm.pricing, overrides_file=str(path))),
    )
    with pytest.raises(ConfigError, match="needs prices or discount_percent"):
        build_token_exporter(config, CollectorHealth())
