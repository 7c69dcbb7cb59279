"""Sends tripped limits to every Alertmanager's `POST /api/v2/alerts` from a background thread.

The event path only hands onsets over through a bounded queue (`submit` never blocks; a full queue
drops and counts). The sender thread wakes on a hand-over or every `TICK_SECONDS`, adds the
checker's refreshes and resolutions (`Tripwires.due()`), and posts what each Alertmanager has not
accepted yet, newest state per alert, retrying a failed one with exponential backoff: an
Alertmanager that was down gets the alerts still current when it returns. Onsets and resolutions
are also handed to `publish` (the daemon's `cost-anomalies` writer) once, whatever Alertmanager does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..config import TripwiresConfig
from .checker import TRIPWIRES, Alert, Tripwires

if TYPE_CHECKING:
    from ..llm.ingest import PricedEvent

log = logging.getLogger(__name__)

API_PATH = "/api/v2/alerts"
TICK_SECONDS = 0.5


class _Target:
    """One Alertmanager: the alerts it has yet to accept (by fingerprint) and its backoff."""

    __slots__ = ("delay", "failing", "next_try", "pending", "url")

    def __init__(self, url: str, backoff: float) -> None:
        self.url = url.rstrip("/") + API_PATH
        self.pending: dict[str, Alert] = {}
        self.next_try = 0.0
        self.delay = backoff
        self.failing = False


class AlertmanagerNotifier:
    """The sender thread and its counters; a daemon component (`start`, `stop`)."""

    def __init__(
        self,
        tripwires: Tripwires,
        urls: Sequence[str],
        *,
        publish: Callable[[Alert], None] | None = None,
        timeout: float = 2.0,
        backoff: float = 0.2,
        backoff_max: float = 10.0,
        queue_size: int = 1000,
    ) -> None:
        self.tripwires = tripwires
        self._targets = [_Target(url, backoff) for url in urls]
        self._publish = publish
        self._timeout = timeout
        self._backoff = backoff
        self._backoff_max = backoff_max
        self._queue: queue.Queue[list[Alert]] = queue.Queue(queue_size)
        # Every target keeps at most this many alerts waiting (the checker fires no more at once,
        # plus their resolutions).
        self._max_pending = 2 * tripwires.config.max_firing
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.send_errors = 0
        self.dropped = 0

    @classmethod
    def from_config(
        cls, config: TripwiresConfig, cluster: str, publish: Callable[[Alert], None] | None = None
    ) -> AlertmanagerNotifier:
        """The checker and its sender for a daemon, from the `tripwires` section."""
        return cls(
            Tripwires(config, cluster),
            config.alertmanager_urls,
            publish=publish,
            timeout=config.timeout_seconds,
            backoff=config.retry_backoff_seconds,
            backoff_max=config.retry_backoff_max_seconds,
            queue_size=config.queue_size,
        )

    def observe(self, events: Iterable[PricedEvent]) -> None:
        """The event path's hook: check counted events and hand over what they set off."""
        alerts = self.tripwires.observe(events)
        if alerts:
            self.submit(alerts)

    def submit(self, alerts: list[Alert]) -> None:
        """Hand alerts to the sender; never blocks (a full queue drops them, counted)."""
        if not alerts:
            return
        try:
            self._queue.put_nowait(alerts)
        except queue.Full:
            with self._lock:
                self.dropped += len(alerts)

    def start(self) -> None:
        """Start the sender thread."""
        self._thread = threading.Thread(target=self._run, name="tripwire-notifier", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the sender thread (alerts not sent yet expire at their endsAt)."""
        self._stop.set()
        # Wakes the thread at once; a full queue is read within a tick anyway.
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)  # type: ignore[arg-type]
        if self._thread is not None:
            self._thread.join(timeout=self._timeout + 1)

    def _run(self) -> None:
        while not self._stop.is_set():
            alerts: list[Alert] = []
            try:
                first = self._queue.get(timeout=self._wait())
                if first is not None:
                    alerts.extend(first)
                while True:
                    more = self._queue.get_nowait()
                    if more is not None:
                        alerts.extend(more)
            except queue.Empty:
                pass
            if self._stop.is_set():
                return
            try:
                alerts.extend(self.tripwires.due())
                self._dispatch(alerts)
                self._send_all()
            except Exception:
                log.exception("tripwire notifier: unexpected error")

    def _wait(self) -> float:
        """Until the next tick or the next retry, whichever is sooner."""
        now = time.monotonic()
        waits = [t.next_try - now for t in self._targets if t.pending]
        return max(0.0, min([TICK_SECONDS, *waits]))

    def _dispatch(self, alerts: Iterable[Alert]) -> None:
        for alert in alerts:
            if alert.change:
                (log.warning if alert.status == "firing" else log.info)(
                    "tripwire %s: %s", alert.status, alert.body["annotations"]["description"]
                )
                if self._publish is not None:
                    try:
                        self._publish(alert)
                    except Exception:
                        log.exception("tripwire: publishing to cost-anomalies failed")
            for target in self._targets:
                pending = target.pending
                pending.pop(alert.fingerprint, None)
                pending[alert.fingerprint] = alert
                while len(pending) > self._max_pending:
                    del pending[next(iter(pending))]
                    with self._lock:
                        self.dropped += 1

    def _send_all(self) -> None:
        now = time.monotonic()
        for target in self._targets:
            if not target.pending or now < target.next_try:
                continue
            alerts = list(target.pending.values())
            if self._post(target.url, [a.body for a in alerts]):
                for alert in alerts:
                    # Keep what changed while the request was out.
                    if target.pending.get(alert.fingerprint) is alert:
                        del target.pending[alert.fingerprint]
                if target.failing:
                    log.info("tripwire: Alertmanager %s accepts alerts again", target.url)
                target.failing = False
                target.delay = self._backoff
                target.next_try = 0.0
            else:
                with self._lock:
                    self.send_errors += 1
                target.failing = True
                target.next_try = time.monotonic() + target.delay
                target.delay = min(target.delay * 2, self._backoff_max)

    def _post(self, url: str, bodies: list[dict[str, Any]]) -> bool:
        request = urllib.request.Request(
            url,
            data=json.dumps(bodies).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                response.read()
                status: int = response.status
                return 200 <= status < 300
        except (OSError, urllib.error.URLError) as exc:
            log.warning("tripwire: posting %d alerts to %s failed: %s", len(bodies), url, exc)
            return False

    def collector(self) -> Collector:
        """The tripwire metrics of this process."""
        return TripwireCollector(self.tripwires, self)


class TripwireCollector(Collector):
    """`aifinops_tripwires_fired_total{tripwire}`, `aifinops_tripwires_firing{tripwire}`,
    `aifinops_tripwire_send_errors_total` and `aifinops_tripwire_notifications_dropped_total{reason}`.

    # TYPE aifinops_tripwires_fired_total counter
    aifinops_tripwires_fired_total{tripwire="request_usd"} 1
    """

    def __init__(self, tripwires: Tripwires, notifier: AlertmanagerNotifier | None) -> None:
        self._tripwires = tripwires
        self._notifier = notifier

    def collect(self) -> Iterable[Metric]:
        """Every family, each tripwire present from the start."""
        stats = self._tripwires.stats()
        fired = CounterMetricFamily(
            "aifinops_tripwires_fired_total",
            "Tripwires set off (hard spend limits checked per event), by tripwire (request_usd, "
            "team_usd_per_minute, team_tokens_per_minute); one per onset, not per event.",
            labels=["tripwire"],
        )
        firing = GaugeMetricFamily(
            "aifinops_tripwires_firing",
            "Tripwires firing now, by tripwire.",
            labels=["tripwire"],
        )
        for tripwire in TRIPWIRES:
            fired.add_metric([tripwire], stats.fired[tripwire])
            firing.add_metric([tripwire], stats.firing[tripwire])
        yield fired
        yield firing
        notifier = self._notifier
        yield CounterMetricFamily(
            "aifinops_tripwire_send_errors_total",
            "Posts of tripwire alerts to an Alertmanager that failed (each is retried with backoff).",
            value=notifier.send_errors if notifier is not None else 0,
        )
        dropped = CounterMetricFamily(
            "aifinops_tripwire_notifications_dropped_total",
            "Tripwire alerts not sent: queue_full (the sender's hand-over queue or an "
            "Alertmanager's backlog was full), firing_limit (tripwires.max_firing were firing).",
            labels=["reason"],
        )
        dropped.add_metric(["queue_full"], notifier.dropped if notifier is not None else 0)
        dropped.add_metric(["firing_limit"], stats.untracked)
        yield dropped
