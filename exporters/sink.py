"""The `EventSink` interface through which an exporter hands on what it observes (to Kafka or nowhere)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol

COUNTED_IN_HEADER = "aifinops-counted-in"


class EventSink(Protocol):
    """Receives every event an exporter counted; must never block or raise into the caller.

    A sink may also offer `publish_many(topic, [(key, event, headers), ...])`, the same for many
    events of one topic at once (the Kafka producer does: one lock and one spool write for a
    request's events); callers that have many use it where it exists, else `publish` each.

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


class ReservingSink(EventSink, Protocol):
    """An `EventSink` that can refuse events for lack of room before they are counted."""

    def reserve(
        self, topic: str, events: Sequence[tuple[str, Mapping[str, Any], Mapping[str, bytes]]]
    ) -> Reservation | None:
        """Room for every event of `events` (encoded now), or None when it cannot keep them all."""
        ...


class NullSink:
    """The sink used when Kafka mirroring is off: it discards events."""

    def publish(
        self, topic: str, key: str, event: Mapping[str, Any], headers: Mapping[str, bytes]
    ) -> None:
        """Discard the event."""
