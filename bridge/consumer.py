"""The bridge's consumer: one group member polling the usage and GPU topics, and the scrape-time checkpoint.

Delivery guarantee (docs/bridge.md): at-least-once consumption, duplicates dropped by `(source,
id)`, and counters that stay right across a crash. Offsets are committed only up to what a
checkpoint holds, and a checkpoint is what a scrape is served:

- A scrape is answered by the consumer's `checkpoint` (`checkpoint.ScrapeCheckpoint`, built with
  the consumer and documented there: lock, then write, then commit); the consumer thread commits
  the offsets of the checkpoint just written before its next poll.
- After a crash the new process restores the checkpoint, so every counter continues from the last
  value served, and reads each partition again from the checkpointed offset: the events after it
  are counted once, those before it are already in the restored values. The `dedupe_replay_messages`
  before that offset are read again only to remember their identities.
- On a rebalance the revoked partitions are checkpointed and committed at the position reached
  (this member keeps serving what it counted). On SIGTERM the batch in hand is finished, the offsets
  of the last checkpoint are committed, and the member leaves the group.
- A restored checkpoint is trusted only for the cluster and topics it was written for: once the
  member joins, their ids are compared with the checkpoint's, and on a mismatch it is set aside
  (counters from zero, offsets from the group or `auto_offset_reset`) before anything is counted. A
  restored partition whose offset lies beyond its log's end is read again from the log's start.
- A log replaced under the running member (a topic deleted and created again, another cluster
  behind the same address, a broker that lost its storage) is found at the next poll after the
  member's metadata shows a changed cluster or topic id (or, where the broker gives no ids, once
  a position lies beyond its log's end): each such partition it holds is read again from the new
  log's start, before anything fetched for it after that poll is counted; what was counted stays
  counted, and events of the new log read at the old position are dropped by the dedupe.

Lag is reported only while it is known: a partition without an end offset fetched from the log
it is read from now (the transport binds each end to its connection and topic id), or whose
position lies beyond that end (a log recreated under the member), has no lag sample rather than 0;
a sample names its log, and a scrape serves it only while that log is still the partition's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Protocol

from aifinops.exporters.config import BridgeConfig
from aifinops.exporters.runtime.selfmetrics import CollectorHealth

from .checkpoint import Checkpoint, ScrapeCheckpoint
from .metrics import BridgeStats
from .pipeline import MessageProcessor
from .producer import SendingClient
from .records import InboundRecord, Polled, TopicPartition
from .transport import LogEnd, TransportError

log = logging.getLogger(__name__)

HEALTH_NAME = "kafka_consumer"
POLL_SECONDS = 0.2
# Why a restored checkpoint was not trusted (aifinops_bridge_checkpoint_set_aside_total{reason}).
SET_ASIDE_REASONS = ("cluster_id", "topic_id", "offset_beyond_end")


class GroupConsumer(Protocol):
    """What the loop needs of a group member (`transport.ConsumerClient`)."""

    def poll(self, timeout: float, max_records: int | None = None) -> list[Polled]:
        """Records per partition."""
        ...

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit next offsets."""
        ...

    def committed(self, partition: TopicPartition) -> int | None:
        """The group's committed offset."""
        ...

    def seek(self, partition: TopicPartition, offset: int) -> None:
        """Read from `offset`."""
        ...

    def highwater(self, partition: TopicPartition) -> LogEnd | None:
        """End offset of the partition's current log as the latest fetch brought it, with that
        log; None when not known to belong to that log."""
        ...

    def position(self, partition: TopicPartition) -> int | None:
        """Next offset to read, when known."""
        ...

    def assignment(self) -> set[TopicPartition]:
        """The partitions held now."""
        ...

    def identity(self, topics: Sequence[str]) -> tuple[str | None, dict[str, str]]:
        """Cluster id and topic ids, where the broker gives them."""
        ...

    def beginning(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """First offset still stored per partition."""
        ...

    def close(self) -> None:
        """Leave the group."""
        ...


ConsumerFactory = Callable[
    [
        Callable[
            [list[TopicPartition]], Mapping[TopicPartition, int]
        ],  # revoked: offsets to commit
        Callable[[list[TopicPartition]], None],  # assigned
        Callable[[list[TopicPartition]], None],  # lost
    ],
    GroupConsumer,
]


class BridgeConsumer:
    """Polls, sorts, dead-letters and counts; commits what the latest checkpoint holds.

    `lock` (the counting lock) guards the counters and `positions()` together: a batch is counted
    and its offsets recorded under it, so a scrape never sees one without the other. `checkpoint`
    (a factory given the consumer) builds the `ScrapeCheckpoint` that serves the counters.
    """

    def __init__(
        self,
        consumer_factory: ConsumerFactory,
        processor: MessageProcessor,
        dlq_factory: Callable[[], SendingClient],
        stats: BridgeStats,
        *,
        health: CollectorHealth | None = None,
        restored: Checkpoint | None = None,
        dlq_max_bytes: int = 8 << 20,
        dedupe_replay_messages: int = 0,
        max_poll_records: int = BridgeConfig.max_poll_records,
        retry_seconds: float = 1.0,
        checkpoint: Callable[[BridgeConsumer], ScrapeCheckpoint] | None = None,
    ) -> None:
        self._factory = consumer_factory
        self.processor = processor
        self._dlq_factory = dlq_factory
        self.stats = stats
        self._health = health or CollectorHealth()
        self._dlq_max_bytes = dlq_max_bytes
        self._replay = dedupe_replay_messages
        self._max_records = max_poll_records
        self._retry = retry_seconds
        self.lock = threading.Lock()
        self._positions: dict[TopicPartition, int] = dict(restored.positions) if restored else {}
        self._restore: dict[TopicPartition, int] = dict(self._positions)
        self._restored = restored
        # What the checkpoints written now belong to: the restored one's until the broker says.
        self._cluster_id = restored.cluster_id if restored else None
        self._topic_ids: dict[str, str] = dict(restored.topic_ids) if restored else {}
        self._bound = False
        # Restored partitions whose offset is not yet known to lie within the log.
        self._unchecked: set[TopicPartition] = set()
        self._set_aside_lock = threading.Lock()
        self.set_aside_counts: dict[str, int] = dict.fromkeys(SET_ASIDE_REASONS, 0)
        self._replay_until: dict[tuple[str, int], int] = {}
        self._assigned: set[TopicPartition] = set()
        self._newly_assigned: list[TopicPartition] = []
        self._joined = threading.Event()
        self._commit_lock = threading.Lock()
        self._commit_wanted: dict[TopicPartition, int] | None = None
        self._checkpointed: dict[TopicPartition, int] = {}
        self._stop = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._client: GroupConsumer | None = None
        self._dlq: SendingClient | None = None
        # What a scrape serves (None: nothing checkpointed, as in tests of the loop alone); built
        # last, since it reads this consumer's positions.
        self.checkpoint = checkpoint(self) if checkpoint is not None else None

    # -- what the scrape side uses ---------------------------------------------------------------

    def positions(self) -> dict[TopicPartition, int]:
        """Next offset per partition included in the counters (call with `lock` held)."""
        return dict(self._positions)

    def binding(self) -> tuple[str | None, dict[str, str]]:
        """The cluster id and topic ids the current positions belong to."""
        return self._cluster_id, dict(self._topic_ids)

    def drop_restored(self) -> None:
        """Forget the restored offsets (call with `lock` held): partitions resume from the
        group's committed offsets or `auto_offset_reset`."""
        for tp, offset in (self._restored.positions if self._restored else {}).items():
            if self._positions.get(tp) == offset:
                self._positions.pop(tp, None)
        self._restore.clear()
        self._restored = None

    def request_commit(self, positions: Mapping[TopicPartition, int]) -> None:
        """Commit these offsets (those of a checkpoint just written) from the consumer thread."""
        with self._commit_lock:
            self._commit_wanted = dict(positions)
            self._checkpointed = dict(positions)

    def ready(self) -> bool:
        """True once the member joined its group (with or without partitions)."""
        return self._joined.is_set()

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the consumer thread (it connects, and reconnects, by itself)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="kafka-consumer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Finish the batch in hand, commit the last checkpoint's offsets, leave the group."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)
            self._thread = None

    # -- the loop --------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                client = self._client or self._connect()
                self._commit_if_wanted(client)
                batches = client.poll(POLL_SECONDS, self._max_records)
                batches = self._settle_assignments(client, batches)
                if batches:
                    self._handle(client, batches)
                self._update_lag(client)
                self._health.record(HEALTH_NAME, True, time.perf_counter() - started)
            except TransportError as exc:
                self._health.record(HEALTH_NAME, False, time.perf_counter() - started)
                log.error("bridge consumer: %s; retrying in %.1fs", exc, self._retry)
                self._stop.wait(self._retry)
            except Exception:
                self._health.record(HEALTH_NAME, False, time.perf_counter() - started)
                log.exception("bridge consumer: unexpected failure; retrying")
                self._stop.wait(self._retry)
        self._shutdown()

    def _connect(self) -> GroupConsumer:
        client = self._factory(self._on_revoked, self._on_assigned, self._on_lost)
        self._client = client

        def still_reads(tp: TopicPartition, log: Hashable) -> bool:
            # At a scrape, on the scraping thread: the transport's end lookup reads, never waits
            # (a closed client has no connection, so nothing it computed is served).
            end = client.highwater(tp)
            return end is not None and end.log == log

        self.stats.serve_lag_while(still_reads)
        log.info("bridge consumer: connected; joining the group")
        return client

    def _shutdown(self) -> None:
        client = self._client
        if client is not None:
            with self._commit_lock:
                final = {tp: o for tp, o in self._checkpointed.items() if tp in self._assigned}
            try:
                client.commit(final)
                if final:
                    log.info("bridge consumer: committed %d partitions on stop", len(final))
            except TransportError as exc:
                log.error("bridge consumer: final commit failed: %s", exc)
            self._closing = True
            client.close()
            self._client = None
            self._closing = False
        if self._dlq is not None:
            self._dlq.close()
            self._dlq = None

    def _commit_if_wanted(self, client: GroupConsumer) -> None:
        with self._commit_lock:
            wanted, self._commit_wanted = self._commit_wanted, None
        if not wanted:
            return
        offsets = {tp: o for tp, o in wanted.items() if tp in self._assigned}
        try:
            client.commit(offsets)
        except TransportError as exc:
            # The next checkpoint asks again; until then a restart re-reads a little more.
            log.warning("bridge consumer: %s", exc)

    # -- rebalances (called inside poll, on this thread) -----------------------------------------

    def _on_revoked(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """Partitions go to another member: checkpoint, and return where this one got to (the
        transport commits it before the rebalance completes)."""
        if not partitions or self._closing:
            # Closing: the final commit (the last checkpoint's offsets) is already done.
            return {}
        # This member keeps serving what it counted: checkpoint it, so the next owner can start
        # after it even if this process dies before its next scrape.
        if self.checkpoint is not None:
            try:
                self.checkpoint.checkpoint()
            except Exception:
                log.exception("bridge consumer: checkpoint on rebalance failed")
        offsets = self._forget(partitions)
        log.info("bridge consumer: %d partitions revoked", len(partitions))
        return offsets

    def _on_lost(self, partitions: list[TopicPartition]) -> None:
        """The group dropped this member (session expired, broker restarted): the partitions are
        someone else's already."""
        self._forget(partitions)
        log.warning(
            "bridge consumer: %d partitions lost with the group membership", len(partitions)
        )

    def _forget(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        with self.lock:
            offsets = {tp: self._positions[tp] for tp in partitions if tp in self._positions}
            for tp in partitions:
                self._positions.pop(tp, None)
                self._replay_until.pop(tp, None)
        self._assigned.difference_update(partitions)
        self.stats.drop_lag(partitions)
        return offsets

    def _on_assigned(self, partitions: list[TopicPartition]) -> None:
        self._assigned.update(partitions)
        self._newly_assigned.extend(partitions)
        self._joined.set()
        log.info(
            "bridge consumer: assigned %s",
            ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(partitions)) or "nothing",
        )

    def _settle_assignments(
        self, client: GroupConsumer, batches: list[tuple[Any, list[Any]]]
    ) -> list[tuple[Any, list[Any]]]:
        """Resume restored partitions at their checkpointed offsets (with a dedupe replay before
        them); records fetched for them from elsewhere are dropped and fetched again."""
        if not self._bound and self._joined.is_set():
            self._bind(client)
        # Before anything of this batch is counted: a partition whose log was replaced since the
        # last look is read again from the new log's start, and what was fetched for it is dropped.
        moved = self._check_logs(client) if self._bound else set()
        if not self._newly_assigned:
            return self._without(batches, moved)
        fresh, self._newly_assigned = self._newly_assigned, []
        for tp in fresh:
            checkpointed = self._restore.pop(tp, None)
            if checkpointed is None:
                continue
            committed = client.committed(tp)
            # Another member may have gone further while this one was away: it counted those.
            target = checkpointed if committed is None else max(checkpointed, committed)
            start = max(0, target - self._replay)
            client.seek(tp, start)
            moved.add(tp)
            self._unchecked.add(tp)
            with self.lock:
                self._positions[tp] = target
                if start < target:
                    self._replay_until[(tp.topic, tp.partition)] = target
            log.info(
                "bridge consumer: %s[%d] resumes at %d (checkpoint %d, committed %s)%s",
                tp.topic,
                tp.partition,
                target,
                checkpointed,
                committed,
                f", re-reading {target - start} messages for dedupe" if start < target else "",
            )
        if self._restore:
            # Partitions of the checkpoint that went to other members: their offsets were
            # committed with the checkpoint, so the new owners start after what it holds.
            with self.lock:
                for tp in list(self._restore):
                    if tp not in self._assigned:
                        self._positions.pop(tp, None)
            self._restore = {tp: o for tp, o in self._restore.items() if tp in self._assigned}
        return self._without(batches, moved)

    @staticmethod
    def _without(batches: list[Polled], moved: set[TopicPartition]) -> list[Polled]:
        if not moved:
            return batches
        return [(tp, records) for tp, records in batches if TopicPartition(*tp) not in moved]

    def _bind(self, client: GroupConsumer) -> None:
        """Compare the restored checkpoint's cluster and topic ids with the broker's; set it
        aside on a mismatch, before anything restored is used."""
        self._bound = True
        cluster_id, topic_ids = client.identity(self.processor.topics)
        restored = self._restored
        if restored is not None:
            reason = restored.mismatch(cluster_id, topic_ids)
            if reason is not None:
                self._set_checkpoint_aside(reason.partition(":")[0], reason)
                self._cluster_id, self._topic_ids = None, {}
        self._cluster_id = cluster_id or self._cluster_id
        self._topic_ids.update(topic_ids)

    def _check_logs(self, client: GroupConsumer) -> set[TopicPartition]:
        """Compare the cluster and topic ids the member's metadata gives now with those its
        positions belong to (the binding); learn the ids of topics created since (auto-created
        on produce). A changed id means a log replaced under the running member: each partition
        of it that this member holds is read again from the new log's start. Returns those.

        Runs once per poll, on ids the metadata already holds (no request); the transport keeps
        that metadata at most `METADATA_MAX_AGE_MS` old."""
        cluster_id, topic_ids = client.identity(self.processor.topics)
        replaced: dict[str, tuple[str, str]] = {}
        # Another cluster's ids replace the old ones whole; a topic's new id replaces its own.
        ids = {**self._topic_ids, **topic_ids}
        if cluster_id and self._cluster_id and cluster_id != self._cluster_id:
            detail = f"cluster {self._cluster_id!r} is now {cluster_id!r}"
            replaced = dict.fromkeys(self.processor.topics, ("cluster_id", detail))
            ids = dict(topic_ids)
        else:
            for topic, new in topic_ids.items():
                old = self._topic_ids.get(topic)
                if old is not None and new != old:
                    replaced[topic] = ("topic_id", f"topic id {old} is now {new} (recreated)")
        if not replaced:
            if (cluster_id and cluster_id != self._cluster_id) or ids != self._topic_ids:
                with self.lock:
                    self._cluster_id = cluster_id or self._cluster_id
                    self._topic_ids = ids
            return set()
        held = sorted(tp for tp in self._assigned if tp.topic in replaced)
        if not held:
            log.error(
                "bridge consumer: the broker's logs are not those the positions belong to (%s); "
                "this member holds none of their partitions",
                "; ".join(sorted({detail for _reason, detail in replaced.values()})),
            )
        by_reason: dict[tuple[str, str], list[TopicPartition]] = {}
        for tp in held:
            by_reason.setdefault(replaced[tp.topic], []).append(tp)
        # The new ids are bound in the same step as the positions move to the new logs, so a
        # checkpoint never pairs the new ids with the old logs' offsets or the other way round.
        self._read_again(client, by_reason, (cluster_id or self._cluster_id, ids))
        # A restored offset not used yet belongs to the old log too.
        self._restore = {tp: o for tp, o in self._restore.items() if tp.topic not in replaced}
        return set(held)

    def _read_again(
        self,
        client: GroupConsumer,
        by_reason: Mapping[tuple[str, str], Sequence[TopicPartition]],
        binding: tuple[str | None, Mapping[str, str]] | None = None,
    ) -> None:
        """Read partitions whose log was replaced under the member from the new log's start
        (`by_reason`: (reason, what differs) -> partitions), and bind the positions to
        `binding`'s cluster and topic ids.

        Not from the group's committed offset: nothing tells on which log it was committed (this
        member may have committed offsets of the new log read at its old positions before the
        change was seen). What was already counted stays counted (the old log's events, and those
        of the new log read at the old position, which the dedupe drops when read again)."""
        partitions = [tp for tps in by_reason.values() for tp in tps]
        # Asked first: when the broker cannot answer, nothing has changed and the next poll
        # finds the same difference again.
        starts = client.beginning(partitions) if partitions else {}
        with self.lock:
            was = {tp: self._positions.get(tp) for tp in partitions}
            for tp in partitions:
                self._positions[tp] = starts.get(tp, 0)
                self._replay_until.pop((tp.topic, tp.partition), None)
            if binding is not None:
                self._cluster_id, self._topic_ids = binding[0], dict(binding[1])
        for (reason, detail), tps in by_reason.items():
            moves = []
            for tp in tps:
                start = starts.get(tp, 0)
                client.seek(tp, start)
                self._unchecked.discard(tp)
                moves.append(f"{tp.topic}[{tp.partition}] {was.get(tp)} -> {start}")
            log.error(
                "bridge consumer: a partition's log is not the log its position belongs to (%s); "
                "reading the new log from its start (what was counted stays counted): %s",
                detail,
                ", ".join(moves),
            )
            self.stats.count_replaced(reason, len(tps))
        self.stats.drop_lag(partitions)

    def _set_checkpoint_aside(self, reason: str, detail: str) -> None:
        with self._set_aside_lock:
            self.set_aside_counts[reason] = self.set_aside_counts.get(reason, 0) + 1
        log.error(
            "bridge consumer: the restored checkpoint does not describe this broker (%s); it is "
            "set aside and NOT trusted: counters start from zero, partitions resume from the "
            "group's committed offsets or auto_offset_reset",
            detail,
        )
        if self.checkpoint is not None:
            self.checkpoint.set_aside(detail)
        else:
            with self.lock:
                self.drop_restored()

    # -- one batch -------------------------------------------------------------------------------

    def _handle(self, client: GroupConsumer, batches: list[Polled]) -> None:
        records = [r for _tp, part in batches for r in part]
        batch = self.processor.process(records, self._replay_until)
        if batch.invalid and not self._dead_letter(batch.invalid):
            # Not stored in the DLQ yet: count nothing, read the same messages again later.
            for tp, part in batches:
                client.seek(TopicPartition(*tp), part[0].offset)
            self._stop.wait(self._retry)
            return
        with self.lock:
            counts = self.processor.apply(batch)
            self.stats.count(counts)
            positions, replaying = self._positions, self._replay_until
            for tp, part in batches:
                key = TopicPartition(*tp)
                after = part[-1].offset + 1
                end = replaying.get(key) if replaying else None
                if end is None:
                    # Not max(): a log that was recreated (a broker that lost its storage) starts
                    # again at 0, and the checkpoint must follow it.
                    positions[key] = after
                else:
                    positions[key] = max(positions.get(key, 0), after)
                    if after >= end:
                        # The dedupe replay of this partition reached the checkpoint's offset.
                        del replaying[key]

    def _dead_letter(self, invalid: Sequence[tuple[InboundRecord, str]]) -> bool:
        """Write invalid messages to their DLQ; True once Kafka stored them."""
        messages = self.processor.dead_letters(invalid, self._dlq_max_bytes)
        try:
            if self._dlq is None:
                self._dlq = self._dlq_factory()
            results = self._dlq.send_batch(messages)
        except TransportError as exc:
            log.error("bridge consumer: dead-letter producer: %s", exc)
            self._health.record(HEALTH_NAME, False, 0.0)
            return False
        failed = [(m, r) for m, r in zip(messages, results, strict=True) if not r.ok]
        if any(not r.permanent for _m, r in failed):
            log.error(
                "bridge consumer: dead letters not stored (%s); will retry", failed[0][1].error
            )
            self._dlq.close(timeout=1.0)
            self._dlq = None
            return False
        for message, result in failed:
            # Even cut to dlq_max_message_bytes the DLQ refuses it: say so loudly; the original
            # stays in its topic until retention.
            log.error(
                "bridge consumer: the DLQ refused a dead letter for %s (%s): %s",
                message.topic,
                result.error,
                dict(message.headers).get("aifinops-dlq-origin", b"").decode(),
            )
        for _record, reason in invalid[:3]:
            log.warning("bridge consumer: dead-lettered an invalid message: %s", reason[:300])
        return True

    def _update_lag(self, client: GroupConsumer) -> None:
        lag, logs = {}, {}
        with self.lock:
            positions = dict(self._positions)
        held = client.assignment()
        if held != self._assigned:
            # The group took partitions away without a callback (a broker that lost the group).
            self.stats.drop_lag(self._assigned - held)
            self._assigned &= held
        unknown = []
        for tp in self._assigned:
            # None unless a fetch over the current connection to the leader brought it: an end
            # read before a reconnect may be that of a log the broker no longer has.
            end = client.highwater(tp)
            position = positions.get(tp)
            if position is None and end is not None:
                # Nothing read from it yet: where the member stands is where it will start.
                position = client.position(tp)
            if end is None or position is None or position > end.offset:
                # Not fetched yet from the log there is now (a rejoin, a reconnect), or a log that
                # ends before the position (recreated): unknown, which is no sample, never a
                # misleading 0.
                unknown.append(tp)
                if end is not None and position is not None and position > end.offset:
                    if tp in self._unchecked:
                        self._beyond_end(client, tp, position, end.offset)
                    elif tp in positions and tp.topic not in self._topic_ids:
                        # A position reached on this log lies beyond its end: the log was
                        # replaced, and the broker gives no topic id to have said so.
                        detail = f"position {position} lies beyond the log's end {end.offset}"
                        self._read_again(client, {("offset_beyond_end", detail): [tp]})
                continue
            self._unchecked.discard(tp)
            lag[tp] = end.offset - position
            # Served only while this is still the partition's log (checked at each scrape): the
            # next update may come after a reconnect to a broker that lost it.
            logs[tp] = end.log
        if unknown:
            self.stats.drop_lag(unknown)
        if lag:
            self.stats.set_lag(lag, logs)

    def _beyond_end(
        self, client: GroupConsumer, tp: TopicPartition, position: int, high: int
    ) -> None:
        """A restored offset beyond its log's end: the log is not the one checkpointed (the
        broker gave no topic id to tell); read the log there is from its start."""
        self._unchecked.discard(tp)
        with self._set_aside_lock:
            self.set_aside_counts["offset_beyond_end"] += 1
        start = client.beginning([tp]).get(tp, 0)
        log.error(
            "bridge consumer: %s[%d]: the checkpoint's offset %d lies beyond the log's end %d "
            "(topic recreated or another broker); reading it from %d",
            tp.topic,
            tp.partition,
            position,
            high,
            start,
        )
        client.seek(tp, start)
        with self.lock:
            self._positions[tp] = start
            self._replay_until.pop((tp.topic, tp.partition), None)
