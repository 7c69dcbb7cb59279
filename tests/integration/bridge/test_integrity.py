"""The bridge under inputs and faults no retry can fix (issue 19): the Alertmanager webhook's 4xx
answers and concurrency, consumer lag while it is unknown, and a checkpoint from another broker,
against the real daemon and a real broker."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

from aifinops.cli.demo.stack import KafkaBroker, wait_until
from aifinops.exporters.events import USAGE_TYPE, encode, make_event
from support.bridge_daemon import BridgeDaemon, bridge_config
from support.kafka_helpers import consume, create_topics, produce

pytestmark = pytest.mark.integration


def post(bridge: BridgeDaemon, body: bytes) -> tuple[int, object]:
    request = urllib.request.Request(
        f"{bridge.url}/v1/alertmanager",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def notification(fingerprint: str = "abc", **annotations: object) -> dict:
    return {
        "version": "4",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "AIFinOpsLLMSpendSpike", "team": "ml"},
                "annotations": {"summary": "spike", **annotations},
                "fingerprint": fingerprint,
                "startsAt": "2024-01-01T00:00:00Z",
            }
        ],
    }


def test_the_webhook_answers_4xx_to_what_no_retry_can_fix_and_writes_strict_json(
    kafka_session_logs: KafkaBroker, topic_name, tmp_path: Path
) -> None:
    bootstrap = kafka_session_logs.bootstrap
    topics = {"usage": topic_name("u"), "gpu": topic_name("g"), "anomalies": topic_name("a")}
    create_topics(bootstrap, {topics["anomalies"]: 1})
    bridge = BridgeDaemon(tmp_path / "bridge", bridge_config(bootstrap, topics, tmp_path))
    bridge.start(joined=False)
    try:
        # 2 MB: under the 4 MiB body limit, over the 1 MiB Kafka message limit.
        status, body = post(bridge, json.dumps(notification(description="x" * (2 << 20))).encode())
        assert status == 413, body
        assert body["errors"][0]["field"] == "alerts[0]"
        status, body = post(bridge, b"[" * 100_000 + b"]" * 100_000)
        assert status == 400, body
        status, body = post(bridge, b'{"version": "4", "alerts": [], "n": ' + b"7" * 5000 + b"}")
        assert status == 400, body
        status, body = post(bridge, json.dumps(notification(description="\ud800")).encode())
        assert (status, body["errors"][0]["field"]) == (400, "alerts[0].annotations.description")
        nan = json.dumps(notification(value=float("nan"))).encode()
        assert b"NaN" in nan
        status, body = post(bridge, nan)
        assert status == 400 and "NaN" in body["errors"][0]["reason"], body
        status, body = post(bridge, json.dumps(notification("good", value=1.5)).encode())
        assert status == 200, body
        records = consume(bootstrap, topics["anomalies"], 2, timeout=10)
    finally:
        bridge.stop()
    # Only the good notification reached the topic, as strict JSON.
    assert len(records) == 1
    event = json.loads(records[0].value, parse_constant=lambda c: pytest.fail(c))
    assert event["data"]["fingerprint"] == "good"


def test_concurrent_notifications_with_the_broker_down_each_wait_once(
    kafka_broker: KafkaBroker, topic_name, tmp_path: Path
) -> None:
    topics = {"usage": topic_name("u"), "gpu": topic_name("g"), "anomalies": topic_name("a")}
    create_topics(kafka_broker.bootstrap, {topics["anomalies"]: 1})
    config = bridge_config(kafka_broker.bootstrap, topics, tmp_path)
    bridge = BridgeDaemon(tmp_path / "bridge", config)
    bridge.start(joined=False)
    try:
        assert post(bridge, json.dumps(notification("warm")).encode())[0] == 200
        kafka_broker.stop()

        def one(i: int) -> tuple[int, float]:
            start = time.monotonic()
            status, _ = post(bridge, json.dumps(notification(f"down-{i}")).encode())
            return status, time.monotonic() - start

        with ThreadPoolExecutor(5) as pool:
            answers = list(pool.map(one, range(5)))
    finally:
        bridge.stop()
    assert [status for status, _ in answers] == [503] * 5
    # One delivery timeout (3 s here) each, side by side; one at a time they took 3, 6 ... 15 s.
    timeout = config["producer"]["delivery_timeout_ms"] / 1000
    assert max(seconds for _, seconds in answers) < 2.5 * timeout, answers


def usage_message(n: int) -> tuple[bytes, bytes, None]:
    event = make_event(
        USAGE_TYPE,
        "gw",
        {
            "provider": "openai",
            "model": "gpt-4o",
            "team": "ml",
            "app": "chat",
            "input_tokens": 1000,
            "output_tokens": 100,
            "cost_usd": 0.001,
        },
        event_id=f"m-{n}",
    )
    return b"ml/chat", encode(event), None


def test_a_checkpoint_from_another_broker_is_set_aside_not_trusted(
    kafka_broker: KafkaBroker, topic_name, tmp_path: Path
) -> None:
    topics = {"usage": topic_name("u"), "gpu": topic_name("g"), "anomalies": topic_name("a")}
    partitions = {topics["usage"]: 10, topics["gpu"]: 10, topics["usage"] + ".dlq": 1}
    bootstrap = kafka_broker.bootstrap
    create_topics(bootstrap, partitions)
    bridge = BridgeDaemon(tmp_path / "bridge", bridge_config(bootstrap, topics, tmp_path))
    state = tmp_path / "state"
    bridge.start()
    try:
        produce(bootstrap, topics["usage"], [usage_message(n) for n in range(300)])
        wait_until(lambda: bridge.consumed(topics["usage"]) >= 300, 60, "the first events")
        assert bridge.sample("aifinops_llm_requests_total") == 300  # checkpointed
    finally:
        bridge.stop()
    assert (state / "checkpoint.json").exists()

    # A fresh broker (memory storage: a restart keeps nothing) with the same topic names, and
    # fewer messages than the checkpoint's offsets: the old state directory must not be trusted.
    kafka_broker.stop()
    kafka_broker.start()
    create_topics(bootstrap, partitions)
    produce(bootstrap, topics["usage"], [usage_message(n) for n in range(1000, 1040)])
    bridge.start()
    try:
        wait_until(
            lambda: bridge.sample("aifinops_llm_requests_total") == 40, 60, "the new log counted"
        )
        assert bridge.sample("aifinops_bridge_checkpoint_set_aside_total", reason="topic_id") == 1
        log = bridge.process.log_tail(200)
    finally:
        bridge.stop()
    assert "set aside" in log and "NOT trusted" in log
    assert len(list(state.glob("checkpoint.json.set-aside-*"))) == 1
    # The old counters are gone for good: the new checkpoint holds the new log's 40 only.
    saved = json.loads((state / "checkpoint.json").read_text())
    assert saved["topic_ids"][topics["usage"]]


def test_alertmanager_does_not_retry_an_alert_too_large_for_kafka(
    kafka_session_logs: KafkaBroker, topic_name, tmp_path: Path, alertmanager_factory
) -> None:
    bootstrap = kafka_session_logs.bootstrap
    topics = {"usage": topic_name("u"), "gpu": topic_name("g"), "anomalies": topic_name("a")}
    create_topics(bootstrap, {topics["anomalies"]: 1})
    bridge = BridgeDaemon(tmp_path / "bridge", bridge_config(bootstrap, topics, tmp_path))
    bridge.start(joined=False)
    try:
        am = alertmanager_factory(
            {
                "route": {
                    "receiver": "bridge",
                    "group_wait": "0s",
                    "group_interval": "1h",
                    "repeat_interval": "1h",
                },
                "receivers": [
                    {
                        "name": "bridge",
                        "webhook_configs": [{"url": f"{bridge.url}/v1/alertmanager"}],
                    }
                ],
            }
        )
        now = datetime.now(UTC)
        am.post_alerts(
            [
                {
                    "labels": {"alertname": "AIFinOpsLLMSpendSpike", "team": "ml"},
                    "annotations": {"description": "x" * (3 << 19)},  # 1.5 MB, twice in the body
                    "startsAt": now.isoformat().replace("+00:00", "Z"),
                }
            ]
        )

        def failed() -> float:
            return bridge.sample("aifinops_bridge_alerts_forwarded_total", status="failed")

        wait_until(lambda: failed() >= 1, 60, "the notification")
        # A 503 would be retried by Alertmanager within seconds; a 413 is final.
        time.sleep(8)
        assert failed() == 1
        assert "answering 413" in bridge.process.log_tail(50)
    finally:
        bridge.stop()


def test_lag_is_never_a_false_zero_while_the_bridge_rejoins_a_restarted_broker(
    kafka_broker: KafkaBroker, topic_name, tmp_path: Path
) -> None:
    topics = {"usage": topic_name("u"), "gpu": topic_name("g"), "anomalies": topic_name("a")}
    partitions = {topics["usage"]: 10, topics["gpu"]: 10, topics["usage"] + ".dlq": 1}
    bootstrap = kafka_broker.bootstrap
    create_topics(bootstrap, partitions)
    bridge = BridgeDaemon(tmp_path / "bridge", bridge_config(bootstrap, topics, tmp_path))
    bridge.start()
    try:
        # More before the restart than after: the member's positions lie beyond the new logs.
        produce(bootstrap, topics["usage"], [usage_message(n) for n in range(3000)])
        wait_until(lambda: bridge.sample("aifinops_llm_requests_total") == 3000, 60, "the first")
        kafka_broker.stop()
        kafka_broker.start()  # empty: a restart of memory storage keeps nothing
        create_topics(bootstrap, partitions)
        produce(bootstrap, topics["usage"], [usage_message(n) for n in range(5000, 6000)])
        deadline = time.monotonic() + 120
        zero_while_unread = []
        while time.monotonic() < deadline:
            families = {
                f.name: f.samples for f in text_string_to_metric_families(bridge.metrics_text())
            }
            counted = sum(s.value for s in families.get("aifinops_llm_requests", []))
            lag = [s for s in families.get("aifinops_bridge_consumer_lag_messages", [])]
            if counted >= 4000:
                break
            if len(lag) == bridge.partitions and sum(s.value for s in lag) == 0:
                zero_while_unread.append(counted)
            time.sleep(0.2)
    finally:
        bridge.stop()
    assert counted == 4000
    # Every partition reported and none behind, while events were still unread: a false zero.
    assert zero_while_unread == []


def test_lag_counts_the_unread_events_and_reads_0_once_they_are_counted(
    kafka_broker: KafkaBroker, topic_name, tmp_path: Path
) -> None:
    topics = {"usage": topic_name("u"), "gpu": topic_name("g"), "anomalies": topic_name("a")}
    partitions = {topics["usage"]: 10, topics["gpu"]: 10, topics["usage"] + ".dlq": 1}
    bootstrap = kafka_broker.bootstrap
    create_topics(bootstrap, partitions)
    # One record per poll: the member stays behind the end its fetches bring for a while.
    config = bridge_config(bootstrap, topics, tmp_path, bridge={"max_poll_records": 1})
    bridge = BridgeDaemon(tmp_path / "bridge", config)
    bridge.start()
    try:
        produce(bootstrap, topics["usage"], [usage_message(n) for n in range(3000)])
        behind = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            families = {
                f.name: f.samples for f in text_string_to_metric_families(bridge.metrics_text())
            }
            counted = sum(s.value for s in families.get("aifinops_llm_requests", []))
            lag = families.get("aifinops_bridge_consumer_lag_messages", [])
            if counted >= 3000:
                break
            behind.extend(s.value for s in lag if s.labels["topic"] == topics["usage"] and s.value)
            time.sleep(0.05)
        assert counted == 3000
        # Every event went to one partition (one key): while it was being read, its lag showed.
        assert behind and max(behind) <= 3000
        wait_until(
            lambda: (
                len(bridge.samples("aifinops_bridge_consumer_lag_messages")) == 20
                and bridge.sample("aifinops_bridge_consumer_lag_messages") == 0
            ),
            30,
            "a lag of 0 on every partition once all is counted",
        )
    finally:
        bridge.stop()


def delete_topic(bootstrap: str, name: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="aifinops-tests")
    try:
        admin.delete_topics([name])
        wait_until(lambda: name not in admin.list_topics(), 30, f"{name} deleted")
    finally:
        admin.close()


@pytest.mark.parametrize("replace", ["broker_restarted", "topic_recreated"])
def test_a_log_replaced_under_the_running_bridge_is_read_from_its_start(
    replace: str, kafka_broker: KafkaBroker, topic_name, tmp_path: Path
) -> None:
    topics = {"usage": topic_name("u"), "gpu": topic_name("g"), "anomalies": topic_name("a")}
    partitions = {topics["usage"]: 10, topics["gpu"]: 10, topics["usage"] + ".dlq": 1}
    bootstrap = kafka_broker.bootstrap
    create_topics(bootstrap, partitions)
    # A session that outlasts the pause below: the member does not learn from its own clock
    # that its group is gone, only from the broker.
    timings = {"session_timeout_ms": 20000, "max_poll_interval_ms": 20000}
    config = bridge_config(bootstrap, topics, tmp_path, bridge=timings)
    bridge = BridgeDaemon(tmp_path / "bridge", config)
    bridge.start()
    try:
        # One key, so one partition: the member's position there is 300.
        produce(bootstrap, topics["usage"], [usage_message(n) for n in range(300)])
        wait_until(lambda: bridge.sample("aifinops_llm_requests_total") == 300, 60, "the first")
        pid = bridge.process.pid
        assert pid is not None
        # The offsets of that scrape's checkpoint are committed by now: nothing is pending that
        # would reach the broker before the member's first fetch after the pause.
        time.sleep(2)
        # Frozen while the log is replaced and the new one grows past the old position, so the
        # member's first fetch after the pause finds offset 300 inside the new log.
        os.kill(pid, signal.SIGSTOP)
        try:
            if replace == "broker_restarted":
                kafka_broker.stop()
                kafka_broker.start()  # empty: a restart of memory storage keeps nothing
                create_topics(bootstrap, partitions)
            else:  # deleted and created again: the group and its member stay
                delete_topic(bootstrap, topics["usage"])
                create_topics(bootstrap, {topics["usage"]: 10})
            produce(bootstrap, topics["usage"], [usage_message(n) for n in range(5000, 6000)])
        finally:
            os.kill(pid, signal.SIGCONT)
        # No scrape for a while (a scrape leads to a commit): the fetch comes first.
        time.sleep(5)
        deadline = time.monotonic() + 90
        counted = 0.0
        while time.monotonic() < deadline:
            counted = bridge.sample("aifinops_llm_requests_total")
            if counted >= 1300 and bridge.sample("aifinops_bridge_consumer_lag_messages") == 0:
                break
            time.sleep(0.5)
        time.sleep(3)  # anything counted twice would show by now
        counted = bridge.sample("aifinops_llm_requests_total")
        replaced = bridge.sample("aifinops_bridge_log_replaced_total", reason="topic_id")
        log = bridge.process.log_tail(400)
    finally:
        bridge.stop()
    # The old log's 300 stay counted, and every one of the new log's 1000 is counted once
    # (before the fix: 1000, the new log's first 300 skipped, when the topic was recreated).
    assert counted == 1300, log
    if replace == "topic_recreated":
        assert replaced == 10, log  # each usage partition the member holds
    else:
        assert replaced >= 1, log  # the lost group may have taken some partitions away first
    assert "is not the log its position belongs to" in log, log
