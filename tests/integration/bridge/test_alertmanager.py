"""A real Alertmanager notifying the bridge: firing and resolved alerts arrive on cost-anomalies."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from aifinops.cli.demo.stack import free_port, wait_until
from aifinops.exporters.events import ANOMALY_TYPE
from support.bridge_daemon import BridgeDaemon, bridge_config
from support.kafka_helpers import consume, create_topics

pytestmark = pytest.mark.integration


def rfc3339(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def test_firing_and_resolved_alerts_arrive_on_cost_anomalies(
    kafka_session_logs, topic_name, tmp_path, alertmanager_factory
):
    bootstrap = kafka_session_logs.bootstrap
    topics = {
        "usage": topic_name("usage"),
        "gpu": topic_name("gpu"),
        "anomalies": topic_name("anomalies"),
    }
    create_topics(bootstrap, {topics["anomalies"]: 3})
    bridge = BridgeDaemon(tmp_path / "bridge", bridge_config(bootstrap, topics, tmp_path))
    bridge.start(joined=False)
    try:
        am = alertmanager_factory(
            {
                "route": {
                    "receiver": "bridge",
                    "group_by": ["alertname", "team"],
                    "group_wait": "0s",
                    "group_interval": "1s",
                    "repeat_interval": "1h",
                },
                "receivers": [
                    {
                        "name": "bridge",
                        "webhook_configs": [
                            {"url": f"{bridge.url}/v1/alertmanager", "send_resolved": True}
                        ],
                    }
                ],
            }
        )
        now = datetime.now(UTC)
        alert = {
            "labels": {"alertname": "AIFinOpsLLMSpendSpike", "team": "ml", "severity": "critical"},
            "annotations": {"summary": "LLM spend spike", "description": "$12.50/h"},
            "startsAt": rfc3339(now),
            "endsAt": rfc3339(now + timedelta(hours=1)),
            "generatorURL": "http://prometheus/graph",
        }
        am.post_alerts([alert])
        wait_until(
            lambda: bridge.sample("aifinops_bridge_alerts_forwarded_total", status="firing") >= 1,
            60,
            "the firing notification",
        )
        am.post_alerts([{**alert, "endsAt": rfc3339(datetime.now(UTC))}])
        wait_until(
            lambda: bridge.sample("aifinops_bridge_alerts_forwarded_total", status="resolved") >= 1,
            60,
            "the resolved notification",
        )
        records = consume(bootstrap, topics["anomalies"], 2, timeout=30)
    finally:
        bridge.stop()

    events = [json.loads(r.value) for r in records]
    assert [e["data"]["status"] for e in events] == ["firing", "resolved"]
    assert all(e["type"] == ANOMALY_TYPE and e["specversion"] == "1.0" for e in events)
    fingerprint = events[0]["data"]["fingerprint"]
    assert fingerprint and all(e["data"]["fingerprint"] == fingerprint for e in events)
    assert {r.key for r in records} == {fingerprint.encode()}  # one alert stays in order
    assert {r.partition for r in records} == {records[0].partition}
    assert events[0]["data"]["labels"] == alert["labels"]
    assert events[0]["data"]["annotations"] == alert["annotations"]
    assert events[0]["subject"] == "AIFinOpsLLMSpendSpike"
    assert all("receivedAt" in e["data"] and e["data"]["startsAt"] for e in events)
    assert events[0]["id"] != events[1]["id"]


def test_the_webhook_answers_503_while_kafka_is_unreachable_and_400_to_garbage(tmp_path):
    topics = {"usage": "u", "gpu": "g", "anomalies": "a"}
    bridge = BridgeDaemon(
        tmp_path / "bridge", bridge_config(f"127.0.0.1:{free_port()}", topics, tmp_path)
    )
    bridge.start(joined=False)
    try:

        def post(body: bytes) -> int:
            request = urllib.request.Request(
                f"{bridge.url}/v1/alertmanager",
                data=body,
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as resp:
                    return resp.status
            except urllib.error.HTTPError as exc:
                return exc.code

        payload = {
            "version": "4",
            "status": "firing",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "X"},
                    "fingerprint": "abc",
                    "startsAt": "2024-01-01T00:00:00Z",
                }
            ],
        }
        assert post(json.dumps(payload).encode()) == 503
        assert bridge.sample("aifinops_bridge_alerts_forwarded_total", status="failed") == 1
        assert post(b"{}") == 400
        assert post(b"[") == 400
    finally:
        bridge.stop()
