"""Plain kafka-python helpers the tests use to create topics, produce and consume independently of the product."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError


@dataclass(frozen=True)
class Record:
    """A consumed message."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


def create_topics(bootstrap: str, topics: Mapping[str, int]) -> None:
    """Create each topic with its partition count; existing topics are left alone."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="aifinops-tests")
    try:
        for name, partitions in topics.items():
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()


def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes, list[tuple[str, bytes]] | None]],
    **config: object,
) -> int:
    """Send `(key, value, headers)` records with acks=all and wait for all; returns the count.

    `config` adds KafkaProducer settings (`max_request_size` for large values...)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, **config)
    n = 0
    try:
        futures = [
            producer.send(topic, key=key, value=value, headers=headers or [])
            for key, value, headers in records
        ]
        for f in futures:
            f.get(timeout=30)
            n += 1
    finally:
        producer.close()
    return n


def consume(
    bootstrap: str,
    topic: str,
    count: int,
    *,
    timeout: float = 30.0,
    group_id: str | None = None,
) -> list[Record]:
    """Read `count` messages (or all that arrive before `timeout`) from the start of `topic`.

    With a `group_id`, the read goes through a consumer group and commits its offsets.
    """
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        # Tansu holds a group join for the whole rebalance timeout: keep it short.
        max_poll_interval_ms=5000,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        client_id=f"aifinops-tests-{uuid.uuid4().hex[:6]}",
    )
    out: list[Record] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < count and time.monotonic() < deadline:
            for _tp, batch in consumer.poll(timeout_ms=500).items():
                out.extend(
                    Record(r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers))
                    for r in batch
                )
        if group_id:
            consumer.commit()
    finally:
        consumer.close()
    return out
