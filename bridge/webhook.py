"""`POST /v1/alertmanager`: Alertmanager's webhook (version 4) into `io.aifinops.cost.anomaly.v1` events.

Each alert of a notification becomes one CloudEvent on `cost-anomalies`, keyed by its fingerprint
(so one alert's state changes stay in order on one partition). The answer is 200 only once Kafka
acknowledged every event of the notification, and 503 otherwise, so Alertmanager retries what is
not stored yet. What no retry can fix is answered 4xx, which Alertmanager does not retry: 400 for a
payload that is not a strict-JSON version 4 notification (malformed, nested too deeply for the
parser, an integer beyond Python's digit limit, `NaN`/`Infinity`, a lone surrogate: each named)
and 413 for an alert whose event is larger than Kafka takes. Events are written as strict JSON.
Notifications are handled concurrently: with the broker away each waits once, for its own send
(one delivery timeout), and one attempt to connect serves every request that waited on it. The
event id is derived from the alert's fingerprint, status and start, so a retried notification
produces the same `(source, id)` and consumers count it once.
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

from aifinops.exporters.events import ANOMALY_TYPE, lone_surrogate_field, make_event
from aifinops.exporters.runtime.http import Request, Response

from .producer import SendingClient
from .records import OutboundMessage
from .transport import SendResult, TransportError

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


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


def loads_strict(body: bytes) -> Any:
    """Decode a webhook body as strict JSON; raises `PayloadError` (a 400) for anything no
    retry can fix: not UTF-8 JSON, nested too deeply to parse, NaN or Infinity, an integer
    beyond Python's digit limit, a string or key holding a lone surrogate (named by field)."""
    try:
        payload = json.loads(body, parse_constant=_no_constant)
        field = lone_surrogate_field(payload)
    except RecursionError as exc:
        raise PayloadError([{"field": "", "reason": "nested too deeply"}]) from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, the integer digit limit
        raise PayloadError([{"field": "", "reason": f"not valid JSON: {exc}"}]) from exc
    if field is not None:
        raise PayloadError(
            [{"field": field, "reason": "holds a lone UTF-16 surrogate, not encodable as UTF-8"}]
        )
    return payload


def encode_strict(event: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON that any strict parser reads (no NaN, no lone surrogate: raises
    `ValueError` instead of writing them)."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def parse_payload(body: bytes) -> list[Mapping[str, Any]]:
    """The alerts of a version 4 notification; raises `PayloadError` listing every problem."""
    payload = loads_strict(body)
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
        # Guards the shared client and its creation; sends run outside it, concurrently.
        self._lock = threading.Lock()
        self._client: SendingClient | None = None
        # Connection attempts so far and the last one's error: a request that waited while
        # another attempt ran takes its outcome instead of waiting for an attempt of its own.
        self._attempts = 0
        self._last_error = ""

    def collector(self) -> Collector:
        """`aifinops_bridge_alerts_forwarded_total{status}`."""
        return AlertCollector(self.stats)

    def handle(self, request: Request) -> Response:
        """Forward the notification; 200, 400 (malformed), 413 (an alert too large for Kafka)
        or 503 (Kafka did not acknowledge: Alertmanager retries)."""
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
                encode_strict(alert_event(alert, self._source, received)),
            )
            for alert in alerts
        ]
        results = self._send(messages)
        refused = [i for i, r in enumerate(results) if r.permanent]
        if refused:
            # Retrying cannot change Kafka's answer: 413 for a size, 400 for anything else.
            status = 413 if all("TooLarge" in results[i].error for i in refused) else 400
            self.stats.add("failed", len(alerts))
            log.error(
                "webhook: Kafka refused %d of %d alerts for good (%s); answering %d",
                len(refused),
                len(alerts),
                results[refused[0]].error,
                status,
            )
            return Response.json(
                status,
                {
                    "errors": [
                        {
                            "field": f"alerts[{i}]",
                            "reason": f"cannot be written to Kafka: {results[i].error}",
                        }
                        for i in refused
                    ]
                },
            )
        failed = [r.error for r in results if not r.ok]
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

    def _send(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        """Send and wait (one delivery timeout at most); one result per message."""
        if not messages:
            return []
        try:
            client = self._shared_client()
        except TransportError as exc:
            return [SendResult(False, str(exc))] * len(messages)
        results = client.send_batch(messages)
        if any(not r.ok and not r.permanent for r in results):
            # A new client next time (it also clears a producer id a restarted broker forgot);
            # requests still sending on this one get their own errors and answer 503.
            with self._lock:
                if self._client is client:
                    self._client = None
            client.close(timeout=1.0)
        return results

    def _shared_client(self) -> SendingClient:
        """The client, connecting once for every request waiting on it; raises `TransportError`
        with the outcome of the attempt that ran while this request waited."""
        seen = self._attempts
        with self._lock:
            if self._client is not None:
                return self._client
            if self._attempts != seen:
                raise TransportError(self._last_error)
            self._attempts += 1
            try:
                self._client = self._client_factory()
            except TransportError as exc:
                self._last_error = str(exc)
                raise
            return self._client

    def start(self) -> None:
        """Nothing to start: the client connects on the first notification."""

    def stop(self) -> None:
        """Close the Kafka client."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
