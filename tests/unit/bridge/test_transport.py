"""The producer's partitioner puts every key where kafka-python's (and the Java client's) default
partitioner puts it, with each key's murmur2 hash worked out once."""

from __future__ import annotations

import random

import pytest
from kafka.partitioner import DefaultPartitioner

from aifinops.bridge.transport import KeyHashCache


class Cluster:
    """The part of kafka-python's ClusterMetadata a partitioner reads."""

    def __init__(self, partitions: dict[str, set[int]]) -> None:
        self._partitions = partitions

    def topics(self) -> set[str]:
        return set(self._partitions)

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self._partitions.get(topic)

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self._partitions.get(topic, set())


def test_keys_land_where_the_default_partitioner_puts_them():
    rng = random.Random(3)
    cached, default = KeyHashCache(), DefaultPartitioner()
    for _ in range(5_000):
        count = rng.choice([1, 3, 10, 64])
        cluster = Cluster({"t": set(range(count))})
        key = rng.choice(
            [f"team-{rng.randint(0, 30)}/app-{rng.randint(0, 5)}", "", "é/ü", "x" * 300]
        ).encode()
        for _repeat in range(2):  # computed, then from the cache
            assert cached.partition("t", None, key, None, b"v", cluster) == default.partition(
                "t", None, key, None, b"v", cluster
            )
    assert cached.partition("t", None, None, None, b"v", Cluster({"t": {0, 1}})) in (0, 1)
    with pytest.raises(ValueError):
        cached.partition("missing", None, b"k", None, b"v", Cluster({"t": {0}}))
