"""The bridge's consumer lag without a broker: an end offset counts only for the log it was read
from (the connection and topic id that brought it), and the consumer reports no sample, never 0,
while a partition's end is not known for its current log."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

from kafka.consumer.fetcher import Fetcher
from kafka.net.compat import KafkaNetClient

from aifinops.bridge.consumer import BridgeConsumer
from aifinops.bridge.metrics import BridgeStats
from aifinops.bridge.records import TopicPartition
from aifinops.bridge.transport import FetchedEnds, LogEnd

TP = TopicPartition("usage", 0)


class Link:
    """One connection to a broker, as kafka-python keeps it (a new object per connect)."""

    def __init__(self) -> None:
        self.connected = True


class Cluster:
    def __init__(self) -> None:
        self.leader = 1
        self.topic_ids = {"usage": "id-1"}

    def leader_for_partition(self, tp):
        return self.leader

    def topic_id(self, topic):
        return self.topic_ids.get(topic)


class Client:
    """kafka-python's network client: the cluster metadata and the live connection per node."""

    def __init__(self) -> None:
        self.cluster = Cluster()
        self._manager = SimpleNamespace(_conns={1: Link()})

    def reconnect(self, node: int = 1) -> Link:
        self._manager._conns[node].connected = False
        self._manager._conns[node] = Link()
        return self._manager._conns[node]


class FetcherStub:
    """Stands for kafka-python's fetcher: the watch wraps its response handler."""

    def __init__(self) -> None:
        self.handled = 0

    def _handle_fetch_response(self, node_id, fetch_offsets, send_time, response):
        self.handled += 1


def response(high: int, error_code: int = 0, partition_error: int = 0) -> SimpleNamespace:
    part = SimpleNamespace(partition_index=0, error_code=partition_error, high_watermark=high)
    topic = SimpleNamespace(topic="usage", partitions=[part])
    return SimpleNamespace(error_code=error_code, responses=[topic])


def watched() -> tuple[Client, FetcherStub, FetchedEnds]:
    client, fetcher = Client(), FetcherStub()
    ends = FetchedEnds(client)
    assert ends.watch(fetcher)
    return client, fetcher, ends


def fetch(fetcher: FetcherStub, high: int, node: int = 1, **errors: int) -> None:
    fetcher._handle_fetch_response(node, {}, 0.0, response(high, **errors))


def offset(ends: FetchedEnds) -> int | None:
    end = ends.end(TP)
    return None if end is None else end.offset


def test_the_end_a_fetch_brought_is_known_while_its_connection_to_the_leader_lasts():
    _client, fetcher, ends = watched()
    assert ends.end(TP) is None  # nothing fetched yet
    fetch(fetcher, 300)
    assert fetcher.handled == 1  # kafka-python still handles every response
    assert offset(ends) == 300
    fetch(fetcher, 310)
    assert offset(ends) == 310


def test_after_a_reconnect_the_old_end_is_unknown_until_a_fetch_over_the_new_connection():
    client, fetcher, ends = watched()
    fetch(fetcher, 300)
    # The broker restarted with empty storage and the member is connected again, without any
    # lag update having seen it down: the 300 is the end of a log that is gone.
    client.reconnect()
    assert ends.end(TP) is None
    # The new log is shorter than the position: the fetch fails out of range, nothing is learnt.
    fetch(fetcher, 300, partition_error=1)
    assert ends.end(TP) is None
    fetch(fetcher, 100)
    assert offset(ends) == 100


def test_an_end_names_its_log_the_same_across_fetches_and_another_after_a_reconnect():
    client, fetcher, ends = watched()
    fetch(fetcher, 300)
    first = ends.end(TP)
    fetch(fetcher, 310)
    again = ends.end(TP)
    assert first is not None and again is not None and first.log == again.log
    client.reconnect()
    fetch(fetcher, 100)
    after = ends.end(TP)
    assert after is not None and after.log != first.log
    client.cluster.topic_ids["usage"] = "id-2"
    fetch(fetcher, 40)
    recreated = ends.end(TP)
    assert recreated is not None and recreated.log != after.log


def test_the_end_is_unknown_while_the_leader_is_out_of_reach_or_another_broker():
    client, fetcher, ends = watched()
    fetch(fetcher, 300)
    client._manager._conns[1].connected = False
    assert ends.end(TP) is None
    client._manager._conns[1].connected = True
    assert offset(ends) == 300
    client._manager._conns[2] = Link()
    client.cluster.leader = 2
    assert ends.end(TP) is None
    fetch(fetcher, 305, node=2)
    assert offset(ends) == 305
    client.cluster.leader = -1  # no leader elected
    assert ends.end(TP) is None


def test_a_recreated_topic_makes_the_end_unknown_though_the_connection_stayed():
    client, fetcher, ends = watched()
    fetch(fetcher, 300)
    client.cluster.topic_ids["usage"] = "id-2"
    assert ends.end(TP) is None
    fetch(fetcher, 40)
    assert offset(ends) == 40


def test_a_failed_response_teaches_nothing_and_forgotten_partitions_have_no_end():
    _client, fetcher, ends = watched()
    fetch(fetcher, 300, error_code=70)  # a fetch session error: no partition data to trust
    assert ends.end(TP) is None
    fetch(fetcher, -1)  # the broker gave no watermark
    assert ends.end(TP) is None
    fetch(fetcher, 300)
    ends.forget([TP])
    assert ends.end(TP) is None


def test_without_the_hook_no_end_is_ever_known():
    ends = FetchedEnds(Client())
    assert not ends.watch(SimpleNamespace())
    assert ends.end(TP) is None


def test_the_kafka_python_installed_has_the_hooks_the_watch_relies_on():
    # An upgrade that renames them must fail here, not silently leave the bridge without lag.
    handler = inspect.signature(Fetcher._handle_fetch_response)
    assert list(handler.parameters) == ["self", "node_id", "fetch_offsets", "send_time", "response"]
    client = KafkaNetClient(bootstrap_servers=["127.0.0.1:1"])  # connects to nothing yet
    try:
        ends = FetchedEnds(client)
        assert ends.watch(FetcherStub())
        assert callable(client.cluster.leader_for_partition) and callable(client.cluster.topic_id)
        ends.record(("usage", 0), 300, Link(), None)
        assert ends.end(TP) is None  # no leader known, so no connection it could have come over
    finally:
        client.close()


class Member:
    """A group member whose end offsets, the log they belong to, and positions the test sets."""

    def __init__(self, *partitions: TopicPartition) -> None:
        self.held = set(partitions)
        self.ends: dict[TopicPartition, int | None] = {}
        self.positions: dict[TopicPartition, int] = {}
        self.log = "log-1"

    def highwater(self, tp):
        end = self.ends.get(tp)
        return None if end is None else LogEnd(end, self.log)

    def position(self, tp):
        return self.positions.get(tp)

    def assignment(self):
        return set(self.held)

    def beginning(self, partitions):
        return dict.fromkeys(partitions, 0)

    def seek(self, tp, offset):
        self.positions[tp] = offset


def consumer(
    member: Member, counted: dict[TopicPartition, int]
) -> tuple[BridgeConsumer, BridgeStats]:
    stats = BridgeStats()
    bridge = BridgeConsumer(lambda *_: member, None, lambda: None, stats)  # type: ignore[arg-type]
    bridge._connect()
    bridge._on_assigned(sorted(member.held))
    bridge._positions.update(counted)
    return bridge, stats


def lag(bridge: BridgeConsumer, member: Member, stats: BridgeStats) -> dict[TopicPartition, int]:
    bridge._update_lag(member)  # type: ignore[arg-type]
    return stats.snapshot()[1]


def test_lag_is_the_end_minus_what_was_counted_and_0_once_caught_up():
    idle = TopicPartition("gpu", 0)
    member = Member(TP, idle)
    bridge, stats = consumer(member, {TP: 4})
    member.ends = {TP: 10, idle: 7}
    # Nothing read from `idle` yet: it stands where the member will start reading it.
    member.positions[idle] = 7
    assert lag(bridge, member, stats) == {TP: 6, idle: 0}
    bridge._positions[TP] = 10
    assert lag(bridge, member, stats) == {TP: 0, idle: 0}


def test_lag_has_no_sample_rather_than_0_while_the_end_is_not_known_for_the_current_log():
    member = Member(TP)
    bridge, stats = consumer(member, {TP: 300})
    member.ends = {TP: 300}
    assert lag(bridge, member, stats) == {TP: 0}
    # Reconnected to a broker that lost the log: the transport has no end for it yet.
    member.ends = {TP: None}
    assert lag(bridge, member, stats) == {}
    # The new log's end is known now but lies before the position counted from the old log:
    # no sample, and (the broker gave no topic id to tell) the new log is read from its start.
    member.ends = {TP: 100}
    assert lag(bridge, member, stats) == {}
    assert (member.positions[TP], bridge.positions()[TP]) == (0, 0)
    assert stats.replaced()["offset_beyond_end"] == 1
    # Its events are counted: the position follows the new log.
    bridge._positions[TP] = 60
    assert lag(bridge, member, stats) == {TP: 40}


def test_partitions_taken_away_without_a_callback_lose_their_sample():
    other = TopicPartition("usage", 1)
    member = Member(TP, other)
    bridge, stats = consumer(member, {TP: 1, other: 2})
    member.ends = {TP: 5, other: 5}
    assert lag(bridge, member, stats) == {TP: 4, other: 3}
    member.held = {TP}
    assert lag(bridge, member, stats) == {TP: 4}


def test_a_lag_computed_for_a_log_that_is_gone_is_not_served_before_the_next_update():
    member = Member(TP)
    bridge, stats = consumer(member, {TP: 300})
    member.ends = {TP: 300}
    assert lag(bridge, member, stats) == {TP: 0}
    # The broker restarts and the member reconnects while the consumer thread is still inside a
    # poll: no lag update runs, but a scrape must not serve the 0 of the old log.
    member.log = "log-2"
    assert stats.snapshot()[1] == {}
    member.ends = {TP: None}
    assert stats.snapshot()[1] == {}
    member.log = "log-1"  # (a check that compares, not one that always says no)
    member.ends = {TP: 300}
    assert stats.snapshot()[1] == {TP: 0}
