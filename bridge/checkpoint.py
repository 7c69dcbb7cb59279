"""The bridge's crash-safe counters: a checkpoint of what a scrape was served, and counters that continue from it.

At every scrape (`ScrapeCheckpoint`, whose docstring fixes the order of lock, write and commit) the
bridge takes, under the consumer's counting lock, the counter values of its event
collectors together with the consumer offsets whose events they include, writes both to
`<state_dir>/checkpoint.json` (atomically: temporary file, then rename), and only then answers the
scrape. A process that restarts loads the checkpoint, exposes every counter as the checkpointed
value plus what it counts from then on, and resumes each partition at the checkpointed offset. So
Prometheus sees each series continue where it was, never a reset, and every event is in exactly one
of the two parts: the events up to the offset are in the checkpointed values, the events after it
are read again and counted once.

A checkpoint is bound to what its offsets describe: the cluster id and the id of each topic (where
the broker gives them). The consumer compares them with the broker it joins, and checks that each
restored offset lies within its partition's log; a checkpoint that does not match (another
cluster, a recreated topic, offsets beyond the log's end) is never trusted: it is set aside as
`checkpoint.json.set-aside-<time>`, with an error in the log and
`aifinops_bridge_checkpoint_set_aside_total{reason}`, and the counters start from zero.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from aifinops.exporters.events import encode
from aifinops.exporters.runtime.exposition import RowsMetricFamily

from .dirlock import DirectoryLock
from .records import TopicPartition

log = logging.getLogger(__name__)

VERSION = 1
FILENAME = "checkpoint.json"


class StateError(Exception):
    """The state directory cannot be used."""


@dataclass(frozen=True)
class CounterFamily:
    """The values of one counter family: rows of label values in `labelnames` order."""

    name: str  # without _total, as RowsMetricFamily takes it
    documentation: str
    labelnames: tuple[str, ...]
    rows: Mapping[tuple[str, ...], float]


@dataclass(frozen=True)
class Checkpoint:
    """Counter values as served and the next offset per partition that they include."""

    positions: Mapping[TopicPartition, int]
    counters: Mapping[str, CounterFamily] = field(default_factory=dict)
    saved_at: float = 0.0
    # What the offsets belong to: None / absent topics where the broker gave none.
    cluster_id: str | None = None
    topic_ids: Mapping[str, str] = field(default_factory=dict)

    def mismatch(self, cluster_id: str | None, topic_ids: Mapping[str, str]) -> str | None:
        """Why this checkpoint does not describe the cluster and topics given (`cluster_id` or
        `topic_id`, with what differs), or None when nothing known differs."""
        if self.cluster_id and cluster_id and self.cluster_id != cluster_id:
            return (
                f"cluster_id: checkpoint of cluster {self.cluster_id!r}, broker is {cluster_id!r}"
            )
        for topic, old in sorted(self.topic_ids.items()):
            new = topic_ids.get(topic)
            if new is not None and new != old:
                return f"topic_id: topic {topic} was {old}, is now {new} (recreated)"
        return None


class CheckpointStore:
    """`<directory>/checkpoint.json`, locked to one process."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.path = self.directory / FILENAME
        self._dirlock = DirectoryLock(self.directory)
        self._write_lock = threading.Lock()

    def open(self) -> Checkpoint | None:
        """Lock the directory and load the checkpoint (None when there is none).

        Raises `StateError` when the directory is unusable or held by another bridge; an unreadable
        checkpoint is a `StateError` too (starting from zero would double count what it holds).
        """
        self._dirlock.acquire_as(
            "bridge state directory", "bridge replica", "bridge.state_dir", StateError, StateError
        )
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.close()
            raise StateError(f"{self.path}: {exc.strerror}") from exc
        try:
            return _parse(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            self.close()
            raise StateError(
                f"{self.path} is unreadable ({exc}); move it away to start the counters from zero"
            ) from exc

    def save(self, checkpoint: Checkpoint) -> None:
        """Write the checkpoint atomically; raises `OSError`."""
        payload = {
            "version": VERSION,
            "saved_at": checkpoint.saved_at,
            "cluster_id": checkpoint.cluster_id,
            "topic_ids": dict(sorted(checkpoint.topic_ids.items())),
            "positions": [
                [tp.topic, tp.partition, offset]
                for tp, offset in sorted(checkpoint.positions.items())
            ],
            "counters": [
                {
                    "name": family.name,
                    "help": family.documentation,
                    "labels": list(family.labelnames),
                    # (label values, value) pairs: JSON arrays, without a list per row to build.
                    "rows": list(family.rows.items()),
                }
                for family in checkpoint.counters.values()
            ],
        }
        data = encode(payload)
        with self._write_lock:
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, self.path)

    def set_aside(self, reason: str) -> Path | None:
        """Move the checkpoint out of the way (`checkpoint.json.set-aside-<UTC time>`), kept for
        whoever investigates; returns its new path (None when there was none)."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = self.path.with_name(f"{FILENAME}.set-aside-{stamp}")
        with self._write_lock:
            try:
                os.replace(self.path, target)
            except FileNotFoundError:
                return None
        log.error("bridge checkpoint %s set aside as %s: %s", self.path, target.name, reason)
        return target

    def close(self) -> None:
        """Release the directory."""
        self._dirlock.release()


def _parse(payload: Any) -> Checkpoint:
    if payload.get("version") != VERSION:
        raise ValueError(f"version {payload.get('version')!r}, expected {VERSION}")
    positions = {
        TopicPartition(str(topic), int(partition)): int(offset)
        for topic, partition, offset in payload["positions"]
    }
    counters = {}
    for entry in payload["counters"]:
        labelnames = tuple(entry["labels"])
        rows = {tuple(values): float(value) for values, value in entry["rows"]}
        if any(len(values) != len(labelnames) for values in rows):
            raise ValueError(f"{entry['name']}: rows do not match the label names")
        counters[entry["name"]] = CounterFamily(entry["name"], entry["help"], labelnames, rows)
    cluster_id = payload.get("cluster_id")
    topic_ids = {str(k): str(v) for k, v in (payload.get("topic_ids") or {}).items()}
    return Checkpoint(
        positions,
        counters,
        float(payload.get("saved_at", 0.0)),
        str(cluster_id) if cluster_id else None,
        topic_ids,
    )


def _counter_rows(family: Metric) -> tuple[tuple[str, ...], list[tuple[tuple[str, ...], float]]]:
    """Label names and rows of a counter family, whatever class it is."""
    if isinstance(family, RowsMetricFamily):
        return family.labelnames, [(tuple(v), value) for v, value in family.rows]
    total = family.name + "_total"
    samples = [s for s in family.samples if s.name == total]
    labelnames = tuple(sorted(samples[0].labels)) if samples else ()
    return labelnames, [(tuple(s.labels.get(n, "") for n in labelnames), s.value) for s in samples]


class Continuation:
    """Adds a checkpoint's values to live counter families (`continue_families`) and keeps base-only
    series of families whose live series expire for `retention_seconds`, then drops them."""

    def __init__(
        self,
        base: Mapping[str, CounterFamily] | None = None,
        *,
        expiring: Iterable[str] = (),
        retention_seconds: float = 900.0,
        clock: Any = time.monotonic,
    ) -> None:
        self._base = dict(base or {})
        self._expiring = frozenset(expiring)
        self._retention = retention_seconds
        self._clock = clock
        self._started = clock()

    def discard(self) -> None:
        """Forget the checkpointed values (a checkpoint set aside): counters start from zero."""
        self._base = {}

    def continue_families(self, families: Iterable[Metric]) -> list[Metric]:
        """Live families with every counter raised by its checkpointed value; checkpointed
        families that have no live family this time are added whole."""
        out: list[Metric] = []
        seen: set[str] = set()
        expired = self._clock() - self._started > self._retention
        for family in families:
            if family.type != "counter":
                out.append(family)
                continue
            seen.add(family.name)
            base = self._base.get(family.name)
            labelnames, rows = _counter_rows(family)
            if base is None:
                if isinstance(family, RowsMetricFamily):
                    out.append(family)
                else:
                    out.append(
                        RowsMetricFamily(
                            family.name, family.documentation, "counter", labelnames, rows
                        )
                    )
                continue
            out.append(
                self._merge(family.name, family.documentation, labelnames, rows, base, expired)
            )
        for name, base in self._base.items():
            if name not in seen:
                out.append(
                    self._merge(name, base.documentation, base.labelnames, [], base, expired)
                )
        return out

    def _merge(
        self,
        name: str,
        documentation: str,
        labelnames: tuple[str, ...],
        rows: list[tuple[tuple[str, ...], float]],
        base: CounterFamily,
        expired: bool,
    ) -> RowsMetricFamily:
        if labelnames != base.labelnames and rows:
            # The label set of a family changed between versions: map by name.
            index = [labelnames.index(n) if n in labelnames else -1 for n in base.labelnames]
            rows = [(tuple(v[i] if i >= 0 else "" for i in index), value) for v, value in rows]
        values = base.rows
        merged = [(v, value + values.get(v, 0.0)) for v, value in rows]
        if not (expired and name in self._expiring):
            live = {v for v, _ in rows}
            merged += [(v, value) for v, value in values.items() if v not in live]
        return RowsMetricFamily(name, documentation, "counter", base.labelnames, merged)


def counters_of(families: Iterable[Metric]) -> dict[str, CounterFamily]:
    """The counter families (as exposed) to checkpoint."""
    out = {}
    for family in families:
        if family.type == "counter":
            labelnames, rows = _counter_rows(family)
            out[family.name] = CounterFamily(
                family.name, family.documentation, labelnames, dict(rows)
            )
    return out


class Counted(Protocol):
    """What a checkpoint reads of the consumer whose counts it serves (`BridgeConsumer`)."""

    @property
    def lock(self) -> threading.Lock:
        """The counting lock: held while a batch is counted and its offsets recorded."""
        ...

    @property
    def set_aside_counts(self) -> Mapping[str, int]:
        """Restored checkpoints (or partitions of one) not trusted, by reason."""
        ...

    def positions(self) -> dict[TopicPartition, int]:
        """Next offset per partition included in the counters (called with `lock` held)."""
        ...

    def binding(self) -> tuple[str | None, dict[str, str]]:
        """The cluster id and topic ids the positions belong to."""
        ...

    def drop_restored(self) -> None:
        """Forget the restored offsets (called with `lock` held)."""
        ...

    def request_commit(self, positions: Mapping[TopicPartition, int]) -> None:
        """Commit these offsets from the consumer thread, before its next poll."""
        ...


class ScrapeCheckpoint(Collector):
    """The bridge's event metrics as a scrape sees them: checkpointed before they are served.

    Wraps the collectors of everything the consumer counts (LLM and GPU families, label
    overflow, bridge messages). Built by the consumer (its `checkpoint` argument), which calls
    `checkpoint()` when partitions are revoked and `set_aside()` when the restored checkpoint
    describes another broker. One order, for a scrape and a rebalance alike, serialised so two
    checkpoints never interleave:

    1. lock: under the consumer's counting lock, collect the live families, the next offset per
       partition they include and the ids those offsets belong to (nothing is counted meanwhile);
    2. write: release the lock, add the restored values (`Continuation`) and write the checkpoint
       (`CheckpointStore.save`: temporary file, then rename);
    3. commit: only once it is on disk, ask the consumer to commit those offsets (its thread does,
       before its next poll), then serve the families.

    So a committed offset is never ahead of a checkpoint on disk, and a checkpoint that cannot be
    written fails the scrape (a served value that a restart could not restore would be counted
    twice).
    """

    def __init__(
        self,
        counted: Counted,
        collectors: Sequence[Collector],
        continuation: Continuation,
        store: CheckpointStore | None,
    ) -> None:
        self._consumer = counted
        self._collectors = list(collectors)
        self._continuation = continuation
        self._store = store
        self._serial = threading.Lock()

    def collect(self) -> Iterable[Metric]:
        """Checkpoint, then serve."""
        return self.checkpoint()

    def checkpoint(self) -> list[Metric]:
        """Collect, continue, write and request the commit; returns the families."""
        with self._serial:
            with self._consumer.lock:
                live = [family for c in self._collectors for family in c.collect()]
                positions = self._consumer.positions()
                cluster_id, topic_ids = self._consumer.binding()
            families = self._continuation.continue_families(live)
            if self._store is not None:
                self._store.save(
                    Checkpoint(positions, counters_of(families), time.time(), cluster_id, topic_ids)
                )
            self._consumer.request_commit(positions)
            return [*families, self._set_aside_family()]

    def set_aside(self, reason: str) -> None:
        """Stop trusting the restored checkpoint: its file moves away, its counter values and
        offsets are forgotten (between two scrapes, so none serves a mix)."""
        with self._serial:
            with self._consumer.lock:
                self._consumer.drop_restored()
            self._continuation.discard()
            if self._store is not None:
                self._store.set_aside(reason)

    def _set_aside_family(self) -> Metric:
        family = CounterMetricFamily(
            "aifinops_bridge_checkpoint_set_aside",
            "Restored checkpoints (or, offset_beyond_end, partitions of one) not trusted because "
            "they describe another cluster (cluster_id), a recreated topic (topic_id) or a log "
            "that ends before their offset (offset_beyond_end).",
            labels=["reason"],
        )
        for reason, n in sorted(self._consumer.set_aside_counts.items()):
            family.add_metric([reason], n)
        return family
