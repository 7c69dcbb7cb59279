"""The token exporter never counts what it cannot hand on: lone surrogates, a full spool, and
label mixes beyond the series budget (issue 19), against the real daemon and a real broker."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from aifinops.cli.demo.stack import KafkaBroker, wait_until
from aifinops.exporters.cardinality import OTHER
from aifinops.exporters.config import CardinalityConfig
from aifinops.exporters.events import USAGE_TYPE, make_event
from support.kafka_helpers import consume
from support.token_daemon import BATCH, TokenDaemon

pytestmark = pytest.mark.integration


def usage(event_id: str, **data: object) -> dict:
    return make_event(
        USAGE_TYPE,
        "it-gateway",
        {
            "provider": "openai",
            "model": "gpt-4o",
            "team": "ml",
            "app": "chat",
            "input_tokens": 100,
            "output_tokens": 10,
            **data,
        },
        event_id=event_id,
    )


@pytest.fixture
def plain_daemon(tmp_path: Path) -> Iterator[TokenDaemon]:
    daemon = TokenDaemon(tmp_path / "exporter")
    daemon.start()
    yield daemon
    daemon.stop()


def test_a_lone_surrogate_anywhere_is_refused_naming_the_field(plain_daemon: TokenDaemon) -> None:
    # json.dumps (ensure_ascii) writes "\ud800" as the escape a hostile client would send.
    in_subject = {**usage("s-1"), "subject": "x\ud800"}
    in_ignored = usage("s-2", note={"deep": ["ok", "\udfff"]})
    status, body = plain_daemon.post(in_subject, "application/cloudevents+json")
    assert status == 400, body
    assert body[0]["field"] == "subject"
    assert "surrogate" in body[0]["reason"]
    status, body = plain_daemon.post([usage("s-ok"), in_ignored])
    assert status == 400, body
    assert [(p["index"], p["field"]) for p in body] == [(1, "data.note.deep[1]")]
    # Nothing of either request was counted; both are counted as rejected.
    assert plain_daemon.sample("aifinops_llm_requests_total") is None
    assert plain_daemon.sample("aifinops_ingest_events_total", outcome="accepted") == 0
    assert plain_daemon.sample("aifinops_ingest_events_total", outcome="rejected") == 3
    # A surrogate pair (an escaped emoji) is one character, counted as usual.
    assert json.dumps("\U0001f600") == '"\\ud83d\\ude00"'
    status, body = plain_daemon.post([usage("s-3", note="\U0001f600")])
    assert status == 202, body
    assert plain_daemon.sample("aifinops_llm_requests_total") == 1


def _post_raw(daemon: TokenDaemon, events: list[dict]) -> tuple[int, dict[str, str], object]:
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    try:
        conn.request("POST", "/v1/events", body=json.dumps(events), headers={"Content-Type": BATCH})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), json.loads(resp.read() or b"null")
    finally:
        conn.close()


def test_a_full_spool_refuses_the_request_and_loses_nothing_it_counted(
    kafka_broker: KafkaBroker, topic_name, tmp_path: Path
) -> None:
    topic = topic_name("ai-api-costs")
    config = f"""
cluster: it-cluster
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
"""
    daemon = TokenDaemon(tmp_path / "exporter", config)
    daemon.start()
    try:
        kafka_broker.stop()
        accepted: list[str] = []
        refused: tuple[int, dict[str, str], object] | None = None
        for n in range(200):
            batch = [usage(f"full-{n}-{i}", app=f"app-{i % 7}") for i in range(100)]
            status, headers, body = _post_raw(daemon, batch)
            if status == 503:
                refused = (status, headers, body)
                break
            assert status == 202, body
            accepted += [e["id"] for e in batch]
        assert refused is not None, "a 1 MiB spool never filled"
        _, headers, _ = refused
        assert int(headers["Retry-After"]) > 0
        # Nothing of the refused request was counted; exactly its 100 events count as refused.
        assert daemon.sample("aifinops_llm_requests_total") == len(accepted)
        assert daemon.sample("aifinops_ingest_events_total", outcome="accepted") == len(accepted)
        assert daemon.sample("aifinops_bridge_refused_messages_total", topic=topic) == 100
        kafka_broker.start()
        wait_until(
            lambda: daemon.sample("aifinops_bridge_spooled_messages") == 0, 60, "the spool to drain"
        )
        records = consume(kafka_broker.bootstrap, topic, len(accepted), timeout=60)
        assert daemon.sample("aifinops_bridge_dropped_messages_total") is None
        # Room again: the gateway's retry is accepted.
        status, _, body = _post_raw(daemon, [usage("after-1")])
        assert status == 202, body
    finally:
        daemon.stop()
    # Every counted event reached Kafka; none was dropped.
    assert sorted(json.loads(r.value)["id"] for r in records) == sorted(accepted)


def test_500_teams_by_400_apps_stay_within_the_series_budget(plain_daemon: TokenDaemon) -> None:
    budget = CardinalityConfig().max_series
    for team in range(500):
        batch = [
            usage(f"b-{team}-{app}", team=f"team-{team}", app=f"app-{app}", output_tokens=1)
            for app in range(400)
        ]
        status, body = plain_daemon.post(batch)
        assert status == 202, body
    families = {
        family.name: family.samples
        for family in text_string_to_metric_families(plain_daemon.metrics_text())
    }
    tokens = families["aifinops_llm_tokens"]
    for name in ("aifinops_llm_tokens", "aifinops_llm_cost_usd", "aifinops_llm_requests"):
        # The one all-__other__ label set may come on top of the budget.
        assert len(families[name]) <= budget + 4, name
    admitted = budget // 4
    folded = 200_000 - admitted
    output = {s.labels["team"]: s.value for s in tokens if s.labels["token_type"] == "output"}
    assert output[OTHER] == folded
    # Nothing is lost: every event's tokens are counted, the folded ones under __other__.
    assert sum(s.value for s in tokens if s.labels["token_type"] == "output") == 200_000
    overflow = {s.labels["metric"]: s.value for s in families["aifinops_series_overflow"]}
    assert overflow["aifinops_llm_tokens_total"] == folded
    assert overflow["aifinops_llm_requests_total"] == folded


def test_the_kafka_producer_reports_its_health(
    kafka_broker: KafkaBroker, topic_name, tmp_path: Path
) -> None:
    config = f"""
kafka:
  bootstrap_servers: [{kafka_broker.bootstrap}]
  topics:
    usage: {{name: {topic_name("ai-api-costs")}}}
producer:
  spool_dir: {tmp_path / "spool"}
  delivery_timeout_ms: 1500
  retry_backoff_max_ms: 500
"""
    daemon = TokenDaemon(tmp_path / "exporter", config)
    daemon.start()

    def health() -> float | None:
        return daemon.sample("aifinops_collector_success", collector="kafka_producer")

    try:
        wait_until(lambda: health() == 1, 30, "the producer to report Kafka reachable")
        kafka_broker.stop()
        assert daemon.post([usage("h-1")])[0] == 202
        wait_until(lambda: health() == 0, 30, "the producer to report Kafka unreachable")
        kafka_broker.start()
        wait_until(lambda: health() == 1, 60, "the producer to report Kafka back")
    finally:
        daemon.stop()
