"""`POST /v1/events` over real HTTP: content types, batches, every 4xx path, auth, dedupe, publishing."""

from __future__ import annotations

import http.client
import json
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from aifinops.exporters.config import AuthConfig, AuthToken, LLMConfig
from aifinops.exporters.events import USAGE_TYPE, make_event
from aifinops.exporters.llm import UsageIngest
from aifinops.exporters.runtime.http import HTTPServer
from aifinops.exporters.sink import COUNTED_IN_HEADER
from aifinops.exporters.tokens import BATCH, EventsAPI, hash_token

CE = "application/cloudevents+json"
TEAM_TOKEN = "team-secret-1"
GATEWAY_TOKEN = "gateway-secret-2"


class RecordingSink:
    def __init__(self, fail: bool = False):
        self.published = []
        self.fail = fail

    def publish(self, topic, key, event, headers):
        self.published.append((topic, key, event, dict(headers)))
        if self.fail:
            raise RuntimeError("broken sink")

    def publish_many(self, topic, events):
        for key, event, headers in events:
            self.publish(topic, key, event, headers)


class App:
    def __init__(self, auth: AuthConfig, sink: RecordingSink, max_batch_events=1000):
        self.sink = sink
        self.ingest = UsageIngest.from_config(LLMConfig(), sources=("http",))
        self.registry = CollectorRegistry()
        for collector in self.ingest.collectors({}):
            self.registry.register(collector)
        api = EventsAPI(
            self.ingest,
            sink,
            topic="ai-api-costs",
            cluster="eu-1",
            auth=auth,
            max_batch_events=max_batch_events,
            max_body_bytes=64 * 1024,
        )
        self.server = HTTPServer("127.0.0.1:0", self.registry, routes=[api.route()])

    def post(self, body, content_type=CE, headers=None, method="POST"):
        if not isinstance(body, bytes | str):
            body = json.dumps(body)
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        conn.request(
            method,
            "/v1/events",
            body=body,
            headers={**({"Content-Type": content_type} if content_type else {}), **(headers or {})},
        )
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        try:
            payload = json.loads(data)
        except ValueError:
            payload = data.decode()
        return resp.status, payload, resp

    def value(self, name, **labels):
        return self.registry.get_sample_value(name, labels)

    def requests(self, **labels):
        labels = {"provider": "openai", "model": "gpt-4o", "app": "chat", "status": "ok", **labels}
        return self.value("aifinops_llm_requests_total", **labels) or 0


@pytest.fixture
def app():
    instance = App(AuthConfig(), RecordingSink())
    instance.server.start()
    yield instance
    instance.server.stop()


@pytest.fixture
def authed():
    auth = AuthConfig(
        enabled=True,
        tokens=(
            AuthToken(hash_token(TEAM_TOKEN), "billing"),
            AuthToken(hash_token(GATEWAY_TOKEN), "platform", gateway=True),
        ),
    )
    instance = App(auth, RecordingSink())
    instance.server.start()
    yield instance
    instance.server.stop()


def event(event_id="e1", **data):
    base = {
        "provider": "openai",
        "model": "gpt-4o",
        "team": "ml",
        "app": "chat",
        "input_tokens": 1000,
        "output_tokens": 100,
    }
    base.update(data)
    return make_event(USAGE_TYPE, "gateway-1", base, event_id=event_id)


def test_single_event_is_counted_and_published_with_key_and_header(app):
    status, body, _ = app.post(event())
    assert (status, body) == (202, {"accepted": 1, "duplicates": 0})
    assert app.requests(team="ml") == 1
    assert app.value("aifinops_ingest_events_total", source="http", outcome="accepted") == 1
    [(topic, key, published, headers)] = app.sink.published
    assert (topic, key) == ("ai-api-costs", "ml/chat")
    assert headers == {COUNTED_IN_HEADER: b"eu-1"}
    assert published["id"] == "e1" and published["data"]["input_tokens"] == 1000


def test_plain_json_with_charset_and_binary_mode(app):
    status, _, _ = app.post(event("a"), content_type="application/json; charset=UTF-8")
    assert status == 202
    data = event("b")["data"]
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "b",
        "ce-source": "sdk",
        "ce-type": USAGE_TYPE,
    }
    status, body, _ = app.post(data, content_type="application/json", headers=headers)
    assert (status, body) == (202, {"accepted": 1, "duplicates": 0})
    assert app.requests(team="ml") == 2


def test_batch_counts_and_reports_duplicates(app):
    batch = [event(f"e{i}") for i in range(10)] + [event("e3")]
    status, body, _ = app.post(batch, BATCH)
    assert (status, body) == (202, {"accepted": 10, "duplicates": 1})
    # A retried batch is all duplicates and counts nothing more.
    status, body, _ = app.post(batch[:10], BATCH)
    assert (status, body) == (202, {"accepted": 0, "duplicates": 10})
    assert app.requests(team="ml") == 10
    assert len(app.sink.published) == 10
    assert app.value("aifinops_ingest_events_total", source="http", outcome="duplicate") == 11


class BatchSink(RecordingSink):
    """A sink that takes a request's events at once, as the Kafka producer does."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def publish_many(self, topic, events):
        self.calls += 1
        for key, event, headers in events:
            self.publish(topic, key, event, headers)


def test_a_batch_goes_to_a_batch_taking_sink_in_one_call_in_order():
    app = App(AuthConfig(), BatchSink())
    app.server.start()
    try:
        batch = [event(f"e{i}", team=f"t{i % 3}") for i in range(20)] + [event("e5")]
        assert app.post(batch, BATCH)[:2] == (202, {"accepted": 20, "duplicates": 1})
    finally:
        app.server.stop()
    assert app.sink.calls == 1
    assert [p[2]["id"] for p in app.sink.published] == [f"e{i}" for i in range(20)]
    assert [p[1] for p in app.sink.published] == [f"t{i % 3}/chat" for i in range(20)]
    assert {p[0] for p in app.sink.published} == {"ai-api-costs"}
    assert all(p[3] == {COUNTED_IN_HEADER: b"eu-1"} for p in app.sink.published)


def test_a_bad_batch_is_refused_whole_with_every_problem(app):
    now = datetime.now(UTC)
    bad_time = make_event(
        USAGE_TYPE, "g", event()["data"], event_id="x", time=now + timedelta(hours=2)
    )
    batch = [event("ok1"), event("bad1", input_tokens=-3, team="a b"), event("ok2"), bad_time, 42]
    status, body, _ = app.post(batch, BATCH)
    assert status == 400
    assert {(p["index"], p["field"]) for p in body} == {
        (1, "data.input_tokens"),
        (1, "data.team"),
        (3, "time"),
        (4, ""),
    }
    assert all(p["reason"] for p in body)
    assert app.requests(team="ml") == 0
    assert app.sink.published == []
    assert app.value("aifinops_ingest_events_total", source="http", outcome="rejected") == 5
    # Nothing was remembered either: the good events are accepted once the batch is fixed.
    status, body, _ = app.post([event("ok1"), event("ok2")], BATCH)
    assert body == {"accepted": 2, "duplicates": 0}


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        ("{not json", CE, "not valid JSON"),
        (json.dumps({"a": 1}), BATCH, "JSON array"),
        (json.dumps([{"a": 1}]), "application/json", "is a batch"),
    ],
)
def test_malformed_bodies_are_400(app, body, content_type, reason):
    status, payload, _ = app.post(body, content_type)
    assert status == 400
    assert payload[0]["index"] is None and reason in payload[0]["reason"]


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/xml", "application/json; charset=latin-1"]
)
def test_unsupported_content_types_are_415(app, content_type):
    status, payload, _ = app.post(event(), content_type)
    assert status == 415
    assert BATCH in payload["supported"]


def test_too_large_bodies_and_batches_are_413(app):
    big = [event(f"e{i}", app="x" * 100) for i in range(300)]
    status, payload, _ = app.post(big, BATCH)
    assert status == 413 and "exceeds the limit" in payload["error"]
    small = App(AuthConfig(), RecordingSink(), max_batch_events=5)
    small.server.start()
    try:
        status, payload, _ = small.post([event(f"e{i}") for i in range(6)], BATCH)
        assert status == 413 and "limit of 5" in payload["error"]
    finally:
        small.server.stop()
    assert app.requests(team="ml") == 0


def test_other_methods_are_405(app):
    status, _, _ = app.post(b"", None, method="GET")
    assert status == 405


def test_a_failing_sink_never_fails_ingest():
    instance = App(AuthConfig(), RecordingSink(fail=True))
    instance.server.start()
    try:
        status, body, _ = instance.post(event())
        assert (status, body) == (202, {"accepted": 1, "duplicates": 0})
        assert instance.requests(team="ml") == 1
    finally:
        instance.server.stop()


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TEAM_TOKEN}"}],
    ids=["none", "wrong", "not-bearer"],
)
def test_auth_refuses_without_a_valid_token(authed, headers):
    status, payload, resp = authed.post(event(), headers=headers)
    assert status == 401 and "bearer token" in payload["error"]
    assert resp.getheader("WWW-Authenticate").startswith("Bearer")
    assert authed.requests(team="ml") == 0 and authed.sink.published == []


def test_a_team_token_counts_for_its_team_whatever_the_event_says(authed):
    status, _, _ = authed.post(
        [event("t1", team="someone-else"), event("t2", team="")],
        BATCH,
        headers={"Authorization": f"Bearer {TEAM_TOKEN}"},
    )
    assert status == 202
    assert authed.requests(team="billing") == 2
    assert authed.requests(team="someone-else") == 0
    keys = [key for _, key, _, _ in authed.sink.published]
    assert keys == ["billing/chat", "billing/chat"]
    assert all(e["data"]["team"] == "billing" for _, _, e, _ in authed.sink.published)


def test_a_gateway_token_may_attribute_any_team(authed):
    status, _, _ = authed.post(
        [event("g1", team="ml"), event("g2", team="web")],
        BATCH,
        headers={"Authorization": f"Bearer {GATEWAY_TOKEN}"},
    )
    assert status == 202
    assert authed.requests(team="ml") == 1 and authed.requests(team="web") == 1
