"""Smoke tests proving the services the suite runs are real: broker, Prometheus, Alertmanager."""

from __future__ import annotations

import time
from collections import defaultdict

import pytest
from prometheus_client import CollectorRegistry

from aifinops.exporters.runtime.http import HTTPServer
from aifinops.exporters.runtime.selfmetrics import CollectorHealth, SelfCollector
from support.kafka_helpers import consume, create_topics, produce

pytestmark = pytest.mark.integration


def test_keyed_round_trip_through_a_consumer_group_on_ten_partitions(
    kafka_session_logs, topic_name
):
    bootstrap = kafka_session_logs.bootstrap
    topic = topic_name("smoke")
    create_topics(bootstrap, {topic: 10})
    keys = [f"team-{i % 13}/app".encode() for i in range(300)]
    sent = produce(
        bootstrap,
        topic,
        [(k, f"{i}".encode(), [("aifinops-counted-in", b"test")]) for i, k in enumerate(keys)],
    )
    assert sent == 300

    got = consume(bootstrap, topic, 300, group_id=f"g-{topic}")

    assert sorted(int(r.value) for r in got) == list(range(300))
    partitions_per_key = defaultdict(set)
    order_per_key = defaultdict(list)
    for r in got:
        partitions_per_key[r.key].add(r.partition)
        order_per_key[r.key].append(int(r.value))
    assert all(len(p) == 1 for p in partitions_per_key.values()), "a key spread over partitions"
    assert len({r.partition for r in got}) > 1, "all keys landed on one partition"
    assert all(v == sorted(v) for v in order_per_key.values()), "order per key not kept"
    assert all(r.headers == (("aifinops-counted-in", b"test"),) for r in got)
    # The group committed: a second member of the same group starts after what was read.
    again = consume(bootstrap, topic, 1, timeout=3, group_id=f"g-{topic}")
    assert again == []


def test_prometheus_scrapes_a_target_the_test_started(prometheus_factory):
    health = CollectorHealth()
    health.record("smoke", True, 0.25)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SelfCollector(health, version="9.9.9"))
    target = HTTPServer("127.0.0.1:0", registry)
    target.start()
    try:
        prom = prometheus_factory(
            scrape_configs=[
                {
                    "job_name": "smoke",
                    "scrape_interval": "1s",
                    "static_configs": [{"targets": [f"127.0.0.1:{target.port}"]}],
                }
            ]
        )
        result = prom.wait_for('aifinops_build_info{job="smoke"}', timeout=30)
        assert result[0]["metric"]["version"] == "9.9.9"
        assert result[0]["value"][1] == "1"
        up = prom.query('up{job="smoke"}')
        assert up[0]["value"][1] == "1"
        duration = prom.query('aifinops_collector_duration_seconds{collector="smoke"}')
        assert float(duration[0]["value"][1]) == 0.25
    finally:
        target.stop()


def test_alertmanager_delivers_an_alert_to_the_test_webhook(alertmanager_factory, webhook):
    am = alertmanager_factory(
        {
            "route": {
                "receiver": "hook",
                "group_by": ["alertname"],
                "group_wait": "0s",
                "group_interval": "1s",
            },
            "receivers": [{"name": "hook", "webhook_configs": [{"url": webhook.url}]}],
        }
    )
    start = time.monotonic()
    am.post_alerts(
        [{"labels": {"alertname": "AIFinOpsSmoke", "team": "ml"}, "annotations": {"summary": "s"}}]
    )
    bodies = webhook.wait_for(lambda b: len(b) >= 1, timeout=20)
    body = bodies[0]
    assert body["version"] == "4"
    assert body["status"] == "firing"
    assert body["alerts"][0]["labels"] == {"alertname": "AIFinOpsSmoke", "team": "ml"}
    assert time.monotonic() - start < 20
