"""`aifinops-bridge` against a real broker: exact totals, dead letters, GPU samples, restarts and stops."""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from genai_prices import Usage, calc_price

from aifinops.cli.demo.stack import wait_until
from aifinops.exporters.events import GPU_SAMPLE_TYPE, USAGE_TYPE, encode, make_event
from support.bridge_daemon import BridgeDaemon, bridge_config
from support.kafka_helpers import consume, create_topics, produce

pytestmark = pytest.mark.integration

COUNTED_IN = "aifinops-counted-in"
WHEN = datetime.now(UTC) - timedelta(minutes=1)

# (OpenTelemetry provider, genai-prices id, model); the last one has no price.
MODELS = [
    ("openai", "openai", "gpt-4o"),
    ("anthropic", "anthropic", "claude-sonnet-4-5"),
    ("gcp.gemini", "google", "gemini-2.5-pro"),
    ("openai", None, "in-house-model"),
]
TEAMS = [("ml", "chat"), ("ml", "search"), ("web", "chat"), ("platform", "agent"), ("", "")]


@pytest.fixture
def topics(kafka_session_logs, topic_name) -> dict[str, str]:
    names = {
        "usage": topic_name("usage"),
        "gpu": topic_name("gpu"),
        "anomalies": topic_name("anomalies"),
    }
    names["usage_dlq"] = names["usage"] + ".dlq"
    names["gpu_dlq"] = names["gpu"] + ".dlq"
    create_topics(
        kafka_session_logs.bootstrap,
        {
            names["usage"]: 10,
            names["gpu"]: 10,
            names["anomalies"]: 3,
            names["usage_dlq"]: 1,
            names["gpu_dlq"]: 1,
        },
    )
    return names


@pytest.fixture
def bridge(request, kafka_session_logs, topics, tmp_path) -> BridgeDaemon:
    daemon = BridgeDaemon(
        tmp_path / "bridge", bridge_config(kafka_session_logs.bootstrap, topics, tmp_path)
    )
    request.node.stash.setdefault(__import__("conftest")._processes_key, []).append(daemon.process)
    request.addfinalizer(daemon.stop)
    return daemon


def usage_event(n: int, rng: random.Random) -> tuple[dict, tuple, dict]:
    """A random usage event, its attribution and its token counts."""
    provider, _pid, model = rng.choice(MODELS)
    team, app = rng.choice(TEAMS)
    cache_read = rng.choice([0, 0, rng.randint(0, 50_000)])
    cache_write = rng.choice([0, 0, rng.randint(0, 5_000)])
    fresh = rng.choice([rng.randint(0, 3_000), rng.randint(0, 300_000)])  # tiers above 200k
    output = rng.randint(0, 8_000)
    tokens = {
        "input_tokens": fresh + cache_read + cache_write,
        "cache_read_tokens": cache_read,
        "cache_write_tokens": cache_write,
        "output_tokens": output,
        "reasoning_tokens": rng.randint(0, output),
    }
    data = {"provider": provider, "model": model, "team": team, "app": app, **tokens}
    if rng.random() < 0.1:
        data["cost_usd"] = float(Decimal(rng.randint(1, 10_000_000)) / Decimal(10**6))
    if rng.random() < 0.05:
        data["status"] = "error"
    event = make_event(USAGE_TYPE, f"gateway-{n % 3}", data, event_id=f"u-{n}", time=WHEN)
    return event, (provider, model, team, app), tokens


def expected_cost(event: dict) -> Decimal:
    data = event["data"]
    if data.get("cost_usd") is not None:
        return Decimal(str(data["cost_usd"]))
    pid = next(p for prov, p, m in MODELS if prov == data["provider"] and m == data["model"])
    if pid is None:
        return Decimal(0)
    usage = Usage(
        input_tokens=data["input_tokens"],
        cache_read_tokens=data["cache_read_tokens"],
        cache_write_tokens=data["cache_write_tokens"],
        output_tokens=data["output_tokens"],
    )
    return calc_price(
        usage, data["model"], provider_id=pid, genai_request_timestamp=WHEN
    ).total_price


def by_labels(samples, *names: str) -> dict[tuple, float]:
    out: dict[tuple, float] = defaultdict(float)
    for labels, value in samples:
        out[tuple(labels[n] for n in names)] += value
    return dict(out)


def test_ten_thousand_mixed_usage_events_equal_the_test_totals(kafka_session_logs, topics, bridge):
    rng = random.Random(5)
    records = []
    requests: dict[tuple, int] = defaultdict(int)
    tokens: dict[tuple, int] = defaultdict(int)
    cost: dict[tuple, Decimal] = defaultdict(Decimal)
    unpriced: dict[tuple, int] = defaultdict(int)
    price_cache: dict[str, Decimal] = {}
    counted = skipped = duplicates = 0
    sent: list[dict] = []
    while len(records) < 10_000:
        n = len(records)
        roll = rng.random()
        if roll < 0.02 and sent:  # a retried event: same source and id
            event = rng.choice(sent)
            headers = []
            duplicates += 1
        else:
            event, labels, toks = usage_event(n, rng)
            headers = []
            if roll < 0.03:  # counted by an exporter of the bridge's own cluster
                headers = [(COUNTED_IN, b"bridge-test")]
                skipped += 1
            else:
                if roll < 0.05:  # counted by another cluster's exporter: ours counts it
                    headers = [(COUNTED_IN, b"other-cluster")]
                sent.append(event)
                counted += 1
                status = event["data"].get("status", "ok")
                requests[(*labels, status)] += 1
                split = {
                    "input": toks["input_tokens"]
                    - toks["cache_read_tokens"]
                    - toks["cache_write_tokens"],
                    "cache_read": toks["cache_read_tokens"],
                    "cache_write": toks["cache_write_tokens"],
                    "output": toks["output_tokens"],
                }
                for token_type, value in split.items():
                    tokens[(*labels, token_type)] += value
                key = json.dumps(event["data"], sort_keys=True)
                if key not in price_cache:
                    price_cache[key] = expected_cost(event)
                cost[labels] += price_cache[key]
                if labels[1] == "in-house-model" and "cost_usd" not in event["data"]:
                    unpriced[labels[:2]] += 1
        key = f"{event['data']['team']}/{event['data']['app']}".encode()
        records.append((key, encode(event), headers))
    assert len(records) == 10_000
    produce(kafka_session_logs.bootstrap, topics["usage"], records)

    bridge.start()
    wait_until(lambda: bridge.consumed(topics["usage"]) >= 10_000, 120, "every event consumed")

    assert (
        bridge.sample("aifinops_bridge_messages_total", topic=topics["usage"], result="applied")
        == counted
    )
    assert (
        bridge.sample("aifinops_bridge_messages_total", topic=topics["usage"], result="duplicate")
        == duplicates
    )
    assert (
        bridge.sample("aifinops_bridge_messages_total", topic=topics["usage"], result="skipped")
        == skipped
    )
    assert (
        bridge.sample("aifinops_bridge_messages_total", topic=topics["usage"], result="invalid")
        == 0
    )
    got_requests = by_labels(
        bridge.samples("aifinops_llm_requests_total"), "provider", "model", "team", "app", "status"
    )
    assert got_requests == {k: float(v) for k, v in requests.items()}
    got_tokens = by_labels(
        bridge.samples("aifinops_llm_tokens_total"),
        "provider",
        "model",
        "team",
        "app",
        "token_type",
    )
    assert {k: v for k, v in got_tokens.items() if v} == {
        k: float(v) for k, v in tokens.items() if v
    }
    got_cost = by_labels(
        bridge.samples("aifinops_llm_cost_usd_total"), "provider", "model", "team", "app"
    )
    assert set(got_cost) == set(cost)
    for labels, dollars in cost.items():
        # To the micro-dollar (the exposition carries each total as a float).
        assert abs(Decimal(repr(got_cost[labels])) - dollars) < Decimal("0.000001"), labels
    got_unpriced = by_labels(
        bridge.samples("aifinops_llm_unpriced_requests_total"), "provider", "model"
    )
    assert got_unpriced == {k: float(v) for k, v in unpriced.items()}
    assert (
        bridge.sample("aifinops_ingest_events_total", source="kafka", outcome="accepted") == counted
    )
    assert bridge.sample("aifinops_bridge_consumer_lag_messages", topic=topics["usage"]) == 0


def test_poison_messages_land_in_the_dlq_with_reasons_and_consumption_goes_on(
    kafka_session_logs, topics, bridge
):
    bootstrap = kafka_session_logs.bootstrap
    good = [
        make_event(
            USAGE_TYPE,
            "gw",
            {
                "provider": "openai",
                "model": "gpt-4o",
                "team": "ml",
                "app": "chat",
                "input_tokens": 10,
                "output_tokens": 1,
            },
            event_id=f"ok-{i}",
            time=WHEN,
        )
        for i in range(4)
    ]
    wrong_type = make_event("io.example.other.v1", "gw", {"x": 1}, event_id="t1", time=WHEN)
    negative = make_event(
        USAGE_TYPE,
        "gw",
        {
            "provider": "openai",
            "model": "gpt-4o",
            "team": "ml",
            "app": "chat",
            "input_tokens": -5,
            "output_tokens": 1,
        },
        event_id="neg",
        time=WHEN,
    )
    huge = b'{"pad":"' + b"x" * (5 << 20) + b'"}'
    key = b"ml/chat"
    bridge.start()
    produce(
        bootstrap,
        topics["usage"],
        [
            (key, encode(good[0]), None),
            (key, b"this is not json", [("trace", b"abc")]),
            (key, encode(good[1]), None),
            (key, encode(wrong_type), None),
            (key, encode(negative), None),
            (key, huge, None),
            (key, encode(good[2]), None),
        ],
        max_request_size=8 << 20,
    )
    wait_until(lambda: bridge.consumed(topics["usage"]) >= 7, 60, "the batch consumed")
    # It keeps consuming after the poison.
    produce(bootstrap, topics["usage"], [(key, encode(good[3]), None)])
    wait_until(lambda: bridge.consumed(topics["usage"]) >= 8, 60, "the next event consumed")

    assert (
        bridge.sample("aifinops_bridge_messages_total", topic=topics["usage"], result="applied")
        == 4
    )
    assert (
        bridge.sample("aifinops_bridge_messages_total", topic=topics["usage"], result="invalid")
        == 4
    )
    assert bridge.sample("aifinops_llm_requests_total", team="ml") == 4
    assert bridge.sample("aifinops_ingest_events_total", source="kafka", outcome="rejected") == 4

    dead = consume(bootstrap, topics["usage_dlq"], 4, timeout=30)
    assert len(dead) == 4
    reasons = [dict(r.headers)["aifinops-dlq-reason"].decode() for r in dead]
    assert reasons[0].startswith("value: not valid JSON")
    assert "type: must be one of io.aifinops.llm.usage.v1" in reasons[1]
    assert "data.input_tokens" in reasons[2]
    assert "over bridge.max_message_bytes" in reasons[3]
    assert [r.value for r in dead] == [
        b"this is not json",
        encode(wrong_type),
        encode(negative),
        huge,
    ]
    assert all(r.key == key for r in dead)
    assert dict(dead[0].headers)["trace"] == b"abc"  # the original headers travel along
    origins = [dict(r.headers)["aifinops-dlq-origin"].decode() for r in dead]
    assert all(o.startswith(topics["usage"] + "/") for o in origins)


def gpu_event(n: int, node: str, pod: str | None, price: str, util: float) -> dict:
    data = {
        "node": node,
        "gpu": 0,
        "uuid": f"GPU-{node}",
        "model": "NVIDIA H100 80GB HBM3",
        "utilization_ratio": util,
        "memory_used_bytes": 10 << 30,
        "memory_total_bytes": 80 << 30,
        "power_watts": 300.5,
        "hourly_cost_usd": float(price),
        "interval_seconds": 15,
    }
    if pod:
        data.update(namespace="research", pod=pod, container="main", team="ml")
    time = WHEN - timedelta(minutes=15) + timedelta(seconds=15 * n)
    return make_event(
        GPU_SAMPLE_TYPE, f"gpu-exporter/{node}", data, event_id=f"{node}-{n}", time=time
    )


def test_gpu_samples_become_the_gpu_families_with_exact_money(kafka_session_logs, topics, bridge):
    events = [gpu_event(n, "n1", "train-0", "4.1", 0.25) for n in range(40)]
    events += [gpu_event(n, "n2", None, "2.9", 0.0) for n in range(40)]
    bad = gpu_event(99, "n3", None, "2.9", 1.5)  # utilisation above 1
    records = [
        (f"{e['data']['node']}/{e['data']['uuid']}".encode(), encode(e), None) for e in events
    ]
    records.append((b"n3/GPU-n3", encode(bad), None))
    records.append(records[0])  # a duplicate
    bridge.start()
    produce(kafka_session_logs.bootstrap, topics["gpu"], records)
    wait_until(lambda: bridge.consumed(topics["gpu"]) >= 82, 60, "the GPU samples consumed")

    assert (
        bridge.sample("aifinops_bridge_messages_total", topic=topics["gpu"], result="applied") == 80
    )
    assert (
        bridge.sample("aifinops_bridge_messages_total", topic=topics["gpu"], result="duplicate")
        == 1
    )
    assert (
        bridge.sample("aifinops_bridge_messages_total", topic=topics["gpu"], result="invalid") == 1
    )
    hours = Decimal(40 * 15) / 3600
    held = bridge.samples("aifinops_gpu_cost_usd_total", node="n1")
    assert [labels["pod"] for labels, _ in held] == ["train-0"]
    assert Decimal(repr(held[0][1])) == pytest.approx(Decimal("4.1") * hours, abs=Decimal("1e-9"))
    idle = bridge.sample("aifinops_gpu_idle_cost_usd_total", node="n1")
    assert idle == pytest.approx(float(Decimal("4.1") * hours * Decimal("0.75")), abs=1e-9)
    assert bridge.sample("aifinops_gpu_cost_usd_total", node="n2") == pytest.approx(
        float(Decimal("2.9") * hours), abs=1e-9
    )
    assert bridge.sample("aifinops_gpu_utilization_ratio", node="n1") == 0.25
    assert bridge.sample("aifinops_gpu_allocated", node="n1", pod="train-0") == 1
    dead = consume(kafka_session_logs.bootstrap, topics["gpu_dlq"], 1, timeout=30)
    assert "utilization_ratio" in dict(dead[0].headers)["aifinops-dlq-reason"].decode()


def small(n: int, team: str = "ml") -> dict:
    data = {
        "provider": "openai",
        "model": "gpt-4o",
        "team": team,
        "app": "chat",
        "input_tokens": 1000,
        "output_tokens": 100,
        "cost_usd": 0.001,
    }
    return make_event(USAGE_TYPE, "gw", data, event_id=f"s-{n}", time=WHEN)


def test_a_sigkilled_bridge_continues_its_counters_and_counts_a_retry_across_it_once(
    kafka_session_logs, topics, bridge
):
    bootstrap = kafka_session_logs.bootstrap
    bridge.start()
    first = [small(n) for n in range(500)]
    produce(bootstrap, topics["usage"], [(b"ml/chat", encode(e), None) for e in first])
    wait_until(lambda: bridge.consumed(topics["usage"]) >= 500, 60, "the first events")
    assert bridge.sample("aifinops_llm_requests_total") == 500  # this scrape is checkpointed
    bridge.kill()

    # A producer retries one event the bridge counted before it died, then sends new ones.
    produce(bootstrap, topics["usage"], [(b"ml/chat", encode(first[42]), None)])
    produce(
        bootstrap, topics["usage"], [(b"ml/chat", encode(small(n)), None) for n in range(500, 700)]
    )
    bridge.start()
    assert bridge.sample("aifinops_llm_requests_total") >= 500  # continued, not reset
    wait_until(lambda: bridge.consumed(topics["usage"]) >= 701, 60, "the rest")
    assert bridge.sample("aifinops_llm_requests_total") == 700
    assert (
        bridge.sample("aifinops_bridge_messages_total", topic=topics["usage"], result="duplicate")
        == 1
    )
    assert bridge.sample("aifinops_llm_cost_usd_total") == pytest.approx(0.7, abs=1e-9)


def test_sigterm_finishes_commits_and_leaves_the_group(
    kafka_session_logs, topics, bridge, tmp_path
):
    bootstrap = kafka_session_logs.bootstrap
    bridge.start()
    produce(bootstrap, topics["usage"], [(b"ml/chat", encode(small(n)), None) for n in range(300)])
    wait_until(lambda: bridge.consumed(topics["usage"]) >= 300, 60, "the events")
    assert bridge.sample("aifinops_llm_requests_total") == 300
    bridge.stop()
    assert bridge.process.log_path.read_text().count("committed") >= 1

    # A member without the state directory (a new pod) starts after what was committed.
    config = bridge_config(bootstrap, topics, tmp_path / "other")
    successor = BridgeDaemon(tmp_path / "successor", config)
    try:
        successor.start()
        produce(
            bootstrap,
            topics["usage"],
            [(b"ml/chat", encode(small(n)), None) for n in range(300, 350)],
        )
        wait_until(lambda: successor.consumed(topics["usage"]) >= 50, 60, "the new events")
        assert successor.sample("aifinops_llm_requests_total") == 50
    finally:
        successor.stop()


def test_a_second_replica_takes_half_the_partitions_and_nothing_is_counted_twice(
    kafka_session_logs, topics, bridge, tmp_path
):
    bootstrap = kafka_session_logs.bootstrap
    keys = [f"team-{i}/app".encode() for i in range(40)]  # spread over the partitions
    bridge.start()
    produce(
        bootstrap, topics["usage"], [(keys[n % 40], encode(small(n)), None) for n in range(400)]
    )
    wait_until(lambda: bridge.consumed(topics["usage"]) >= 400, 60, "the first events")
    produce(
        bootstrap,
        topics["usage"],
        [(keys[n % 40], encode(small(n)), None) for n in range(400, 600)],
    )
    # Not scraped (so not committed) before the rebalance: only the revoke can commit these.
    time.sleep(3)
    second = BridgeDaemon(tmp_path / "second", bridge_config(bootstrap, topics, tmp_path / "b"))
    try:
        second.start(joined=False)
        wait_until(
            lambda: 0 < len(second.samples("aifinops_bridge_consumer_lag_messages")) < 20,
            60,
            "the second replica to get partitions",
        )
        wait_until(
            lambda: len(bridge.samples("aifinops_bridge_consumer_lag_messages")) < 20,
            60,
            "the first replica to give some up",
        )
        produce(
            bootstrap,
            topics["usage"],
            [(keys[n % 40], encode(small(n)), None) for n in range(600, 800)],
        )

        def total() -> float:
            return bridge.sample("aifinops_llm_requests_total") + second.sample(
                "aifinops_llm_requests_total"
            )

        wait_until(lambda: total() >= 800, 60, "every event counted by one replica or the other")
        assert total() == 800
        assert second.sample("aifinops_llm_requests_total") > 0
        assert second.sample("aifinops_bridge_messages_total", result="duplicate") == 0
    finally:
        second.stop()
