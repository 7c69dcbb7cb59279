"""Exporter to Kafka to bridge through a broker outage: the token exporter publishes while the broker is
stopped and restarted, and a central bridge (another cluster) ends up with the exporter's exact totals."""

from __future__ import annotations

import pytest

from aifinops.cli.demo.stack import wait_until
from aifinops.exporters.events import USAGE_TYPE, make_event
from support.bridge_daemon import BridgeDaemon, bridge_config
from support.token_daemon import TokenDaemon

pytestmark = pytest.mark.integration


def batch(prefix: str, n: int) -> list[dict]:
    return [
        make_event(
            USAGE_TYPE,
            "outage-gateway",
            {
                "provider": "openai",
                "model": "gpt-4o",
                "team": f"team-{i % 3}",
                "app": "chat",
                "input_tokens": 1000 + i,
                "output_tokens": 100,
            },
            event_id=f"{prefix}-{i}",
        )
        for i in range(n)
    ]


def test_events_published_through_a_broker_outage_all_reach_the_bridge(kafka_broker, tmp_path):
    topics = {
        "usage": "ai-api-costs",
        "gpu": "gpu-utilization-events",
        "anomalies": "cost-anomalies",
    }
    exporter = TokenDaemon(
        tmp_path / "exporter",
        f"""
cluster: edge
kafka:
  bootstrap_servers: [{kafka_broker.bootstrap}]
producer:
  spool_dir: {tmp_path / "spool"}
  delivery_timeout_ms: 2000
  retry_backoff_max_ms: 1000
""",
    )
    bridge = BridgeDaemon(
        tmp_path / "bridge", bridge_config(kafka_broker.bootstrap, topics, tmp_path)
    )
    exporter.start()
    bridge.start(joined=False)
    try:
        for i in range(0, 100, 20):
            assert exporter.post(batch("before", 100)[i : i + 20])[0] == 202
        wait_until(
            lambda: bridge.sample("aifinops_llm_requests_total") >= 100, 60, "the first events"
        )

        kafka_broker.stop()
        for i in range(0, 300, 20):
            assert exporter.post(batch("during", 300)[i : i + 20])[0] == 202
        wait_until(lambda: exporter.sample("aifinops_bridge_spooled_messages") > 0, 30, "spooling")
        kafka_broker.start()  # memory storage: it comes back empty, without the first 100

        wait_until(
            lambda: exporter.sample("aifinops_bridge_spooled_messages") == 0,
            60,
            "the spool to drain",
        )
        wait_until(
            lambda: bridge.sample("aifinops_llm_requests_total") >= 400,
            90,
            "every event at the bridge",
        )
        assert bridge.sample("aifinops_llm_requests_total") == 400
        for team in ("team-0", "team-1", "team-2"):
            assert bridge.sample("aifinops_llm_cost_usd_total", team=team) == pytest.approx(
                exporter.sample("aifinops_llm_cost_usd_total", team=team), abs=1e-9
            )
        assert bridge.sample("aifinops_bridge_messages_total", result="skipped") == 0
        assert not exporter.sample("aifinops_bridge_dropped_messages_total")
    finally:
        bridge.stop()
        exporter.stop()
