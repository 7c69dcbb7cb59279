"""The `EventSink` interface through which an exporter hands on what it observes (to Kafka or nowhere)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

COUNTED_IN_HEADER = "aifinops-counted-in"


class EventSink(Protocol):
    """Receives every event an exporter counted; must never block or raise into the caller.

    A sink may also offer `publish_many(topic, [(key, event, headers), ...])`, the same for many
    events of one topic at once (the Kafka producer does: one lock and one spool write for a
    request's events); callers that have many use it where it exists, else `publish` each.
    """

    def publish(
        self, topic: str, key: str, event: Mapping[str, Any], headers: Mapping[str, bytes]
    ) -> None:
        """Hand on one CloudEvent, to be written to `topic` under `key` with `headers`."""
        ...


class NullSink:
    """The sink used when Kafka mirroring is off: it discards events."""

    def publish(
        self, topic: str, key: str, event: Mapping[str, Any], headers: Mapping[str, bytes]
    ) -> None:
        """Discard the event."""
