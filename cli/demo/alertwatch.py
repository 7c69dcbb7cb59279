"""What the demo watches arrive, each with its arrival time: Alertmanager notifications at a webhook
receiver the demo serves, and the `cost-anomalies` events the bridge writes to Kafka.

The demo's live view, the end-to-end test and the latency benchmark all read arrivals from here,
so "seconds since onset" means the same thing everywhere: arrival time (monotonic clock of this
process) minus the onset the traffic generator recorded.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from prometheus_client import CollectorRegistry

from aifinops.bridge.transport import ConsumerClient, ConsumerSettings, TransportError
from aifinops.exporters.config import Config
from aifinops.exporters.events import decode
from aifinops.exporters.runtime.http import HTTPServer, Request, Response, Route

log = logging.getLogger(__name__)

T = TypeVar("T")

WEBHOOK_PATH = "/alerts"


class Arrivals(Generic[T]):
    """An append-only list of arrivals that readers can wait on."""

    def __init__(self) -> None:
        self._items: list[T] = []
        self._cond = threading.Condition()

    def add(self, items: list[T]) -> None:
        """Record arrivals and wake the waiters."""
        with self._cond:
            self._items.extend(items)
            self._cond.notify_all()

    def items(self) -> list[T]:
        """Everything that arrived so far, oldest first."""
        with self._cond:
            return list(self._items)

    def since(self, index: int) -> list[T]:
        """What arrived after the first `index` arrivals."""
        with self._cond:
            return self._items[index:]

    def wait_for(self, predicate: Callable[[T], bool], timeout: float) -> T | None:
        """The first arrival (past or future) for which `predicate` holds, or None after `timeout`."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for item in self._items[seen:]:
                    if predicate(item):
                        return item
                seen = len(self._items)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)


@dataclass(frozen=True)
class Notification:
    """One alert of one Alertmanager webhook call, as it arrived."""

    received: float  # time.monotonic()
    received_wall: float  # time.time()
    receiver: str
    status: str  # firing | resolved
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: str
    fingerprint: str

    @property
    def alertname(self) -> str:
        """The alert's name."""
        return self.labels.get("alertname", "")


class AlertReceiver:
    """A webhook receiver for Alertmanager (payload version 4) on a loopback port."""

    def __init__(self, address: str = "127.0.0.1:0") -> None:
        self.notifications: Arrivals[Notification] = Arrivals()
        self._server = HTTPServer(
            address,
            CollectorRegistry(auto_describe=False),
            routes=[Route("POST", WEBHOOK_PATH, self._handle, 8 << 20)],
            title="aifinops demo alert receiver",
        )

    @property
    def url(self) -> str:
        """The URL to put in Alertmanager's `webhook_configs`."""
        return f"{self._server.url}{WEBHOOK_PATH}"

    def start(self) -> None:
        """Serve on a background thread."""
        self._server.start()

    def stop(self) -> None:
        """Stop serving."""
        self._server.stop()

    def _handle(self, request: Request) -> Response:
        received, wall = time.monotonic(), time.time()
        try:
            payload = json.loads(request.body)
            alerts = payload["alerts"]
            receiver = str(payload.get("receiver", ""))
            batch = [
                Notification(
                    received=received,
                    received_wall=wall,
                    receiver=receiver,
                    status=str(a.get("status", "")),
                    labels=dict(a.get("labels") or {}),
                    annotations=dict(a.get("annotations") or {}),
                    starts_at=str(a.get("startsAt", "")),
                    fingerprint=str(a.get("fingerprint", "")),
                )
                for a in alerts
            ]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("alert receiver: unreadable webhook payload: %s", exc)
            return Response.json(400, {"error": f"not an Alertmanager webhook payload: {exc}"})
        self.notifications.add(batch)
        return Response.json(200, {"received": len(batch)})


@dataclass(frozen=True)
class AnomalyEvent:
    """One `io.aifinops.cost.anomaly.v1` event read from `cost-anomalies`."""

    received: float  # time.monotonic()
    received_wall: float
    key: str
    event: Mapping[str, Any]

    @property
    def alert(self) -> Mapping[str, Any]:
        """The alert the event carries (its `data`)."""
        data = self.event.get("data")
        return data if isinstance(data, Mapping) else {}

    @property
    def labels(self) -> Mapping[str, str]:
        """The alert's labels."""
        labels = self.alert.get("labels")
        return labels if isinstance(labels, Mapping) else {}

    @property
    def status(self) -> str:
        """firing | resolved."""
        return str(self.alert.get("status", ""))


@dataclass
class InjectedAnomaly:
    """An anomaly the demo caused on purpose: what, whose, and when it began (monotonic clock).

    `kind` is `llm` (matches the LLM and budget alerts of `team`, and `model` when given) or `gpu`
    (matches the GPU alerts of `team`).
    """

    kind: str
    team: str
    description: str
    model: str | None = None
    onset: float | None = None  # time.monotonic(); None until it has begun
    onset_wall: float | None = None

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether an alert with `labels` is about this anomaly."""
        if self.onset is None or labels.get("team") != self.team:
            return False
        is_gpu_alert = "GPU" in labels.get("alertname", "")
        if (self.kind == "gpu") != is_gpu_alert:
            return False
        return self.model is None or labels.get("model") in (None, "", self.model)


def seconds_since_onset(
    labels: Mapping[str, str], received: float, anomalies: list[InjectedAnomaly]
) -> float | None:
    """Arrival minus the onset of the injected anomaly the alert is about (the latest that began
    before the arrival), or None when it is about none of them."""
    onsets = [
        a.onset
        for a in anomalies
        if a.matches(labels) and a.onset is not None and a.onset <= received
    ]
    return received - max(onsets) if onsets else None


class AnomalyTail:
    """Reads `cost-anomalies` on a thread through the bridge's consumer client (a group of its own,
    from the earliest offset: the demo's topic starts empty) and records each event's arrival."""

    def __init__(self, config: Config, *, poll_seconds: float = 0.2) -> None:
        self.events: Arrivals[AnomalyEvent] = Arrivals()
        self.errors = 0
        self._config = config
        self._poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: ConsumerClient | None = None

    def start(self) -> None:
        """Join the group and start reading."""
        settings = ConsumerSettings(
            group_id=f"aifinops-demo-{uuid.uuid4().hex[:8]}",
            topics=(self._config.kafka.topics.anomalies.name,),
            auto_offset_reset="earliest",
            max_poll_records=500,
            # Tansu holds a group join for the whole rebalance timeout: keep it short.
            max_poll_interval_ms=3000,
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
        )
        # A group of one: partitions come and go only at start and stop, nothing to do then.
        self._client = ConsumerClient(
            self._config.kafka,
            settings,
            on_revoked=lambda _: {},
            on_assigned=lambda _: None,
            on_lost=lambda _: None,
        )
        self._thread = threading.Thread(target=self._run, name="cost-anomalies", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop reading and leave the group."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def _run(self) -> None:
        assert self._client is not None
        while not self._stop.is_set():
            try:
                batches = self._client.poll(self._poll_seconds)
            except TransportError as exc:
                self.errors += 1
                log.warning("cost-anomalies reader: %s", exc)
                self._stop.wait(1.0)
                continue
            received, wall = time.monotonic(), time.time()
            arrived = []
            for _partition, records in batches:
                for record in records:
                    try:
                        event = decode(record.value)
                    except ValueError as exc:
                        self.errors += 1
                        log.warning("cost-anomalies reader: undecodable message: %s", exc)
                        continue
                    key = record.key.decode(errors="replace") if record.key else ""
                    arrived.append(AnomalyEvent(received, wall, key, event))
            if arrived:
                self.events.add(arrived)
