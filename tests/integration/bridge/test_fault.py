"""The delivery guarantee, measured: events stream in, the bridge is SIGKILLed twice and restarted, and a
real Prometheus scraping it every second sees every dollar exactly once.

`AIFINOPS_FAULT_EVENTS` sets how many events stream (default 100,000, about a minute here; `make
test` runs the default). Expected totals are exact: every event carries its `cost_usd`.
"""

from __future__ import annotations

import os
import random
import threading
import time
from decimal import Decimal

import pytest
from kafka import KafkaProducer

from aifinops.cli.demo.stack import wait_until
from aifinops.exporters.events import USAGE_TYPE, encode, make_event
from support.bridge_daemon import BridgeDaemon, bridge_config
from support.kafka_helpers import create_topics

pytestmark = pytest.mark.integration

EVENTS = int(os.environ.get("AIFINOPS_FAULT_EVENTS", "100000"))
LABELS = [
    (team, app, model)
    for team in ("ml", "web", "ops")
    for app in ("chat", "agent")
    for model in ("gpt-4o", "claude-sonnet-4-5")
]
PROVIDER = {"gpt-4o": "openai", "claude-sonnet-4-5": "anthropic"}


def event(n: int, team: str, app: str, model: str, cost: Decimal | None) -> dict:
    data = {
        "provider": PROVIDER[model],
        "model": model,
        "team": team,
        "app": app,
        "input_tokens": 0,
        "output_tokens": 0,
    }
    if cost is not None:
        data.update(input_tokens=100 + n % 900, output_tokens=n % 300, cost_usd=float(cost))
    return make_event(USAGE_TYPE, "fault-gateway", data, event_id=f"f-{n}")


def test_sigkill_twice_while_streaming_counts_every_dollar_once(
    kafka_session_logs, topic_name, tmp_path, prometheus_factory
):
    bootstrap = kafka_session_logs.bootstrap
    topics = {
        "usage": topic_name("fault-usage"),
        "gpu": topic_name("fault-gpu"),
        "anomalies": topic_name("fault-anomalies"),
    }
    create_topics(bootstrap, {topics["usage"]: 10, topics["gpu"]: 10})
    bridge = BridgeDaemon(tmp_path / "bridge", bridge_config(bootstrap, topics, tmp_path))
    bridge.start()
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=10, batch_size=256 << 10
    )
    try:
        prometheus = prometheus_factory(
            scrape_configs=[
                {
                    "job_name": "bridge",
                    "scrape_interval": "1s",
                    "scrape_timeout": "1s",
                    "static_configs": [{"targets": [f"127.0.0.1:{bridge.port}"]}],
                }
            ]
        )
        # Every series exists at 0 before the first dollar, as it would in a running system.
        warmup = [event(-i - 1, *labels, None) for i, labels in enumerate(LABELS)]
        for e in warmup:
            producer.send(topics["usage"], encode(e), key=f"{e['data']['team']}/app".encode())
        producer.flush()
        prometheus.wait_for(
            "count(aifinops_llm_cost_usd_total)",
            lambda r: bool(r) and int(r[0]["value"][1]) == 4 * len(LABELS),
            60,
        )
        started = time.time()

        rng = random.Random(11)
        expected = Decimal(0)
        plan = []
        for n in range(EVENTS):
            cost = Decimal(rng.randint(1, 5_000_000)) / Decimal(10**6)
            expected += cost
            plan.append(event(n, *rng.choice(LABELS), cost))
        duplicates = 0
        sent = [0]

        def stream() -> None:
            nonlocal duplicates
            chunk = max(1, EVENTS // 60)
            for start in range(0, EVENTS, chunk):
                for e in plan[start : start + chunk]:
                    key = f"{e['data']['team']}/{e['data']['app']}".encode()
                    producer.send(topics["usage"], encode(e), key=key)
                    if int(e["id"][2:]) % 97 == 0:  # a producer retry: same event again
                        producer.send(topics["usage"], encode(e), key=key)
                        duplicates += 1
                producer.flush()
                sent[0] = min(EVENTS, start + chunk)
                time.sleep(0.25)

        streamer = threading.Thread(target=stream)
        streamer.start()
        for fraction in (1 / 3, 2 / 3):
            wait_until(lambda f=fraction: sent[0] >= EVENTS * f, 300, "the stream to progress")
            bridge.kill()
            bridge.start()
        streamer.join()

        total = EVENTS + duplicates + len(warmup)
        wait_until(lambda: bridge.consumed(topics["usage"]) >= total, 300, "every event consumed")
        applied = bridge.sample(
            "aifinops_bridge_messages_total", topic=topics["usage"], result="applied"
        )
        assert applied == EVENTS + len(warmup), "an event was counted twice or not at all"
        assert (
            bridge.sample(
                "aifinops_bridge_messages_total", topic=topics["usage"], result="duplicate"
            )
            == duplicates
        )
        assert Decimal(repr(bridge.sample("aifinops_llm_cost_usd_total"))) == pytest.approx(
            expected, abs=Decimal("1e-6")
        )

        # Let Prometheus scrape the final values, then read the run as Prometheus saw it.
        final = float(expected)
        prometheus.wait_for(
            "sum(aifinops_llm_cost_usd_total)",
            lambda r: bool(r) and abs(float(r[0]["value"][1]) - final) < 1e-6,
            60,
        )
        time.sleep(2)
        last = max(
            float(r["value"][1]) for r in prometheus.query("timestamp(aifinops_llm_cost_usd_total)")
        )
        window = int(last - started) + 120
        seen = prometheus.api(
            "query", query=f"sum(increase(aifinops_llm_cost_usd_total[{window}s]))", time=repr(last)
        )["result"]
        increase = Decimal(seen[0]["value"][1])
        resets = prometheus.api(
            "query", query=f"sum(resets(aifinops_llm_cost_usd_total[{window}s]))", time=repr(last)
        )["result"]
    finally:
        producer.close()
        bridge.stop()

    print(
        f"\nfault test: {EVENTS} events (+{duplicates} duplicates), 2 SIGKILLs: produced "
        f"${expected}, Prometheus sum(increase()) ${increase}, "
        f"off by {abs(increase - expected) / expected:.2e}"
    )
    assert abs(increase - expected) <= expected * Decimal("0.001"), (increase, expected)
    assert float(resets[0]["value"][1]) == 0  # each series continued across both kills
