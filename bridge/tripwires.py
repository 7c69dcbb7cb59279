"""Tripwire onsets and resolutions onto `cost-anomalies`, as the webhook writes Alertmanager's alerts.

The event is built by `webhook.alert_event` (one definition of an anomaly event); the alert's
`fingerprint` is Alertmanager's own, so the copy that comes back through Alertmanager's webhook can
be matched with this one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from aifinops.exporters.sink import EventSink
from aifinops.exporters.tripwire import Alert

from .webhook import alert_event


def anomaly_publisher(
    sink: EventSink, topic: str, source: str, clock: Callable[[], datetime] | None = None
) -> Callable[[Alert], None]:
    """A `publish` for `AlertmanagerNotifier`: each onset or resolution becomes one
    `io.aifinops.cost.anomaly.v1` event on `topic`, keyed by the alert's fingerprint."""
    now = clock or (lambda: datetime.now(UTC))

    def publish(alert: Alert) -> None:
        webhook_alert = {**alert.body, "status": alert.status, "fingerprint": alert.fingerprint}
        sink.publish(topic, alert.fingerprint, alert_event(webhook_alert, source, now()), {})

    return publish
