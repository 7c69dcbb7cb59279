"""The Kafka transport: the one module that imports `kafka` (kafka-python). Producer, consumer and admin
clients live here behind small interfaces that speak `records` types, so decoding, aggregation and
exposition never see a Kafka client object and the rest of the bridge stays testable without one.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

import kafka.errors as kerrors
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaTopicPartition
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.consumer.subscription_state import AsyncConsumerRebalanceListener
from kafka.partitioner import DefaultPartitioner
from kafka.partitioner.default import murmur2
from kafka.structs import OffsetAndMetadata

from aifinops.exporters.config import BridgeConfig, KafkaConfig, ProducerConfig

from .records import InboundRecord, OutboundMessage, Polled, TopicPartition

log = logging.getLogger(__name__)
# kafka-python's IO loop warns whenever one of its tasks waited over 100 ms, which happens every few
# seconds while the consumer thread holds the GIL validating a batch: not a fault, only noise.
logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)

# Errors that belong to one message and would repeat forever: the message is dropped, not retried.
_PERMANENT_MESSAGE_ERRORS = (
    kerrors.MessageSizeTooLargeError,
    kerrors.RecordListTooLargeError,
    kerrors.InvalidTopicError,
    kerrors.CorruptRecordError,
)


class TransportError(Exception):
    """Kafka could not be reached or refused a request."""


class BrokerUnavailableError(TransportError):
    """No broker answered in time."""


@dataclass(frozen=True)
class SendResult:
    """What became of one message of a batch: sent, or failed (`permanent` when retrying is futile)."""

    ok: bool
    error: str = ""
    permanent: bool = False


def _new_consumer(kafka: KafkaConfig, **settings: Any) -> Any:
    """A `KafkaConsumer` with the cluster's client settings, manual commits and the fetch sizes
    every consumer here uses, plus `settings`; the client's errors as this module's."""
    try:
        return KafkaConsumer(
            **client_settings(kafka),
            enable_auto_commit=False,
            bootstrap_timeout_ms=5000,
            max_partition_fetch_bytes=8 << 20,
            fetch_max_bytes=64 << 20,
            metrics_enabled=False,
            **settings,
        )
    except kerrors.KafkaTimeoutError as exc:
        raise BrokerUnavailableError(_describe(exc)) from exc
    except kerrors.KafkaError as exc:
        raise TransportError(_describe(exc)) from exc


def client_settings(kafka: KafkaConfig) -> dict[str, Any]:
    """kafka-python connection settings (brokers, client id, TLS, SASL) from the `kafka` section.

    Raises `TransportError` when the SASL password file cannot be read.
    """
    settings: dict[str, Any] = {
        "bootstrap_servers": list(kafka.bootstrap_servers),
        "client_id": kafka.client_id,
        "security_protocol": kafka.security_protocol,
    }
    for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        value = getattr(kafka, name)
        if value:
            settings[name] = value
    if kafka.security_protocol.startswith("SASL"):
        settings["sasl_mechanism"] = kafka.sasl_mechanism
        settings["sasl_plain_username"] = kafka.sasl_username
        if kafka.sasl_password_file:
            try:
                password = Path(kafka.sasl_password_file).read_text().rstrip("\r\n")
            except OSError as exc:
                raise TransportError(
                    f"kafka.sasl_password_file {kafka.sasl_password_file}: {exc.strerror}"
                ) from exc
            settings["sasl_plain_password"] = password
    return settings


class KeyHashCache(DefaultPartitioner):
    """kafka-python's default partitioner (murmur2 of the key, as the Java client, so a key lands
    on the same partition whoever writes it) with each key's hash worked out once: keys are
    `team/app` or `node/uuid`, a bounded set, and pure-Python murmur2 costs more than the rest
    of placing a message."""

    MAX_KEYS = 100_000

    def __init__(self) -> None:
        self._hashes: dict[bytes, int] = {}

    def partition(
        self,
        topic: str,
        key: Any,
        serialized_key: bytes | None,
        value: Any,
        serialized_value: bytes | None,
        cluster: Any,
    ) -> int:
        """The partition of a keyed message; keyless ones as `DefaultPartitioner` places them."""
        if serialized_key is None:
            placed: int = super().partition(
                topic, key, serialized_key, value, serialized_value, cluster
            )
            return placed
        partitions = cluster.partitions_for_topic(topic)
        if partitions is None:
            raise ValueError(f"Topic {topic} not found in ClusterMetadata")
        index = self._hashes.get(serialized_key)
        if index is None:
            index = murmur2(serialized_key) & 0x7FFFFFFF
            if len(self._hashes) < self.MAX_KEYS:
                self._hashes[serialized_key] = index
        chosen: int = sorted(partitions)[index % len(partitions)]
        return chosen


def _describe(exc: BaseException) -> str:
    text = str(exc)
    name = type(exc).__name__
    return text if text.startswith(name) else f"{name}: {text}" if text else name


class ProducerClient:
    """A kafka-python producer set up for the spool: idempotent, `acks=all`, keyed, batched.

    `send_batch` sends messages in order and waits (up to the delivery timeout) for every
    acknowledgement, returning one `SendResult` per message. After a batch with failures the
    caller should `close()` it and build a new one: that also clears a producer id the broker
    forgot (a restarted broker with memory storage does).
    """

    def __init__(self, kafka: KafkaConfig, producer: ProducerConfig) -> None:
        self._delivery_timeout = producer.delivery_timeout_ms / 1000
        settings = client_settings(kafka)
        try:
            self._producer = KafkaProducer(
                **settings,
                acks="all",
                enable_idempotence=True,
                partitioner=KeyHashCache(),
                # kafka-python's own sensors cost CPU on every batch and nothing reads them.
                metrics_enabled=False,
                linger_ms=producer.linger_ms,
                batch_size=producer.batch_size_bytes,
                max_request_size=producer.max_message_bytes,
                delivery_timeout_ms=producer.delivery_timeout_ms,
                request_timeout_ms=producer.delivery_timeout_ms - producer.linger_ms,
                max_block_ms=producer.delivery_timeout_ms,
                bootstrap_timeout_ms=producer.delivery_timeout_ms,
                retry_backoff_ms=min(producer.retry_backoff_ms, 1000),
                reconnect_backoff_max_ms=min(producer.retry_backoff_max_ms, 5000),
            )
        except kerrors.KafkaTimeoutError as exc:
            raise BrokerUnavailableError(_describe(exc)) from exc
        except kerrors.KafkaError as exc:
            raise TransportError(_describe(exc)) from exc

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        """Send `messages` in order and wait for all of them; never raises."""
        futures: list[Any] = []
        results: list[SendResult | None] = []
        broken: SendResult | None = None
        for message in messages:
            if broken is not None:
                # After a failure that is not this message's fault (no metadata, closed client)
                # later messages must not overtake it: fail them all to keep the order.
                futures.append(None)
                results.append(broken)
                continue
            try:
                future = self._producer.send(
                    message.topic,
                    value=message.value,
                    key=message.key,
                    headers=list(message.headers),
                )
            except _PERMANENT_MESSAGE_ERRORS as exc:
                futures.append(None)
                results.append(SendResult(False, _describe(exc), permanent=True))
                continue
            except Exception as exc:
                broken = SendResult(False, _describe(exc))
                futures.append(None)
                results.append(broken)
                continue
            futures.append(future)
            results.append(None)
        with contextlib.suppress(kerrors.KafkaError):
            self._producer.flush(timeout=self._delivery_timeout + 5)
        out: list[SendResult] = []
        for future, result in zip(futures, results, strict=True):
            if result is not None:
                out.append(result)
            elif not future.is_done:
                out.append(SendResult(False, "KafkaTimeoutError: not acknowledged in time"))
            elif future.succeeded():
                out.append(SendResult(True))
            else:
                error = future.exception
                out.append(
                    SendResult(
                        False,
                        _describe(error),
                        permanent=isinstance(error, _PERMANENT_MESSAGE_ERRORS),
                    )
                )
        return out

    def close(self, timeout: float = 5.0) -> None:
        """Close the client; whatever it still holds fails (the caller has spooled it)."""
        try:
            self._producer.close(timeout=timeout)
        except Exception as exc:  # kafka-python's close raises when a flush times out
            log.debug("closing the Kafka producer: %s", exc)
            with contextlib.suppress(Exception):
                self._producer._sender.force_close()


@dataclass(frozen=True)
class TopicDescription:
    """What the cluster says about one topic; `retention_ms` is None when the broker does not tell."""

    name: str
    partitions: int
    replication_factor: int
    retention_ms: int | None


class AdminClient:
    """Topic administration: describe and create topics (kafka-python's admin client)."""

    def __init__(self, kafka: KafkaConfig, timeout_ms: int = 10000) -> None:
        self._timeout_ms = timeout_ms
        try:
            self._admin = KafkaAdminClient(
                **client_settings(kafka),
                request_timeout_ms=timeout_ms,
                bootstrap_timeout_ms=timeout_ms,
            )
        except kerrors.KafkaTimeoutError as exc:
            raise BrokerUnavailableError(_describe(exc)) from exc
        except kerrors.KafkaError as exc:
            raise TransportError(_describe(exc)) from exc

    def describe(self, names: Sequence[str]) -> dict[str, TopicDescription]:
        """The topics of `names` that exist, with partitions, replication and retention."""
        try:
            described = self._admin.describe_topics(list(names))
        except kerrors.KafkaError as exc:
            raise TransportError(f"describing topics: {_describe(exc)}") from exc
        found: dict[str, tuple[int, int]] = {}
        for topic in described:
            if topic.get("error_code", 0) != 0:
                continue  # 3 = unknown topic
            partitions = topic.get("partitions", [])
            replicas = max((len(p.get("replica_nodes", ())) for p in partitions), default=0)
            found[topic["name"]] = (len(partitions), replicas)
        retention = self._retention(list(found))
        return {
            name: TopicDescription(name, parts, replicas, retention.get(name))
            for name, (parts, replicas) in found.items()
        }

    def _retention(self, names: list[str]) -> dict[str, int | None]:
        if not names:
            return {}
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, name, configs={"retention.ms": None})
            for name in names
        ]
        try:
            configs = self._admin.describe_configs(resources, config_filter="all")
        except (kerrors.KafkaError, ValueError, TypeError) as exc:
            log.debug("describe_configs failed: %s", exc)
            return {}
        out: dict[str, int | None] = {}
        for name, values in (configs.get("topic") or {}).items():
            entry = (values or {}).get("retention.ms")
            value = entry.get("value") if isinstance(entry, Mapping) else entry
            try:
                out[name] = int(value) if value is not None else None
            except (TypeError, ValueError):
                out[name] = None
        return out

    def create(self, topics: Sequence[tuple[str, int, int, Mapping[str, str]]]) -> dict[str, str]:
        """Create `(name, partitions, replication factor, configs)` topics; returns an error text per
        topic that failed (`exists` when it was there already)."""
        if not topics:
            return {}
        request = {
            name: {
                "num_partitions": partitions,
                "replication_factor": replication,
                "configs": dict(configs),
            }
            for name, partitions, replication, configs in topics
        }
        try:
            response = self._admin.create_topics(
                request, timeout_ms=self._timeout_ms, raise_errors=False
            )
        except kerrors.KafkaError as exc:
            raise TransportError(f"creating topics: {_describe(exc)}") from exc
        errors: dict[str, str] = {}
        for result in response.get("topics", []):
            code = result.get("error_code", 0)
            if code == 0:
                continue
            error = kerrors.for_code(code)
            if error is kerrors.TopicAlreadyExistsError:
                errors[result["name"]] = "exists"
            else:
                message = result.get("error_message") or ""
                errors[result["name"]] = f"{error.__name__}: {message}".rstrip(": ")
        return errors

    def close(self) -> None:
        """Release the connections."""
        with contextlib.suppress(Exception):
            self._admin.close()


class LogEnd(NamedTuple):
    """A partition's end offset and the log it is the end of: `log` compares equal for as long as
    the partition is read over the same connection to its leader under the same topic id, and
    differs once either changes (a reconnect, a new leader, a recreated topic)."""

    offset: int
    log: Hashable


class FetchedEnds:
    """Each partition's end offset (high watermark) as the latest fetch response brought it, bound
    to the connection that carried it and the topic id the metadata gave then.

    An end offset is only the end of the log it was read from. A broker that restarted with empty
    storage, or a topic recreated under the member, keeps the offsets but not the log; the end read
    before is then the end of a log that is gone, and with positions from that log it reads as a
    lag of 0 while the new log's events are unread. So an end is answered only while the
    connection to the partition's leader is the very one it came over (a reconnect or a new leader
    is a new connection object) and the topic id is the same; until a fetch over the current
    connection brings it again it is unknown (None), whether or not the disconnect was seen.

    `client` is kafka-python's network client (`KafkaConsumer._client`). Entries are written on its
    IO thread and read on the consumer thread, each replaced whole.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._ends: dict[tuple[str, int], tuple[int, object, object]] = {}

    def watch(self, fetcher: Any) -> bool:
        """Record the end offsets of every fetch response `fetcher` handles, with the connection
        that carried it: kafka-python hands a response over as it is read, while its connection is
        still the node's. The cost is per response, not per message. False (nothing recorded, so
        no end is ever known) with a kafka-python that has no such hook."""
        handle = getattr(fetcher, "_handle_fetch_response", None)
        conns = getattr(getattr(self._client, "_manager", None), "_conns", None)
        if handle is None or not isinstance(conns, dict):
            log.warning(
                "this kafka-python version cannot tell which log an end offset belongs to: "
                "consumer lag is not reported"
            )
            return False
        record = self.record

        def watched(node_id: Any, fetch_offsets: Any, send_time: float, response: Any) -> None:
            handle(node_id, fetch_offsets, send_time, response)
            link = self._client._manager._conns.get(node_id)
            if link is None or getattr(response, "error_code", 0) != 0:
                return
            for topic in response.responses:
                topic_id = self._topic_id(topic.topic)
                for part in topic.partitions:
                    if part.error_code == 0 and part.high_watermark >= 0:
                        record(
                            (topic.topic, part.partition_index), part.high_watermark, link, topic_id
                        )

        # kafka-python looks the handler up on the fetcher each time it sends a fetch.
        fetcher._handle_fetch_response = watched
        return True

    def record(self, partition: tuple[str, int], end: int, link: object, topic_id: object) -> None:
        """The end a fetch response over connection `link` gave, for the topic id known then."""
        self._ends[partition] = (end, link, topic_id)

    def end(self, partition: tuple[str, int]) -> LogEnd | None:
        """The recorded end if it came over the connection to the partition's leader now, for the
        topic id the metadata gives now, with that log; None otherwise, or while that connection
        is down."""
        found = self._ends.get(partition)
        if found is None:
            return None
        end, via, topic_id = found
        try:
            leader = self._client.cluster.leader_for_partition(KafkaTopicPartition(*partition))
            link = (
                None if leader is None or leader == -1 else self._client._manager._conns.get(leader)
            )
        except (AttributeError, KeyError):  # metadata replaced under the lookup: ask again later
            return None
        if link is None or via is not link or not getattr(link, "connected", False):
            return None
        if topic_id != self._topic_id(partition[0]):
            return None
        return LogEnd(end, (_Identity(link), topic_id))

    def forget(self, partitions: Sequence[tuple[str, int]]) -> None:
        """Drop the ends of partitions that leave or join this member."""
        for partition in partitions:
            self._ends.pop(partition, None)

    def _topic_id(self, topic: str) -> object:
        lookup = getattr(getattr(self._client, "cluster", None), "topic_id", None)
        return lookup(topic) if lookup is not None else None


class _Identity:
    """Compares equal to another only when both hold the very same object (a connection)."""

    __slots__ = ("_of",)

    def __init__(self, of: object) -> None:
        self._of = of

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and other._of is self._of

    def __hash__(self) -> int:
        return id(self._of)


# How old the member's metadata (cluster and topic ids) may get before it is fetched again.
METADATA_MAX_AGE_MS = 5000

Revoked = Callable[[list[TopicPartition]], Mapping[TopicPartition, int]]
Assigned = Callable[[list[TopicPartition]], None]


class _Listener(AsyncConsumerRebalanceListener):
    """Rebalance callbacks. kafka-python 3 runs them on its IO thread, where a blocking call
    (`commit()`) is refused: the offsets a revoke hands back are committed with the coordinator's
    awaitable commit instead, before the partitions go to another member."""

    def __init__(
        self, client: ConsumerClient, revoked: Revoked, assigned: Assigned, lost: Assigned
    ):
        self._client = client
        self._revoked = revoked
        self._assigned = assigned
        self._lost = lost

    async def on_partitions_revoked(self, revoked: Any) -> None:
        partitions = [TopicPartition(tp.topic, tp.partition) for tp in revoked]
        self._client.ends.forget(partitions)
        offsets = self._revoked(partitions)
        if offsets:
            await self._client._commit_from_callback(offsets)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        partitions = [TopicPartition(tp.topic, tp.partition) for tp in assigned]
        self._client.ends.forget(partitions)
        self._assigned(partitions)

    async def on_partitions_lost(self, lost: Any) -> None:
        # The group already gave them to someone else: nothing can be committed for them.
        partitions = [TopicPartition(tp.topic, tp.partition) for tp in lost]
        self._client.ends.forget(partitions)
        self._lost(partitions)


@dataclass(frozen=True)
class ConsumerSettings:
    """How the group consumer behaves; the bridge's come from its config section (`from_config`),
    whose defaults are the only ones."""

    group_id: str
    topics: tuple[str, ...]
    auto_offset_reset: str
    max_poll_records: int
    max_poll_interval_ms: int
    session_timeout_ms: int
    heartbeat_interval_ms: int

    @classmethod
    def from_config(cls, bridge: BridgeConfig, topics: tuple[str, ...]) -> ConsumerSettings:
        """The group member the `bridge` section describes, over `topics`: every other field is
        the section's key of the same name."""
        named = {f.name: getattr(bridge, f.name) for f in fields(cls) if f.name != "topics"}
        return cls(topics=topics, **named)


class ConsumerClient:
    """A group member over the bridge's topics with manual commits.

    Not thread-safe (kafka-python's consumer is not): one thread polls, commits and seeks. The
    rebalance callbacks run inside `poll`, on that thread. Records are kafka-python's
    `ConsumerRecord`s, which have the fields of `records.InboundRecord`.
    """

    def __init__(
        self,
        kafka: KafkaConfig,
        settings: ConsumerSettings,
        on_revoked: Revoked,
        on_assigned: Assigned,
        on_lost: Assigned,
    ) -> None:
        self._consumer = _new_consumer(
            kafka,
            group_id=settings.group_id,
            auto_offset_reset=settings.auto_offset_reset,
            max_poll_records=settings.max_poll_records,
            max_poll_interval_ms=settings.max_poll_interval_ms,
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=settings.heartbeat_interval_ms,
            request_timeout_ms=max(30000, settings.session_timeout_ms + 5000),
            # In an incremental fetch session a partition whose end did not move is left out of
            # the response, and a session can outlive a reconnect: an idle partition's end would
            # then never come over the new connection (see `FetchedEnds`). Full fetches name
            # every partition they read, a few bytes each.
            enable_incremental_fetch_sessions=False,
            # A topic deleted and created again, or another cluster behind the same address, is
            # only seen in fresh metadata (a fetch by name reads the new log at the old offsets
            # without an error): this bounds how long the member reads it unnoticed.
            metadata_max_age_ms=METADATA_MAX_AGE_MS,
        )
        self.ends = FetchedEnds(getattr(self._consumer, "_client", None))
        self.ends.watch(getattr(self._consumer, "_fetcher", None))
        self._consumer.subscribe(
            topics=list(settings.topics),
            listener=_Listener(self, on_revoked, on_assigned, on_lost),
        )
        self._commit_timeout_ms = max(30000, settings.session_timeout_ms + 5000)

    async def _commit_from_callback(self, offsets: Mapping[TopicPartition, int]) -> None:
        coordinator = getattr(self._consumer, "_coordinator", None)
        commit = getattr(coordinator, "_commit_offsets_sync_async", None)
        if commit is None:  # another kafka-python version: the next owner re-reads a little
            log.warning("cannot commit on a rebalance with this kafka-python version")
            return
        try:
            await commit(
                {
                    KafkaTopicPartition(tp.topic, tp.partition): OffsetAndMetadata(offset, "", -1)
                    for tp, offset in offsets.items()
                },
                self._commit_timeout_ms,
            )
        except Exception as exc:
            log.warning("commit on rebalance failed: %s", _describe(exc))

    def poll(self, timeout: float, max_records: int | None = None) -> list[Polled]:
        """The next records as `(partition, records)` pairs; raises `TransportError`."""
        try:
            batches = self._consumer.poll(timeout_ms=int(timeout * 1000), max_records=max_records)
        except kerrors.KafkaError as exc:
            raise TransportError(_describe(exc)) from exc
        return list(batches.items())

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit the next offsets to read per partition; raises `TransportError`."""
        if not offsets:
            return
        try:
            self._consumer.commit(
                {
                    KafkaTopicPartition(tp.topic, tp.partition): OffsetAndMetadata(offset, "", -1)
                    for tp, offset in offsets.items()
                }
            )
        except kerrors.KafkaError as exc:
            raise TransportError(f"commit failed: {_describe(exc)}") from exc

    def committed(self, partition: TopicPartition) -> int | None:
        """The group's committed offset of a partition (None when it has none)."""
        try:
            committed: int | None = self._consumer.committed(KafkaTopicPartition(*partition))
            return committed
        except kerrors.KafkaError as exc:
            raise TransportError(_describe(exc)) from exc

    def seek(self, partition: TopicPartition, offset: int) -> None:
        """Read `partition` from `offset` on."""
        self._consumer.seek(KafkaTopicPartition(*partition), offset)

    def beginning(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """The first offset still stored per partition."""
        try:
            found = self._consumer.beginning_offsets([KafkaTopicPartition(*p) for p in partitions])
        except kerrors.KafkaError as exc:
            raise TransportError(_describe(exc)) from exc
        return {TopicPartition(tp.topic, tp.partition): offset for tp, offset in found.items()}

    def position(self, partition: TopicPartition) -> int | None:
        """The next offset this member will read (None when not known yet)."""
        try:
            position: int | None = self._consumer.position(
                KafkaTopicPartition(*partition), timeout_ms=100
            )
            return position
        except (kerrors.KafkaError, AssertionError, ValueError):
            return None

    def highwater(self, partition: TopicPartition) -> LogEnd | None:
        """The partition's end offset as the latest fetch over the current connection to its
        leader brought it, for the topic's current id, with that log (no request; see
        `FetchedEnds`); None when unknown: not fetched since the member (re)connected, the leader
        out of reach or another, the topic recreated, or the partition not held."""
        return self.ends.end((partition.topic, partition.partition))

    def assignment(self) -> set[TopicPartition]:
        """The partitions this member holds now."""
        return {TopicPartition(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    def identity(self, topics: Sequence[str]) -> tuple[str | None, dict[str, str]]:
        """The cluster id and the id of each of `topics`, from the metadata the member holds
        (None and absent entries where the broker gives none)."""
        cluster = getattr(getattr(self._consumer, "_client", None), "cluster", None)
        if cluster is None:
            return None, {}
        topic_id = getattr(cluster, "topic_id", None)
        ids = {}
        for topic in topics:
            found = topic_id(topic) if topic_id is not None else None
            if found is not None and str(found) != "00000000-0000-0000-0000-000000000000":
                ids[topic] = str(found)
        cluster_id = getattr(cluster, "cluster_id", None)
        return (str(cluster_id) if cluster_id else None), ids

    def close(self) -> None:
        """Leave the group and close the connections (nothing is committed here)."""
        try:
            self._consumer.close(autocommit=False)
        except Exception as exc:
            log.debug("closing the Kafka consumer: %s", exc)


def read_since(
    kafka: KafkaConfig,
    topic: str,
    since_ms: int,
    *,
    idle_timeout: float = 30.0,
    max_poll_records: int = BridgeConfig.max_poll_records,
) -> Iterator[InboundRecord]:
    """Every message of `topic` from the first one with a timestamp at or after `since_ms` (Kafka's
    ListOffsets by time) up to the end offsets as they were when reading began, partition by
    partition in offset order; no consumer group, nothing committed.

    Raises `TransportError` when the topic does not exist, the broker cannot be reached, or no
    message arrives for `idle_timeout` seconds while some are still due.
    """
    consumer = _new_consumer(kafka, group_id=None, max_poll_records=max_poll_records)
    try:
        yield from _read_since(consumer, topic, since_ms, idle_timeout, max_poll_records)
    except kerrors.KafkaError as exc:
        raise TransportError(f"reading {topic}: {_describe(exc)}") from exc
    finally:
        consumer.close(autocommit=False)


def _read_since(
    consumer: Any, topic: str, since_ms: int, idle_timeout: float, max_records: int
) -> Iterator[InboundRecord]:
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        raise TransportError(f"topic {topic} does not exist (or has no partitions)")
    tps = [KafkaTopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    ends = consumer.end_offsets(tps)
    starts = consumer.offsets_for_times({tp: since_ms for tp in tps})
    due: dict[Any, int] = {}
    for tp in tps:
        found = starts.get(tp)
        # None: no message at or after the time in this partition.
        start = ends[tp] if found is None else found.offset
        if start < ends[tp]:
            consumer.seek(tp, start)
            due[tp] = ends[tp]
    settled: set[Any] = set()
    deadline = time.monotonic() + idle_timeout
    while due:
        batches = consumer.poll(timeout_ms=500, max_records=max_records)
        if batches:
            deadline = time.monotonic() + idle_timeout
        for tp in due.keys() - settled:
            # The high watermark of the first fetch is the end as it was when reading began:
            # some brokers (Tansu) answer ListOffsets(latest) with the last batch's base + 1.
            highwater = consumer.highwater(tp)
            if highwater is not None:
                due[tp] = max(due[tp], highwater)
                settled.add(tp)
        for tp, records in batches.items():
            end = due.get(tp)
            if end is None:
                continue
            for r in records:
                if r.offset >= end:
                    break
                yield InboundRecord(
                    r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers or ())
                )
        for tp in list(due):
            # Positions skip transaction markers and compacted gaps, so compare, not count.
            if consumer.position(tp) >= due[tp]:
                del due[tp]
        if due and time.monotonic() > deadline:
            left = ", ".join(f"{tp.topic}/{tp.partition}" for tp in due)
            raise TransportError(f"no message for {idle_timeout:g}s while reading {left}")
