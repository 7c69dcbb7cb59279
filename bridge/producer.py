"""`KafkaEventSink`: the exporters' producer — a bounded memory queue, a disk spool and one sender thread.

Every published event takes one path through a single FIFO: the memory queue first, the spool
behind it. `publish()` only encodes the event and appends it under a lock, so it never waits for
Kafka and never raises. The sender thread sends batches (keyed, `acks=all`, idempotent) and waits
for their acknowledgements. When the memory queue is full, or a send fails because the broker is
away, the queue moves to the spool and later events follow it there until the spool has been
replayed, oldest first, with exponential backoff between attempts. The spool survives the process:
a restarted exporter replays what an earlier run (even one killed with SIGKILL) spooled.

Every message held in memory or in flight keeps its room in the spool (`spool_max_bytes` bounds
the lot), so a failed send or a full queue can always move it there. `reserve()` sets room aside
for a request's events before they are counted and refuses the whole request when there is none
(counted in `aifinops_bridge_refused_messages_total{topic}`; the token exporter answers 503):
what a caller counted after a reservation is never dropped for lack of room.
"""

from __future__ import annotations

import collections
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from aifinops.exporters.config import Config, KafkaConfig, ProducerConfig
from aifinops.exporters.events import encode
from aifinops.exporters.runtime.selfmetrics import CollectorHealth

from .records import OutboundMessage
from .spool import Spool, framed_size
from .transport import BrokerUnavailableError, ProducerClient, SendResult, TransportError

log = logging.getLogger(__name__)

# Messages per send: big enough to amortise a round trip, small enough to bound what one failed
# attempt re-spools.
MAX_BATCH_MESSAGES = 2000
MAX_BATCH_BYTES = 4 << 20
# `aifinops_collector_success{collector="kafka_producer"}`: 1 when the latest connection or send
# attempt succeeded, 0 when it failed (events then wait in the spool).
HEALTH_NAME = "kafka_producer"


class SendingClient(Protocol):
    """What the sender needs of a Kafka client (`transport.ProducerClient`)."""

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        """Send in order, wait for acknowledgements, one result per message."""
        ...

    def close(self, timeout: float = 5.0) -> None:
        """Release the connection."""
        ...


class ProducerStats:
    """Counts per topic (produced, failed sends, dropped by reason) under a lock, for the collector."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._produced: dict[str, int] = collections.defaultdict(int)
        self._errors: dict[str, int] = collections.defaultdict(int)
        self._dropped: dict[tuple[str, str], int] = collections.defaultdict(int)
        self._refused: dict[str, int] = collections.defaultdict(int)

    def produced(self, topic: str, n: int = 1) -> None:
        """`n` messages acknowledged by Kafka."""
        with self._lock:
            self._produced[topic] += n

    def error(self, topic: str, n: int = 1) -> None:
        """`n` messages whose send failed (they wait in the spool for another attempt)."""
        with self._lock:
            self._errors[topic] += n

    def dropped(self, topic: str, reason: str, n: int = 1) -> None:
        """`n` messages given up on: `too_large`, `rejected`, `spool_full`, `unencodable`, `stopped`."""
        with self._lock:
            self._dropped[(topic, reason)] += n

    def refused(self, topic: str, n: int) -> None:
        """`n` messages refused before they were counted anywhere (no room to keep them)."""
        with self._lock:
            self._refused[topic] += n

    def refused_total(self) -> dict[str, int]:
        """A copy of the refused counts per topic."""
        with self._lock:
            return dict(self._refused)

    def snapshot(
        self,
    ) -> tuple[dict[str, int], dict[str, int], dict[tuple[str, str], int]]:
        """Copies of the produced, failed and dropped tables."""
        with self._lock:
            return dict(self._produced), dict(self._errors), dict(self._dropped)


class ProducerCollector(Collector):
    """The producer's self-metrics.

    # TYPE aifinops_bridge_produced_total counter
    aifinops_bridge_produced_total{topic="ai-api-costs"} 1042
    # TYPE aifinops_bridge_spooled_messages gauge
    aifinops_bridge_spooled_messages 0
    """

    def __init__(self, stats: ProducerStats, spooled: Callable[[], int], topics: Iterable[str]):
        self._stats = stats
        self._spooled = spooled
        # Known topics are exposed at 0 from the start, so rate() and alerts see them at once.
        self._topics = tuple(topics)

    def collect(self) -> Iterable[Metric]:
        """Produced, failed and dropped counts per topic, and the spool's size."""
        produced, errors, dropped = self._stats.snapshot()
        produced_f = CounterMetricFamily(
            "aifinops_bridge_produced_total",
            "Messages Kafka acknowledged, per topic.",
            labels=["topic"],
        )
        errors_f = CounterMetricFamily(
            "aifinops_bridge_produce_errors_total",
            "Messages whose send to Kafka failed; they wait in the spool and are sent again "
            "(or, when dropped, also count in aifinops_bridge_dropped_messages_total).",
            labels=["topic"],
        )
        for topic in sorted({*self._topics, *produced, *errors}):
            produced_f.add_metric([topic], produced.get(topic, 0))
            errors_f.add_metric([topic], errors.get(topic, 0))
        dropped_f = CounterMetricFamily(
            "aifinops_bridge_dropped_messages_total",
            "Messages the producer gave up on, per topic and reason "
            "(too_large, rejected, spool_full, unencodable, stopped).",
            labels=["topic", "reason"],
        )
        for (topic, reason), n in sorted(dropped.items()):
            dropped_f.add_metric([topic, reason], n)
        refused = self._stats.refused_total()
        refused_f = CounterMetricFamily(
            "aifinops_bridge_refused_messages_total",
            "Messages refused before anything of them was counted, because neither the memory "
            "queue nor the spool had room to keep them (the request was answered 503).",
            labels=["topic"],
        )
        for topic in sorted({*self._topics, *refused}):
            refused_f.add_metric([topic], refused.get(topic, 0))
        spooled = GaugeMetricFamily(
            "aifinops_bridge_spooled_messages",
            "Messages waiting in the disk spool for Kafka.",
        )
        spooled.add_metric([], self._spooled())
        yield produced_f
        yield errors_f
        yield dropped_f
        yield refused_f
        yield spooled


def default_spool_dir(program: str | None = None) -> Path:
    """`data/spool/<program>` under the working directory (the program's name from argv by default)."""
    name = program or Path(sys.argv[0]).name or "aifinops"
    return Path("data") / "spool" / (re.sub(r"[^A-Za-z0-9._-]", "_", name) or "aifinops")


class KafkaEventSink:
    """An `EventSink` that writes to Kafka through a memory queue and a disk spool.

    - `publish(topic, key, event, headers)`: never blocks on Kafka, never raises.
    - `start()` opens (and locks) the spool and starts the sender; raises `SpoolError` when the
      directory is unusable or another process holds it.
    - `stop()` sends what is in memory for up to `stop_timeout_seconds`, spools the rest, and
      closes everything.
    - `collector()` exposes `aifinops_bridge_produced_total{topic}`,
      `aifinops_bridge_produce_errors_total{topic}`, `aifinops_bridge_dropped_messages_total
      {topic,reason}` and `aifinops_bridge_spooled_messages`.
    """

    def __init__(
        self,
        kafka: KafkaConfig,
        producer: ProducerConfig,
        spool_dir: str | os.PathLike[str],
        *,
        client_factory: Callable[[], SendingClient] | None = None,
        topics: Iterable[str] = (),
        health: CollectorHealth | None = None,
    ) -> None:
        self._settings = producer
        self._health = health or CollectorHealth()
        self._client_factory = client_factory or (lambda: ProducerClient(kafka, producer))
        self.spool = Spool(spool_dir, max_bytes=producer.spool_max_bytes)
        self.stats = ProducerStats()
        self._topics = tuple(topics)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._memory: collections.deque[OutboundMessage] = collections.deque()
        # Spool bytes (framed) of what memory and the batch in flight hold, and of what
        # reservations set aside: room the spool keeps for them.
        self._memory_bytes = 0
        self._inflight_bytes = 0
        self._reserved_bytes = 0
        # While true every new message goes to the spool, behind those already there (order).
        self._spooling = False
        self._sender_idle = False
        self._inflight = 0
        self._stopping = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._client: SendingClient | None = None
        self._failing_since: float | None = None
        self._last_drop_log = -10.0
        self._unlogged_drops = 0
        self._last_refuse_log = -10.0

    @classmethod
    def from_config(
        cls, config: Config, program: str | None = None, health: CollectorHealth | None = None
    ) -> KafkaEventSink:
        """The sink for a daemon: `kafka` section for the connection, `producer` for the rest;
        its health goes to `health` as `kafka_producer`."""
        spool_dir = config.producer.spool_dir or default_spool_dir(program)
        topics = config.kafka.topics
        return cls(
            config.kafka,
            config.producer,
            spool_dir,
            topics=(topics.usage.name, topics.gpu.name),
            health=health,
        )

    # -- EventSink -------------------------------------------------------------------------------

    def publish(
        self, topic: str, key: str, event: Mapping[str, Any], headers: Mapping[str, bytes]
    ) -> None:
        """Queue one CloudEvent for `topic` under `key`; returns at once, never raises."""
        self.publish_many(topic, ((key, event, headers),))

    def publish_many(
        self,
        topic: str,
        events: Iterable[tuple[str, Mapping[str, Any], Mapping[str, bytes]]],
    ) -> None:
        """`publish` for many `(key, event, headers)` of one topic, in order: encoded, then queued
        under one lock (while spooling, written to the spool in one append)."""
        messages = [m for m in self._encode(topic, events) if m is not None]
        try:
            self.enqueue_many(messages)
        except Exception:  # never let a bug here reach the exporter's request path
            self.stats.dropped(topic, "internal", len(messages))
            log.exception("producer: queueing messages failed")

    def reserve(
        self,
        topic: str,
        events: Sequence[tuple[str, Mapping[str, Any], Mapping[str, bytes]]],
    ) -> ProducerReservation | None:
        """Encode `events` and set aside the spool room they need, all or none: None (and the
        events counted as refused) when the spool, less what memory, the batch in flight and
        other reservations hold, cannot take them all. Never raises."""
        messages = self._encode(topic, events)
        size = sum(framed_size(m) for m in messages if m is not None)
        with self._lock:
            used = (
                self.spool.size_bytes
                + self._memory_bytes
                + self._inflight_bytes
                + self._reserved_bytes
            )
            if self._closed or used + size > self.spool.max_bytes:
                self.stats.refused(topic, len(messages))
                now = time.monotonic()
                if now - self._last_refuse_log >= 10:
                    self._last_refuse_log = now
                    log.error(
                        "producer: no room to keep %d events for %s (the spool %s, with what "
                        "memory and reservations hold, uses %d of %d bytes; they need %d): "
                        "refused; %d events refused for %s since start",
                        len(messages),
                        topic,
                        self.spool.directory,
                        used,
                        self.spool.max_bytes,
                        size,
                        self.stats.refused_total().get(topic, 0),
                        topic,
                    )
                return None
            self._reserved_bytes += size
        return ProducerReservation(self, messages, size)

    def _commit(self, messages: Sequence[OutboundMessage], size: int) -> None:
        """Queue reserved messages and release their reservation, under one lock."""
        with self._lock:
            self._reserved_bytes -= size
            self._enqueue_locked(messages)

    def _cancel(self, size: int) -> None:
        with self._lock:
            self._reserved_bytes -= size

    def _encode(
        self,
        topic: str,
        events: Iterable[tuple[str, Mapping[str, Any], Mapping[str, bytes]]],
    ) -> list[OutboundMessage | None]:
        """One message per event, None where it cannot be encoded (dropped and counted)."""
        messages: list[OutboundMessage | None] = []
        for key, event, headers in events:
            try:
                messages.append(
                    OutboundMessage(
                        topic,
                        key.encode() if key is not None else None,
                        encode(event),
                        tuple(headers.items()),
                    )
                )
            except Exception as exc:
                messages.append(None)
                self.stats.dropped(str(topic), "unencodable")
                self._log_drop(f"event for {topic} cannot be encoded: {exc}")
        return messages

    def enqueue(self, message: OutboundMessage) -> None:
        """Queue an already encoded message (the path `publish` takes after encoding)."""
        self.enqueue_many((message,))

    def enqueue_many(self, messages: Sequence[OutboundMessage]) -> None:
        """Queue already encoded messages, in order."""
        if not messages:
            return
        with self._lock:
            self._enqueue_locked(messages)

    def _enqueue_locked(self, messages: Sequence[OutboundMessage]) -> None:
        """`enqueue_many` (caller holds the lock)."""
        if not messages:
            return
        if self._closed:
            for message in messages:
                self.stats.dropped(message.topic, "stopped")
            self._log_drop(f"message for {messages[0].topic} published after stop", len(messages))
            return
        if not self._spooling:
            if len(self._memory) + len(messages) <= self._settings.queue_size:
                self._memory.extend(messages)
                self._memory_bytes += sum(map(framed_size, messages))
                if self._sender_idle:
                    self._wake.notify()
                return
            log.warning(
                "producer: memory queue full (%d messages); spooling to %s until Kafka catches up",
                len(self._memory),
                self.spool.directory,
            )
            # In order: what the queue holds, then these (as if they came one by one).
            self._to_spool([*self._memory, *messages], prepend=False)
            self._memory.clear()
            self._memory_bytes = 0
            self._spooling = True
            self._wake.notify()
            return
        self._to_spool(messages, prepend=False)

    def _to_spool(self, messages: Sequence[OutboundMessage], *, prepend: bool) -> None:
        """Write to the spool (caller holds the lock); what does not fit is dropped and counted."""
        if not messages:
            return
        written = self.spool.prepend(messages) if prepend else self.spool.append(messages)
        lost = messages[written:]
        if lost:
            for message in lost:
                self.stats.dropped(message.topic, "spool_full")
            self._log_drop(
                f"spool {self.spool.directory} is full ({self._settings.spool_max_bytes} bytes): "
                f"dropped {len(lost)} messages",
                len(lost),
            )

    def _log_drop(self, text: str, dropped: int = 1) -> None:
        """Log at most every 10 s, with the exact number of messages dropped since the last
        line (the lines in between are not written, their messages are counted)."""
        self._unlogged_drops += dropped
        now = time.monotonic()
        if now - self._last_drop_log >= 10:
            self._last_drop_log = now
            log.error(
                "producer: %s (%d messages dropped since the last report)",
                text,
                self._unlogged_drops,
            )
            self._unlogged_drops = 0

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the spool (replaying an earlier run's content first) and start sending."""
        self.spool.open()
        with self._lock:
            self._closed = False
            self._spooling = not self.spool.empty()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="kafka-producer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Send what is in memory (up to `stop_timeout_seconds`), spool the rest, close."""
        self._stopping.set()
        with self._lock:
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(self._settings.stop_timeout_seconds + 30)
            self._thread = None
        with self._lock:
            # The sender is gone (or stuck): nothing else may touch the queue now.
            self._closed = True
            leftover = list(self._memory)
            self._memory.clear()
            self._memory_bytes = 0
            self._to_spool(leftover, prepend=False)
        if self._client is not None:
            self._client.close()
            self._client = None
        self.spool.close()

    def collector(self) -> Collector:
        """The Prometheus collector of this producer's self-metrics."""
        return ProducerCollector(self.stats, lambda: self.spool.count, self._topics)

    # -- introspection (tests, webhook readiness) ------------------------------------------------

    @property
    def queued(self) -> int:
        """Messages in memory, in flight, or in the spool."""
        with self._lock:
            return len(self._memory) + self._inflight + self.spool.count

    def wait_delivered(self, timeout: float) -> bool:
        """Wait until nothing is queued, in flight or spooled; True when that happened in time."""
        deadline = time.monotonic() + timeout
        while self.queued:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    # -- the sender ------------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = self._settings.retry_backoff_ms / 1000
        # Connect at once, so the health says whether Kafka is reachable before the first event.
        self._client_or_none()
        while not self._stopping.is_set():
            try:
                failed = self._send_next()
            except Exception:
                log.exception("producer: sender iteration failed")
                failed = True
            if failed:
                self._close_client()
                if self._stopping.wait(backoff):
                    break
                backoff = min(backoff * 2, self._settings.retry_backoff_max_ms / 1000)
            else:
                backoff = self._settings.retry_backoff_ms / 1000
        self._final_flush()

    def _take_memory(self) -> list[OutboundMessage]:
        """Pop the next memory batch (caller holds the lock)."""
        batch: list[OutboundMessage] = []
        size = 0
        memory = self._memory
        while memory and len(batch) < MAX_BATCH_MESSAGES and size < MAX_BATCH_BYTES:
            message = memory.popleft()
            size += len(message.value)
            batch.append(message)
        self._inflight = len(batch)
        framed = sum(map(framed_size, batch))
        self._memory_bytes -= framed
        self._inflight_bytes = framed
        return batch

    def _send_next(self) -> bool:
        """Send one batch from memory or the spool; returns True when an attempt failed."""
        with self._lock:
            if not self._memory and not self._spooling:
                self._sender_idle = True
                self._wake.wait(0.5)
                self._sender_idle = False
            batch = self._take_memory() if self._memory else None
            spooling = self._spooling
        if batch:
            return self._send_memory(batch)
        if spooling:
            return self._send_spool()
        return False

    def _client_or_none(self) -> SendingClient | None:
        if self._client is None:
            started = time.perf_counter()
            try:
                self._client = self._client_factory()
            except (BrokerUnavailableError, TransportError) as exc:
                self._health.record(HEALTH_NAME, False, time.perf_counter() - started)
                self._note_failure(f"cannot connect to Kafka: {exc}")
                return None
            self._health.record(HEALTH_NAME, True, time.perf_counter() - started)
        return self._client

    def _send(self, batch: Sequence[OutboundMessage]) -> list[SendResult]:
        client = self._client_or_none()
        if client is None:
            results = [SendResult(False, "broker unavailable")] * len(batch)
        else:
            started = time.perf_counter()
            results = client.send_batch(batch)
            reached = not any(not r.ok and not r.permanent for r in results)
            self._health.record(HEALTH_NAME, reached, time.perf_counter() - started)
        first_error = ""
        produced: dict[str, int] = {}
        for message, result in zip(batch, results, strict=True):
            if result.ok:
                produced[message.topic] = produced.get(message.topic, 0) + 1
            else:
                self.stats.error(message.topic)
                first_error = first_error or result.error
                if result.permanent:
                    reason = "too_large" if "TooLarge" in result.error else "rejected"
                    self.stats.dropped(message.topic, reason)
                    log.error(
                        "producer: Kafka refused a message for %s (%s); dropped",
                        message.topic,
                        result.error,
                    )
        for topic, n in produced.items():
            self.stats.produced(topic, n)
        if first_error and any(not r.ok and not r.permanent for r in results):
            self._note_failure(first_error)
        return results

    def _note_failure(self, reason: str) -> None:
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            log.warning(
                "producer: Kafka unavailable (%s); events wait in %s", reason, self.spool.directory
            )
        else:
            log.debug("producer: still failing: %s", reason)

    def _note_success(self) -> None:
        if self._failing_since is not None:
            log.info(
                "producer: Kafka reachable again after %.1fs",
                time.monotonic() - self._failing_since,
            )
            self._failing_since = None

    def _send_memory(self, batch: list[OutboundMessage]) -> bool:
        results = self._send(batch)
        retry = [m for m, r in zip(batch, results, strict=True) if not r.ok and not r.permanent]
        with self._lock:
            self._inflight = 0
            self._inflight_bytes = 0
            if retry:
                # Older than anything queued or spooled: they go first, the queue behind them.
                self._to_spool([*retry, *self._memory], prepend=True)
                self._memory.clear()
                self._memory_bytes = 0
                self._spooling = True
                return True
        self._note_success()
        return False

    def _send_spool(self) -> bool:
        entries = self.spool.read(MAX_BATCH_MESSAGES, MAX_BATCH_BYTES)
        if not entries:
            with self._lock:
                if self.spool.empty() or self.spool.exhausted():
                    self._leave_spooling()
            return False
        batch = [message for message, _ in entries]
        results = self._send(batch)
        # Acknowledge the longest prefix that is done with (sent or dropped for good); the rest
        # is read again, in order, on the next attempt.
        done = 0
        for result in results:
            if not result.ok and not result.permanent:
                break
            done += 1
        if done:
            self.spool.ack(entries[done - 1][1], done)
        if done < len(entries):
            self.spool.rewind()
            return True
        self._note_success()
        with self._lock:
            if self.spool.empty():
                self._leave_spooling()
        return False

    def _leave_spooling(self) -> None:
        """The spool is drained (caller holds the lock): new messages use memory again."""
        if self._spooling:
            log.info("producer: spool drained; back to the memory queue")
        self._spooling = False

    def _close_client(self) -> None:
        if self._client is not None:
            self._client.close(timeout=1.0)
            self._client = None

    def _final_flush(self) -> None:
        """On stop: send the memory queue while time allows, spool whatever remains."""
        deadline = time.monotonic() + self._settings.stop_timeout_seconds
        while time.monotonic() < deadline:
            with self._lock:
                if self._spooling or not self._memory:
                    break
                batch = self._take_memory()
            if self._send_memory(batch):
                break
        with self._lock:
            # Until stop() closes the spool, late messages still find their place behind these.
            if self._memory:
                self._to_spool(list(self._memory), prepend=False)
                self._memory.clear()
                self._memory_bytes = 0
                self._spooling = True
            self._inflight = 0
            self._inflight_bytes = 0
        self._close_client()


class ProducerReservation:
    """Spool room `KafkaEventSink.reserve` set aside for a request's events (a `Reservation`)."""

    def __init__(
        self, sink: KafkaEventSink, messages: Sequence[OutboundMessage | None], size: int
    ) -> None:
        self._sink = sink
        self._messages = messages
        self._size = size
        self._done = False

    def commit(self, keep: Collection[int]) -> None:
        """Queue the messages at the indices in `keep`, in order, and release the room."""
        if self._done:
            return
        self._done = True
        chosen = [m for i, m in enumerate(self._messages) if m is not None and i in keep]
        try:
            self._sink._commit(chosen, self._size)
        except Exception:  # never let a bug here reach the exporter's request path
            log.exception("producer: queueing %d reserved messages failed", len(chosen))

    def cancel(self) -> None:
        """Release the room; nothing is queued."""
        if not self._done:
            self._done = True
            self._sink._cancel(self._size)
