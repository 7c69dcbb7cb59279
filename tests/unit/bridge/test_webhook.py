"""The Alertmanager webhook handler: one event per alert, 200 only when Kafka stored all, 503 else, 400 for junk."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aifinops.bridge.transport import SendResult, TransportError
from aifinops.bridge.webhook import AlertForwarder
from aifinops.exporters.events import ANOMALY_TYPE
from aifinops.exporters.runtime.http import Request

RECEIVED = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class Client:
    def __init__(self, results=None) -> None:
        self.results = results
        self.sent = []
        self.closed = 0

    def send_batch(self, messages):
        self.sent.extend(messages)
        return self.results or [SendResult(True)] * len(messages)

    def close(self, timeout=5.0):
        self.closed += 1


def alert(fingerprint: str, status: str = "firing") -> dict:
    return {
        "status": status,
        "labels": {"alertname": "AIFinOpsBudgetBurnFast", "team": "ml"},
        "annotations": {"summary": "burning"},
        "startsAt": "2025-03-01T11:59:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prom/graph",
        "fingerprint": fingerprint,
    }


def request(payload) -> Request:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return Request("POST", "/v1/alertmanager", {}, {}, body, "127.0.0.1")


def notification(*alerts) -> dict:
    return {"version": "4", "status": "firing", "receiver": "bridge", "alerts": list(alerts)}


def forwarder(client) -> AlertForwarder:
    factory = client if callable(client) else (lambda: client)
    return AlertForwarder(factory, "cost-anomalies", "aifinops-bridge/eu", clock=lambda: RECEIVED)


def test_each_alert_becomes_one_keyed_anomaly_event_and_200():
    client = Client()
    fw = forwarder(client)
    response = fw.handle(request(notification(alert("aaa"), alert("bbb", "resolved"))))
    assert response.status == 200
    assert json.loads(response.body) == {"forwarded": 2}
    assert [m.key for m in client.sent] == [b"aaa", b"bbb"]
    assert {m.topic for m in client.sent} == {"cost-anomalies"}
    event = json.loads(client.sent[0].value)
    assert event["type"] == ANOMALY_TYPE
    assert event["source"] == "aifinops-bridge/eu"
    assert event["subject"] == "AIFinOpsBudgetBurnFast"
    assert event["data"] == {**alert("aaa"), "receivedAt": "2025-03-01T12:00:00Z"}
    assert fw.stats.snapshot() == {"firing": 1, "resolved": 1, "failed": 0}


def test_a_retried_notification_gives_the_same_event_ids():
    client = Client()
    fw = forwarder(client)
    fw.handle(request(notification(alert("aaa"))))
    fw.handle(request(notification(alert("aaa"))))
    fw.handle(request(notification(alert("aaa", "resolved"))))
    ids = [json.loads(m.value)["id"] for m in client.sent]
    assert ids[0] == ids[1] != ids[2]


def test_any_unacknowledged_alert_makes_it_503_and_the_client_is_replaced():
    client = Client([SendResult(True), SendResult(False, "KafkaTimeoutError: x")])
    built = []

    def factory():
        built.append(client)
        return client

    fw = forwarder(factory)
    assert fw.handle(request(notification(alert("a"), alert("b")))).status == 503
    assert client.closed == 1
    assert fw.stats.snapshot()["failed"] == 2
    fw.handle(request(notification(alert("c"))))
    assert len(built) == 2


def test_an_unreachable_kafka_is_503():
    def factory():
        raise TransportError("no broker")

    assert forwarder(factory).handle(request(notification(alert("a")))).status == 503


def test_malformed_notifications_are_400_with_every_problem():
    fw = forwarder(Client())
    assert fw.handle(request(b"{")).status == 400
    response = fw.handle(request({"version": "3", "alerts": [{"status": "pending"}, 5]}))
    assert response.status == 400
    fields = [e["field"] for e in json.loads(response.body)["errors"]]
    assert fields == [
        "version",
        "alerts[0].fingerprint",
        "alerts[0].status",
        "alerts[0].labels",
        "alerts[1]",
    ]
