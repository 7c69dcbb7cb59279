"""OTLP spans counted by an edge token exporter reach `ai-api-costs` and a central bridge counts them once."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.rpc.status_pb2 import Status

from aifinops.cli.demo.stack import wait_until
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


def test_a_full_spool_answers_503_and_the_collectors_retry_counts_once(
    kafka_broker, topic_name, tmp_path: Path
):
    topic = topic_name("ai-api-costs")
    exporter = TokenDaemon(
        tmp_path / "exporter",
        f"""
kafka:
  bootstrap_servers: [{kafka_broker.bootstrap}]
  topics:
    usage: {{name: {topic}}}
producer:
  spool_dir: {tmp_path / "spool"}
  spool_max_bytes: 1048576
  queue_size: 50
  delivery_timeout_ms: 1500
  retry_backoff_max_ms: 500
""",
    )
    exporter.start()
    try:
        kafka_broker.stop()
        refused = None
        accepted = 0
        for n in range(300):
            calls = [
                span(
                    {
                        "gen_ai.provider.name": "openai",
                        "gen_ai.request.model": "gpt-4o",
                        "gen_ai.response.id": f"chatcmpl-full-{n}-{i}",
                        "gen_ai.usage.input_tokens": 1_000,
                        "gen_ai.usage.output_tokens": 100,
                        "aifinops.team": f"team-{i % 5}",
                    }
                )
                for i in range(100)
            ]
            body = traces(calls, {"service.name": "agent"}).SerializeToString()
            status, headers, payload = post(exporter.port, "/v1/traces", body)
            if status == 503:
                refused = (headers, payload, body)
                break
            assert status == 200, payload
            accepted += 100
        assert refused is not None, "a 1 MiB spool never filled"
        headers, payload, body = refused
        assert int(headers["retry-after"]) > 0
        status_message = Status()
        status_message.ParseFromString(payload)
        assert "spool has no room" in status_message.message
        # Nothing of the refused request was counted.
        assert exporter.sample("aifinops_llm_requests_total") == accepted
        kafka_broker.start()
        wait_until(
            lambda: exporter.sample("aifinops_bridge_spooled_messages") == 0,
            60,
            "the spool to drain",
        )
        # The Collector's retry of the refused request is counted, once.
        assert post(exporter.port, "/v1/traces", body)[0] == 200
        assert post(exporter.port, "/v1/traces", body)[0] == 200
        assert exporter.sample("aifinops_llm_requests_total") == accepted + 100
    finally:
        exporter.stop()
