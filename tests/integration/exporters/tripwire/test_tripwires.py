"""Tripwires end to end with a real Alertmanager: the token exporter's and the bridge's alerts reach its
webhook receiver, resolve by themselves, survive Alertmanager being down, stay few under a flood, and
trip once per cluster through Kafka."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from aifinops.cli.demo.stack import Alertmanager, wait_until
from aifinops.exporters.events import ANOMALY_TYPE, USAGE_TYPE, encode, make_event
from aifinops.exporters.sink import COUNTED_IN_HEADER
from aifinops.exporters.tripwire import fingerprint
from support.bridge_daemon import BridgeDaemon, bridge_config
from support.kafka_helpers import consume, create_topics, produce
from support.token_daemon import TokenDaemon

pytestmark = pytest.mark.integration

TRIPWIRE = "AIFinOpsSpendTripwire"


def alertmanager_config(webhook_url: str) -> dict[str, Any]:
    """A route like the pack's for the tripwire tier (group_wait 0s), to the test's receiver."""
    return {
        "route": {
            "receiver": "default",
            "group_by": ["alertname", "cluster", "team", "tripwire"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": [
                {
                    "receiver": "hook",
                    "matchers": ['aifinops_tier="tripwire"'],
                    "group_wait": "0s",
                    "group_interval": "1s",
                    "repeat_interval": "4h",
                }
            ],
        },
        "receivers": [
            {"name": "default"},
            {"name": "hook", "webhook_configs": [{"url": webhook_url, "send_resolved": True}]},
        ],
    }


def tripwire_settings(am_url: str, **extra: Any) -> dict[str, Any]:
    """Short refresh and resolution so tests see them; default limits otherwise."""
    return {
        "alertmanager_urls": [am_url],
        "refresh_seconds": 1,
        "alert_ttl_seconds": 4,
        "resolve_after_seconds": 1,
        "retry_backoff_seconds": 0.1,
        "retry_backoff_max_seconds": 0.5,
        **extra,
    }


def call(team: str, cost: float, app: str = "agent", model: str = "gpt-4o", n: int = 0) -> dict:
    return make_event(
        USAGE_TYPE,
        "it-gateway",
        {
            "provider": "openai",
            "model": model,
            "team": team,
            "app": app,
            "input_tokens": 1000,
            "output_tokens": 100,
            "cost_usd": cost,
        },
        event_id=f"{team}-{n}-{time.monotonic_ns()}",
    )


def alerts_of(bodies: list[Any]) -> list[dict[str, Any]]:
    """Every alert of every notification, in arrival order."""
    return [alert for body in bodies for alert in body["alerts"]]


def has(status: str, **labels: str) -> Callable[[list[Any]], bool]:
    def predicate(bodies: list[Any]) -> bool:
        return any(
            a["status"] == status and all(a["labels"].get(k) == v for k, v in labels.items())
            for a in alerts_of(bodies)
        )

    return predicate


def token_daemon(tmp_path, name: str, settings: dict[str, Any], **config: Any) -> TokenDaemon:
    text = yaml.safe_dump({"cluster": "it", "tripwires": settings, **config})
    daemon = TokenDaemon(tmp_path / name, text)
    daemon.start()
    return daemon


def received_by(am: Alertmanager) -> float:
    """Alerts Alertmanager's API received (`alertmanager_alerts_received_total`, all statuses)."""
    with urllib.request.urlopen(f"{am.url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "alertmanager_alerts_received_total"
    )


def test_an_expensive_call_and_a_team_burst_page_and_resolve_by_themselves(
    tmp_path, alertmanager_factory, webhook
):
    am = alertmanager_factory(alertmanager_config(webhook.url))
    exporter = token_daemon(tmp_path, "exporter", tripwire_settings(am.url))
    try:
        status, _ = exporter.post([call("solo", 7.5)])
        assert status == 202
        bodies = webhook.wait_for(has("firing", alertname=TRIPWIRE, team="solo"), timeout=15)
        alert = next(a for a in alerts_of(bodies) if a["labels"]["team"] == "solo")
        assert alert["labels"] == {
            "alertname": TRIPWIRE,
            "severity": "critical",
            "aifinops_tier": "tripwire",
            "tripwire": "request_usd",
            "team": "solo",
            "app": "agent",
            "model": "gpt-4o",
            "cluster": "it",
        }
        assert "$7.50" in alert["annotations"]["description"]
        assert alert["annotations"]["runbook_url"].endswith(
            "/docs/runbooks.md#aifinopsspendtripwire"
        )
        assert alert["annotations"]["dashboard_url"].endswith("/d/aifinops-llm?var-team=solo")
        # The exporter computes Alertmanager's own fingerprint (its cost-anomalies events carry it).
        assert alert["fingerprint"] == fingerprint(alert["labels"])

        # A team's burst: $1 calls (under the single-call limit), $25 within a minute.
        status, _ = exporter.post([call("burst", 1.0, n=i) for i in range(25)])
        assert status == 202
        bodies = webhook.wait_for(
            has("firing", tripwire="team_usd_per_minute", team="burst"), timeout=15
        )
        burst = next(a for a in alerts_of(bodies) if a["labels"]["team"] == "burst")
        # The onset names the spend at the call that crossed the limit.
        assert burst["annotations"]["description"].startswith(
            "Team burst spent $21.00 within 60 seconds, above its limit of $20.00 per minute"
        )

        # No more expensive calls: the single-call tripwire resolves by itself.
        webhook.wait_for(has("resolved", tripwire="request_usd", team="solo"), timeout=20)
        assert exporter.sample("aifinops_tripwires_fired_total", tripwire="request_usd") == 1
        assert (
            exporter.sample("aifinops_tripwires_fired_total", tripwire="team_usd_per_minute") == 1
        )
        assert exporter.sample("aifinops_tripwire_send_errors_total") == 0
        # The spend counters counted every call as usual.
        assert exporter.sample("aifinops_llm_cost_usd_total", team="burst") == pytest.approx(25)
    finally:
        exporter.stop()


def test_alertmanager_down_then_back_receives_the_tripwire(tmp_path, webhook, request):
    am = Alertmanager(tmp_path / "am", alertmanager_config(webhook.url))
    # Nothing listens on Alertmanager's port yet; the tripwire holds for a while.
    exporter = token_daemon(
        tmp_path, "exporter", tripwire_settings(am.url, resolve_after_seconds=300)
    )
    try:
        assert exporter.post([call("late", 50.0)])[0] == 202
        wait_until(
            lambda: (exporter.sample("aifinops_tripwire_send_errors_total") or 0) >= 3,
            15,
            "posts to the absent Alertmanager to fail and be retried",
        )
        am.start()
        bodies = webhook.wait_for(has("firing", team="late", tripwire="request_usd"), timeout=20)
        assert "$50.00" in alerts_of(bodies)[0]["annotations"]["description"]
    finally:
        exporter.stop()
        am.stop()


def test_a_flood_from_one_tripping_team_sends_a_bounded_number_of_alerts(
    tmp_path, alertmanager_factory, webhook
):
    am = alertmanager_factory(alertmanager_config(webhook.url))
    settings = tripwire_settings(am.url, refresh_seconds=5, alert_ttl_seconds=20)
    exporter = token_daemon(tmp_path, "exporter", settings)
    try:
        started = time.monotonic()
        for batch in range(100):
            events = [call("flood", 0.01, n=batch * 1000 + i) for i in range(1000)]
            assert exporter.post(events)[0] == 202
        assert exporter.sample("aifinops_ingest_events_total", outcome="accepted") == 100_000
        webhook.wait_for(has("firing", team="flood", tripwire="team_usd_per_minute"), timeout=15)
        time.sleep(2)  # what is still on its way arrives
        seconds = time.monotonic() - started
        received = received_by(am)
        # Two tripwires (its dollars and its tokens per minute), each sent at onset and refreshed
        # every 5 s since: nothing per event.
        fired = exporter.sample("aifinops_tripwires_fired_total")
        assert fired == 2
        assert fired <= received <= fired * (2 + seconds / 5), (received, seconds)
        firing = [a for a in alerts_of([b for _, b in webhook.received]) if a["status"] == "firing"]
        assert {a["labels"]["tripwire"] for a in firing} <= {
            "team_usd_per_minute",
            "team_tokens_per_minute",
        }
    finally:
        exporter.stop()


def test_through_kafka_a_limit_trips_once_per_cluster(
    kafka_session_logs, topic_name, tmp_path, alertmanager_factory, webhook
):
    bootstrap = kafka_session_logs.bootstrap
    topics = {
        "usage": topic_name("usage"),
        "gpu": topic_name("gpu"),
        "anomalies": topic_name("anomalies"),
    }
    create_topics(bootstrap, {topics["usage"]: 10, topics["gpu"]: 10, topics["anomalies"]: 3})
    am = alertmanager_factory(alertmanager_config(webhook.url))
    # Only the single-call limit, so each team sets off one tripwire.
    settings = tripwire_settings(am.url, resolve_after_seconds=300, team_usd_per_minute=1000)
    bridge = BridgeDaemon(
        tmp_path / "bridge", bridge_config(bootstrap, topics, tmp_path, tripwires=settings)
    )
    cluster = bridge.config["cluster"]
    exporter = token_daemon(
        tmp_path,
        "exporter",
        settings,
        cluster=cluster,
        kafka={
            "bootstrap_servers": [bootstrap],
            "topics": {key: {"name": name} for key, name in topics.items()},
        },
        producer={"spool_dir": str(tmp_path / "exporter-spool"), "delivery_timeout_ms": 3000},
    )
    bridge.start()
    try:
        # The exporter counts (and trips on) its call, and publishes it with its cluster's header:
        # the bridge of that cluster skips it.
        assert exporter.post([call("local", 30.0)])[0] == 202
        # A gateway writes straight to Kafka: only the bridge counts it, and trips on it; another
        # cluster's exporter's event (its own header) counts here too.
        produce(
            bootstrap,
            topics["usage"],
            [
                (b"gw/agent", encode(call("gateway", 40.0)), None),
                (b"far/agent", encode(call("far", 60.0)), [(COUNTED_IN_HEADER, b"elsewhere")]),
            ],
        )
        webhook.wait_for(
            lambda bodies: all(
                has("firing", team=team)(bodies) for team in ("local", "gateway", "far")
            ),
            timeout=30,
        )
        wait_until(lambda: bridge.consumed(topics["usage"]) >= 3, 30, "the bridge to read all")
        time.sleep(2)  # a second alert for "local", if any, would be on its way by now
        firing = [a for a in alerts_of([b for _, b in webhook.received]) if a["status"] == "firing"]
        teams = sorted({a["labels"]["team"] for a in firing})
        assert teams == ["far", "gateway", "local"]
        # One alert per team: "local" from the exporter only, the others from the bridge only.
        assert len({a["fingerprint"] for a in firing}) == 3
        assert bridge.sample("aifinops_bridge_messages_total", result="skipped") == 1
        assert bridge.sample("aifinops_tripwires_fired_total", tripwire="request_usd") == 2
        assert exporter.sample("aifinops_tripwires_fired_total", tripwire="request_usd") == 1

        # Each onset is also on cost-anomalies, as the webhook writes alerts, with Alertmanager's
        # fingerprint.
        records = consume(bootstrap, topics["anomalies"], 3, timeout=30)
        events = [json.loads(r.value) for r in records]
        assert {e["type"] for e in events} == {ANOMALY_TYPE}
        by_team = {e["data"]["labels"]["team"]: e for e in events}
        assert sorted(by_team) == ["far", "gateway", "local"]
        assert by_team["local"]["source"] == f"aifinops-token-exporter/{cluster}"
        assert by_team["gateway"]["source"] == f"aifinops-bridge/{cluster}"
        fingerprints = {a["labels"]["team"]: a["fingerprint"] for a in firing}
        assert all(by_team[t]["data"]["fingerprint"] == fingerprints[t] for t in by_team)
        assert all(e["data"]["status"] == "firing" for e in events)
    finally:
        exporter.stop()
        bridge.stop()
