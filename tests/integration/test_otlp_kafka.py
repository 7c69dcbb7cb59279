"""OTLP spans counted by an edge token exporter reach `ai-api-costs` and a central bridge counts them once."""

from __future__ import annotations

from pathlib import Path

import pytest

from aifinops.cli.stack import wait_until
from support.bridge_daemon import BridgeDaemon, bridge_config
from support.kafka_helpers import consume, create_topics
from support.otlp import post, span, traces
from support.token_daemon import TokenDaemon

pytestmark = pytest.mark.integration


def test_spans_published_to_kafka_are_counted_once_by_a_bridge_elsewhere(
    request: pytest.FixtureRequest, kafka_session_logs, topic_name, tmp_path: Path
):
    bootstrap = kafka_session_logs.bootstrap
    topics = {"usage": topic_name("usage"), "gpu": topic_name("gpu")}
    topics["anomalies"] = topic_name("anomalies")
    topics["usage_dlq"] = topics["usage"] + ".dlq"
    topics["gpu_dlq"] = topics["gpu"] + ".dlq"
    create_topics(
        bootstrap,
        {topics["usage"]: 10, topics["gpu"]: 10, topics["anomalies"]: 3}
        | {topics["usage_dlq"]: 1, topics["gpu_dlq"]: 1},
    )
    exporter = TokenDaemon(
        tmp_path / "edge",
        f"""
cluster: edge-cluster
kafka:
  bootstrap_servers: [{bootstrap}]
  topics:
    usage: {{name: {topics["usage"]}}}
producer:
  spool_dir: {tmp_path / "spool"}
""",
    )
    exporter.start()
    request.addfinalizer(exporter.stop)
    bridge = BridgeDaemon(tmp_path / "central", bridge_config(bootstrap, topics, tmp_path))
    bridge.start()
    request.addfinalizer(bridge.stop)

    calls = [
        span(
            {
                "gen_ai.provider.name": "anthropic",
                "gen_ai.request.model": "claude-sonnet-4-5",
                "gen_ai.response.id": f"msg_kafka_{i}",
                "gen_ai.usage.input_tokens": 10_000 + i,
                "gen_ai.usage.cache_read.input_tokens": 4_000,
                "gen_ai.usage.cache_creation.input_tokens": 1_000,
                "gen_ai.usage.output_tokens": 300,
                "aifinops.team": "edge-team",
            }
        )
        for i in range(20)
    ]
    body = traces(calls, {"service.name": "agent"}).SerializeToString()
    assert post(exporter.port, "/v1/traces", body)[0] == 200
    assert post(exporter.port, "/v1/traces", body, gzipped=True)[0] == 200  # a retry
    assert len(consume(bootstrap, topics["usage"], 20, timeout=60)) == 20
    # Read again after a pause: a late 21st message would be a duplicate published.
    records = consume(bootstrap, topics["usage"], 21, timeout=5)
    assert len(records) == 20
    assert {r.key for r in records} == {b"edge-team/agent"}

    def counted() -> bool:
        return bridge.sample("aifinops_llm_requests_total", team="edge-team") == 20

    wait_until(counted, 60, "the bridge to count the 20 calls")
    cost_edge = exporter.sample("aifinops_llm_cost_usd_total", team="edge-team")
    assert cost_edge
    assert bridge.sample("aifinops_llm_cost_usd_total", team="edge-team") == cost_edge
