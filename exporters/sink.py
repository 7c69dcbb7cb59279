"""The `EventSink` interface through which an exporter hands on what it observes (to Kafka or nowhere)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

COUNTED_IN_HEADER = "aifinops-counted-in"

# One event to hand on: its key, the CloudEvent and its headers.
SinkItem = tuple[str, Mapping[str, Any], Mapping[str, bytes]]


class EventSink(Protocol):
    """Receives every event an exporter counted; must never block or raise into the caller.

    `publish_many` is `publish` for many events of one topic at once (the Kafka producer takes
    them under one lock and in one spool write); callers that have many use it.

    A sink that can run out of room (the Kafka producer, once its spool is full) offers
    `reserve(topic, [(key, event, headers), ...]) -> Reservation | None`: room for all of the
    events or None, before anything of them is counted, so a caller that must not count what it
    cannot hand on (HTTP ingest) refuses the request instead (503) and loses nothing.
    """

    def publish(
        self, topic: str, key: str, event: Mapping[str, Any], headers: Mapping[str, bytes]
    ) -> None:
        """Hand on one CloudEvent, to be written to `topic` under `key` with `headers`."""
        ...

    def publish_many(self, topic: str, events: Iterable[SinkItem]) -> None:
        """`publish` for each `(key, event, headers)` of `events`, in order."""
        ...


class Reservation(Protocol):
    """Room a sink set aside for a request's events, all or nothing; exactly one of `commit` and
    `cancel` must follow."""

    def commit(self, keep: Collection[int]) -> None:
        """Queue the reserved events at the indices in `keep` (in their order; the others, e.g.
        duplicates, are not sent) and give back the room of the rest."""
        ...

    def cancel(self) -> None:
        """Give the whole room back; nothing is sent."""
        ...


@runtime_checkable
class ReservingSink(EventSink, Protocol):
    """An `EventSink` that can refuse events for lack of room before they are counted."""

    def reserve(self, topic: str, events: Sequence[SinkItem]) -> Reservation | None:
        """Room for every event of `events` (encoded now), or None when it cannot keep them all."""
        ...


class NullSink:
    """The sink used when Kafka mirroring is off: it discards events."""

    def publish(
        self, topic: str, key: str, event: Mapping[str, Any], headers: Mapping[str, bytes]
    ) -> None:
        """Discard the event."""

    def publish_many(self, topic: str, events: Iterable[SinkItem]) -> None:
        """Discard the events."""
