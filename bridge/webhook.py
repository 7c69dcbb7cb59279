"""`POST /v1/alertmanager`: Alertmanager's webhook (version 4) into `io.aifinops.cost.anomaly.v1` events.

Each alert of a notification becomes one CloudEvent on `cost-anomalies`, keyed by its fingerprint
(so one alert's state changes stay in order on one partition). The answer is 200 only once Kafka
acknowledged every event of the notification, and 503 otherwise, so Alertmanager retries what is
not stored yet; a malformed payload gets 400 (Alertmanager does not retry those). The event id is
derived from the alert's fingerprint, status and start, so a retried notification produces the same
`(source, id)` and consumers count it once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from aifinops.exporters.events import ANOMALY_TYPE, encode, make_event
from aifinops.exporters.runtime.http import Request, Response

from .producer import SendingClient
from .records import OutboundMessage
from .transport import TransportError

log = logging.getLogger(__name__)

PATH = "/v1/alertmanager"
STATUSES = ("firing", "resolved", "failed")


class AlertStats:
    """Alerts forwarded per status (`firing`, `resolved`) and those that could not be (`failed`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(STATUSES, 0)

    def add(self, status: str, n: int = 1) -> None:
        """Count `n` alerts."""
        with self._lock:
            self._counts[status] = self._counts.get(status, 0) + n

    def snapshot(self) -> dict[str, int]:
        """A copy of the counts."""
        with self._lock:
            return dict(self._counts)


class AlertCollector(Collector):
    """`aifinops_bridge_alerts_forwarded_total{status}`.

    # TYPE aifinops_bridge_alerts_forwarded_total counter
    aifinops_bridge_alerts_forwarded_total{status="firing"} 3
    """

    def __init__(self, stats: AlertStats) -> None:
        self._stats = stats

    def collect(self) -> Iterable[Metric]:
        """One sample per status."""
        family = CounterMetricFamily(
            "aifinops_bridge_alerts_forwarded_total",
            "Alertmanager alerts written to the anomalies topic, by alert status (firing, "
            "resolved); failed: alerts Kafka did not acknowledge (answered 503, Alertmanager retries).",
            labels=["status"],
        )
        for status, n in sorted(self._stats.snapshot().items()):
            family.add_metric([status], n)
        yield family


class PayloadError(ValueError):
    """A webhook body that is not an Alertmanager version 4 notification."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p['field']}: {p['reason']}" for p in problems))


def parse_payload(body: bytes) -> list[Mapping[str, Any]]:
    """The alerts of a version 4 notification; raises `PayloadError` listing every problem."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError([{"field": "", "reason": f"not valid JSON: {exc}"}]) from exc
    if not isinstance(payload, Mapping):
        raise PayloadError([{"field": "", "reason": "must be a JSON object"}])
    problems: list[dict[str, Any]] = []
    if payload.get("version") != "4":
        problems.append(
            {"field": "version", "reason": f"must be '4' (got {payload.get('version')!r})"}
        )
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        problems.append({"field": "alerts", "reason": "required, must be a list"})
        raise PayloadError(problems)
    for i, alert in enumerate(alerts):
        where = f"alerts[{i}]"
        if not isinstance(alert, Mapping):
            problems.append({"field": where, "reason": "must be an object"})
            continue
        fingerprint = alert.get("fingerprint")
        if not isinstance(fingerprint, str) or not fingerprint:
            problems.append({"field": f"{where}.fingerprint", "reason": "required string"})
        if alert.get("status") not in ("firing", "resolved"):
            problems.append(
                {
                    "field": f"{where}.status",
                    "reason": f"must be firing or resolved (got {alert.get('status')!r})",
                }
            )
        if not isinstance(alert.get("labels"), Mapping):
            problems.append({"field": f"{where}.labels", "reason": "required object"})
    if problems:
        raise PayloadError(problems)
    return alerts


def alert_event(alert: Mapping[str, Any], source: str, received_at: datetime) -> dict[str, Any]:
    """The `io.aifinops.cost.anomaly.v1` CloudEvent of one alert state change."""
    identity = f"{alert['fingerprint']}/{alert['status']}/{alert.get('startsAt', '')}"
    event_id = hashlib.sha256(identity.encode()).hexdigest()[:32]
    data = {**alert, "receivedAt": received_at.isoformat().replace("+00:00", "Z")}
    labels = alert.get("labels") or {}
    return make_event(
        ANOMALY_TYPE,
        source,
        data,
        event_id=event_id,
        time=received_at,
        subject=str(labels.get("alertname"))[:256] if labels.get("alertname") else None,
    )


class AlertForwarder:
    """The webhook handler: one event per alert, answered 200 after Kafka acknowledged them all."""

    def __init__(
        self,
        client_factory: Callable[[], SendingClient],
        topic: str,
        source: str,
        stats: AlertStats | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client_factory = client_factory
        self._topic = topic
        self._source = source
        self.stats = stats or AlertStats()
        self._clock = clock
        # Notifications are few; one at a time keeps a failing client from being closed under
        # another request's feet.
        self._lock = threading.Lock()
        self._client: SendingClient | None = None

    def collector(self) -> Collector:
        """`aifinops_bridge_alerts_forwarded_total{status}`."""
        return AlertCollector(self.stats)

    def handle(self, request: Request) -> Response:
        """Forward the notification; 200, 400 (malformed) or 503 (Kafka did not acknowledge)."""
        try:
            alerts = parse_payload(request.body)
        except PayloadError as exc:
            log.warning("webhook: refused a malformed notification: %s", exc)
            return Response.json(400, {"errors": exc.problems})
        received = self._clock()
        messages = [
            OutboundMessage(
                self._topic,
                str(alert["fingerprint"]).encode(),
                encode(alert_event(alert, self._source, received)),
            )
            for alert in alerts
        ]
        failed = self._send(messages)
        if failed:
            self.stats.add("failed", len(alerts))
            log.error(
                "webhook: Kafka did not acknowledge %d of %d alerts (%s); answering 503",
                len(failed),
                len(alerts),
                failed[0],
            )
            return Response.json(
                503, {"error": f"Kafka did not acknowledge {len(failed)} of {len(alerts)} alerts"}
            )
        for alert in alerts:
            self.stats.add(str(alert["status"]))
        return Response.json(200, {"forwarded": len(alerts)})

    def _send(self, messages: Sequence[OutboundMessage]) -> list[str]:
        """Send and wait; the errors of the messages that failed (empty when all were stored)."""
        if not messages:
            return []
        with self._lock:
            if self._client is None:
                try:
                    self._client = self._client_factory()
                except TransportError as exc:
                    return [str(exc)] * len(messages)
            results = self._client.send_batch(messages)
            errors = [r.error for r in results if not r.ok]
            if errors:
                self._client.close(timeout=1.0)
                self._client = None
            return errors

    def start(self) -> None:
        """Nothing to start: the client connects on the first notification."""

    def stop(self) -> None:
        """Close the Kafka client."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
