"""The consumer's own counts: messages per topic and result, logs replaced under it, and lag per partition, with their collector."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable, Mapping

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from aifinops.exporters.runtime.exposition import RowsMetricFamily

from .records import TopicPartition

RESULTS = ("applied", "invalid", "duplicate", "skipped")
# How the member learned that a partition's log is not the one its position was on
# (aifinops_bridge_log_replaced_total{reason}).
REPLACED_REASONS = ("cluster_id", "topic_id", "offset_beyond_end")


class BridgeStats:
    """`(topic, result)` message counts and per-partition lag, under a lock."""

    def __init__(self, topics: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        # Every result of every consumed topic exists from the start (at 0): alerts on
        # increase(...{result="invalid"}) and dashboards see the series before the first one.
        self._messages: dict[tuple[str, str], int] = {
            (topic, result): 0 for topic in topics for result in RESULTS
        }
        self._replaced: dict[str, int] = dict.fromkeys(REPLACED_REASONS, 0)
        self._lag: dict[TopicPartition, int] = {}
        # The log each lag was computed for, and the check that it is still the one read.
        self._lag_logs: dict[TopicPartition, Hashable] = {}
        self._still_reads: Callable[[TopicPartition, Hashable], bool] | None = None

    def count(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Add message counts keyed by `(topic, result)`."""
        with self._lock:
            for key, n in counts.items():
                if n:
                    self._messages[key] = self._messages.get(key, 0) + n

    def count_replaced(self, reason: str, partitions: int) -> None:
        """Count `partitions` whose log was replaced under the member, by `reason` (one of
        `REPLACED_REASONS`)."""
        if reason not in self._replaced:
            raise ValueError(f"reason {reason!r} is not one of {REPLACED_REASONS}")
        with self._lock:
            self._replaced[reason] += partitions

    def replaced(self) -> dict[str, int]:
        """Partitions whose log was replaced under the member, by reason."""
        with self._lock:
            return dict(self._replaced)

    def set_lag(
        self,
        lag: Mapping[TopicPartition, int],
        logs: Mapping[TopicPartition, Hashable] | None = None,
    ) -> None:
        """Replace the lag of the partitions given; one with an entry in `logs` (the log it was
        computed for) is served only while `serve_lag_while`'s check says that log is still read."""
        with self._lock:
            self._lag.update(lag)
            for tp in lag:
                if logs is not None and tp in logs:
                    self._lag_logs[tp] = logs[tp]
                else:
                    self._lag_logs.pop(tp, None)

    def drop_lag(self, partitions: Iterable[TopicPartition]) -> None:
        """Forget partitions this member no longer reads."""
        with self._lock:
            for tp in partitions:
                self._lag.pop(tp, None)
                self._lag_logs.pop(tp, None)

    def serve_lag_while(self, still_reads: Callable[[TopicPartition, Hashable], bool]) -> None:
        """Check at every snapshot that each lag's log is still the one its partition is read
        from: a lag computed before a reconnect to a broker that lost the log (the consumer thread
        not having updated it since) is not served, rather than served as a stale 0."""
        self._still_reads = still_reads

    def snapshot(self) -> tuple[dict[tuple[str, str], int], dict[TopicPartition, int]]:
        """Copies of the message counts and the lags (those whose log is still read)."""
        with self._lock:
            messages, lag, logs = dict(self._messages), dict(self._lag), dict(self._lag_logs)
        still_reads = self._still_reads
        if still_reads is not None:
            lag = {tp: n for tp, n in lag.items() if tp not in logs or still_reads(tp, logs[tp])}
        return messages, lag


class BridgeCollector(Collector):
    """`aifinops_bridge_messages_total{topic,result}`, `aifinops_bridge_log_replaced_total{reason}`
    and `aifinops_bridge_consumer_lag_messages`.

    # TYPE aifinops_bridge_messages_total counter
    aifinops_bridge_messages_total{topic="ai-api-costs",result="applied"} 10000
    # TYPE aifinops_bridge_consumer_lag_messages gauge
    aifinops_bridge_consumer_lag_messages{topic="ai-api-costs",partition="3"} 0
    """

    def __init__(self, stats: BridgeStats) -> None:
        self._stats = stats

    def collect(self) -> Iterable[Metric]:
        """Message counts, replaced logs and the lag of each partition this member reads."""
        messages, lag = self._stats.snapshot()
        replaced = self._stats.replaced()
        yield RowsMetricFamily(
            "aifinops_bridge_messages",
            "Messages the bridge consumed, by topic and result: applied (counted), invalid "
            "(dead-lettered), duplicate (an event already counted), skipped (already counted by "
            "an exporter of this cluster, per the aifinops-counted-in header).",
            "counter",
            ("topic", "result"),
            sorted(messages.items()),
        )
        yield RowsMetricFamily(
            "aifinops_bridge_log_replaced",
            "Partitions whose log was replaced under the running member, read again from the new "
            "log's start: a recreated topic (topic_id), another cluster behind the address "
            "(cluster_id), or, where the broker gives no ids, a log ending before the position "
            "(offset_beyond_end).",
            "counter",
            ("reason",),
            sorted(((reason,), n) for reason, n in replaced.items()),
        )
        yield RowsMetricFamily(
            "aifinops_bridge_consumer_lag_messages",
            "Messages in the partition that this member has not consumed yet.",
            "gauge",
            ("topic", "partition"),
            sorted(((tp.topic, str(tp.partition)), n) for tp, n in lag.items()),
        )
