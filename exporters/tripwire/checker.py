"""Which counted usage events trip a hard limit, and which tripped limits to send, refresh or resolve.

Pure logic under one lock, no I/O: `observe(events)` checks each counted event in O(1) and returns
the alerts of the tripwires it set off (onsets only: a team and limit already firing is not sent
again per event); `due()`, called about once a second by the notifier, returns the refreshes
(`endsAt` pushed forward while the limit still holds) and the resolutions (`endsAt` now, once it
has not held for `resolve_after_seconds`). Windows are per team (and per app with limits of its
own) over a monotonic clock; memory is bounded by `max_tracked` teams (least recently seen
forgotten first) and `max_firing` tripwires firing at once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Context, Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from ..config import TripwireLimits, TripwiresConfig
from ..pricing.ratecard import USD_SCALE
from .window import MinuteWindow

if TYPE_CHECKING:
    from ..events.usage import UsageRecord
    from ..llm.ingest import PricedEvent
    from ..pricing.pricer import Cost

ALERTNAME = "AIFinOpsSpendTripwire"
TIER = "tripwire"
REQUEST_USD = "request_usd"
TEAM_USD = "team_usd_per_minute"
TEAM_TOKENS = "team_tokens_per_minute"
TRIPWIRES = (REQUEST_USD, TEAM_USD, TEAM_TOKENS)
RUNBOOK_ANCHOR = "aifinopsspendtripwire"
DASHBOARD_UID = "aifinops-llm"

_SUM = Context(prec=80)
_CENT = Decimal("0.01")


class Alert(NamedTuple):
    """One alert to post to Alertmanager: `body` is its `/api/v2/alerts` entry; `change` is true
    for an onset or a resolution (published to `cost-anomalies`), false for a refresh."""

    fingerprint: str
    status: str
    body: dict[str, Any]
    change: bool


@dataclass(frozen=True, slots=True)
class _Limits:
    """Limits in integer units: 1e-24 USD for money, tokens for tokens; 0 is off."""

    request: int
    usd: int
    tokens: int


class _Scope:
    """The last-minute windows of a team, or of an app with limits of its own."""

    __slots__ = ("apps", "limits", "tokens", "usd")

    def __init__(self, limits: _Limits, apps: Mapping[str, _Limits] | None = None) -> None:
        self.limits = limits
        self.usd = MinuteWindow()
        self.tokens = MinuteWindow()
        # Only apps named in the overrides get windows: their number is fixed by the config.
        self.apps = {app: _Scope(app_limits) for app, app_limits in (apps or {}).items()}


class _Firing:
    """A tripwire firing: its labels, the window it watches (None for a single call) and times."""

    __slots__ = (
        "app_scoped",
        "fingerprint",
        "labels",
        "last_over",
        "last_sent",
        "limit",
        "starts",
        "tripwire",
        "value",
        "window",
    )

    def __init__(
        self,
        labels: dict[str, str],
        tripwire: str,
        window: MinuteWindow | None,
        limit: int,
        value: int,
        starts: float,
        now: float,
        app_scoped: bool,
    ) -> None:
        self.labels = labels
        self.tripwire = tripwire
        self.window = window
        self.limit = limit
        self.value = value
        self.starts = starts
        self.last_over = now
        self.last_sent = now
        self.app_scoped = app_scoped
        self.fingerprint = fingerprint(labels)


@dataclass(frozen=True)
class TripwireStats:
    """Counts for the metrics: onsets and tripwires firing per tripwire, and the tripwires not
    sent because `max_firing` were firing already."""

    fired: Mapping[str, int]
    firing: Mapping[str, int]
    untracked: int


def usd_units(amount: Decimal) -> int:
    """A dollar amount in 1e-24 USD units, rounded up (a limit is never missed by rounding)."""
    return int(amount.scaleb(USD_SCALE, _SUM).to_integral_value(ROUND_CEILING))


def cost_units(cost: Cost) -> int:
    """A call's whole cost in 1e-24 USD units (exact for priced calls; a reported cost with
    more digits is rounded up)."""
    units = cost.units
    if units is not None:
        return units[0] + units[1] + units[2] + units[3]
    if cost.usd is None:
        return 0
    usd = cost.usd
    return usd_units(_SUM.add(_SUM.add(usd[0], usd[1]), _SUM.add(usd[2], usd[3])))


def format_usd(units: int) -> str:
    """Dollars for a person: cents, or more digits where cents would show nothing useful."""
    usd = Decimal(units).scaleb(-USD_SCALE, _SUM)
    if usd >= 1 or usd == 0:
        return f"${usd.quantize(_CENT, rounding=ROUND_CEILING):,}"
    text = f"{usd.quantize(Decimal('0.000001'), rounding=ROUND_CEILING):f}".rstrip("0")
    return "$" + (text if len(text.partition(".")[2]) >= 2 else f"{Decimal(text):.2f}")


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of a label set (FNV-1a 64 over sorted names and values, each
    followed by 0xff), so the same alert is recognised in both Alertmanager and Kafka."""
    h = 0xCBF29CE484222325
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode():
                h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
            h = ((h ^ 0xFF) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def rfc3339(epoch: float) -> str:
    """An instant as Alertmanager writes it (UTC, milliseconds, trailing zeros dropped as Go's
    RFC 3339 does), so the anomaly event's id matches the one the webhook would derive."""
    text = datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")[:-6]
    head, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0")
    return f"{head}.{fraction}Z" if fraction else f"{head}Z"


def _limits(config: TripwiresConfig, override: TripwireLimits | None) -> _Limits:
    def pick(name: str) -> Any:
        value = getattr(override, name, None) if override is not None else None
        return getattr(config, name) if value is None else value

    return _Limits(usd_units(pick(REQUEST_USD)), usd_units(pick(TEAM_USD)), int(pick(TEAM_TOKENS)))


def _app_limits(team: _Limits, app: TripwireLimits) -> _Limits:
    # An app's windows check only the limits it sets itself; its single-call limit falls back to
    # the team's.
    return _Limits(
        team.request if app.request_usd is None else usd_units(app.request_usd),
        0 if app.team_usd_per_minute is None else usd_units(app.team_usd_per_minute),
        0 if app.team_tokens_per_minute is None else int(app.team_tokens_per_minute),
    )


class Tripwires:
    """Checks counted usage events against the configured limits and keeps the firing state."""

    def __init__(
        self,
        config: TripwiresConfig,
        cluster: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.cluster = cluster
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._default = _limits(config, None)
        self._overrides: dict[str, tuple[_Limits, dict[str, _Limits]]] = {}
        for team, override in config.overrides.items():
            limits = _limits(config, override)
            apps = {app: _app_limits(limits, a) for app, a in override.apps.items()}
            self._overrides[team] = (limits, apps)
        self._teams: OrderedDict[str, _Scope] = OrderedDict()
        self._firing: dict[tuple[str, ...], _Firing] = {}
        self._fired = dict.fromkeys(TRIPWIRES, 0)
        self._untracked = 0
        self._runbook = f"{config.runbook_url}#{RUNBOOK_ANCHOR}"
        self._dashboard = f"{config.grafana_url.rstrip('/')}/d/{DASHBOARD_UID}?var-team="

    # -- the event path ----------------------------------------------------------------------

    def observe(self, events: Iterable[PricedEvent]) -> list[Alert]:
        """Check counted events (in order); returns the alerts of the tripwires they set off.
        Events older than `max_event_age_seconds` (event time) trip nothing."""
        now = self._clock()
        wall = self._wall()
        oldest = datetime.fromtimestamp(wall - self.config.max_event_age_seconds, UTC)
        second = int(now)
        out: list[Alert] = []
        check = self._check
        with self._lock:
            for priced in events:
                event = priced.event
                if event.envelope.time >= oldest:
                    check(event.usage, priced.cost, now, second, wall, out)
        return out

    def _scope(self, team: str) -> _Scope:
        teams = self._teams
        limits, apps = self._overrides.get(team) or (self._default, None)
        scope = teams[team] = _Scope(limits, apps)
        if len(teams) > self.config.max_tracked:
            teams.popitem(last=False)
        return scope

    def _check(
        self,
        usage: UsageRecord,
        cost: Cost,
        now: float,
        second: int,
        wall: float,
        out: list[Alert],
    ) -> None:
        # The hot path: a few integer operations per event, no allocation unless a limit trips.
        team = usage[2]
        scope = self._teams.get(team)
        if scope is None:
            scope = self._scope(team)
        else:
            self._teams.move_to_end(team)
        parts = cost[0]
        units = parts[0] + parts[1] + parts[2] + parts[3] if parts is not None else cost_units(cost)
        tokens = usage[5] + usage[8]  # input (every kind) + output tokens
        limits = scope.limits
        app_scope = scope.apps.get(usage[3]) if scope.apps else None
        request = limits.request if app_scope is None else app_scope.limits.request
        if request and units > request:
            key = (REQUEST_USD, team, usage[3], usage[1])
            self._over(key, REQUEST_USD, usage, units, request, None, False, now, wall, out)
        self._check_windows(scope, False, usage, units, tokens, now, second, wall, out)
        if app_scope is not None:
            self._check_windows(app_scope, True, usage, units, tokens, now, second, wall, out)

    def _check_windows(
        self,
        scope: _Scope,
        app_scoped: bool,
        usage: UsageRecord,
        units: int,
        tokens: int,
        now: float,
        second: int,
        wall: float,
        out: list[Alert],
    ) -> None:
        limits = scope.limits
        if limits.usd:
            total = scope.usd.add(second, units)
            if total > limits.usd:
                key = (TEAM_USD, usage[2], usage[3]) if app_scoped else (TEAM_USD, usage[2])
                window = scope.usd
                self._over(
                    key, TEAM_USD, usage, total, limits.usd, window, app_scoped, now, wall, out
                )
        if limits.tokens:
            total = scope.tokens.add(second, tokens)
            if total > limits.tokens:
                key = (TEAM_TOKENS, usage[2], usage[3]) if app_scoped else (TEAM_TOKENS, usage[2])
                window = scope.tokens
                self._over(
                    key,
                    TEAM_TOKENS,
                    usage,
                    total,
                    limits.tokens,
                    window,
                    app_scoped,
                    now,
                    wall,
                    out,
                )

    def _over(
        self,
        key: tuple[str, ...],
        tripwire: str,
        usage: UsageRecord,
        value: int,
        limit: int,
        window: MinuteWindow | None,
        app_scoped: bool,
        now: float,
        wall: float,
        out: list[Alert],
    ) -> None:
        firing = self._firing.get(key)
        if firing is not None:
            firing.last_over = now
            if value > firing.value:
                firing.value = value
            return
        if len(self._firing) >= self.config.max_firing:
            self._untracked += 1
            return
        labels = {
            "alertname": ALERTNAME,
            "severity": "critical",
            "aifinops_tier": TIER,
            "tripwire": tripwire,
            "team": usage[2],
            "app": usage[3],
            "model": usage[1],
            "cluster": self.cluster,
        }
        firing = _Firing(labels, tripwire, window, limit, value, wall, now, app_scoped)
        self._firing[key] = firing
        self._fired[tripwire] += 1
        out.append(self._alert(firing, "firing", wall + self.config.alert_ttl_seconds, True))

    # -- the notifier's tick ----------------------------------------------------------------

    def due(self) -> list[Alert]:
        """Refreshes of the tripwires still holding whose last send is `refresh_seconds` old, and
        resolutions of those that have not held for `resolve_after_seconds`."""
        now, wall = self._clock(), self._wall()
        second = int(now)
        config = self.config
        out: list[Alert] = []
        with self._lock:
            for key, firing in list(self._firing.items()):
                window = firing.window
                if window is not None and window.total_at(second) > firing.limit:
                    firing.last_over = now
                if now - firing.last_over >= config.resolve_after_seconds:
                    del self._firing[key]
                    out.append(self._alert(firing, "resolved", wall, True))
                elif now - firing.last_sent >= config.refresh_seconds:
                    firing.last_sent = now
                    out.append(
                        self._alert(firing, "firing", wall + config.alert_ttl_seconds, False)
                    )
        return out

    def stats(self) -> TripwireStats:
        """Onsets and firing tripwires per tripwire, and those not tracked."""
        with self._lock:
            firing = dict.fromkeys(TRIPWIRES, 0)
            for f in self._firing.values():
                firing[f.tripwire] += 1
            return TripwireStats(dict(self._fired), firing, self._untracked)

    def _alert(self, firing: _Firing, status: str, ends: float, change: bool) -> Alert:
        labels = firing.labels
        team, app, model = labels["team"], labels["app"], labels["model"]
        who = f"App {app} of team {team}" if firing.app_scoped else f"Team {team}"
        setting = f"tripwires.{firing.tripwire}"
        if firing.tripwire == REQUEST_USD:
            summary = f"A single LLM call of team {team} cost {format_usd(firing.value)}"
            description = (
                f"One call of team {team}, app {app}, model {model} cost "
                f"{format_usd(firing.value)}, above the single-call limit of "
                f"{format_usd(firing.limit)} ({setting})."
            )
        elif firing.tripwire == TEAM_USD:
            summary = f"{who} spent {format_usd(firing.value)} in one minute"
            description = (
                f"{who} spent {format_usd(firing.value)} within 60 seconds, above its limit of "
                f"{format_usd(firing.limit)} per minute ({setting}); the call that crossed it: "
                f"app {app}, model {model}."
            )
        else:
            summary = f"{who} used {firing.value:,} tokens in one minute"
            description = (
                f"{who} used {firing.value:,} LLM tokens within 60 seconds, above its limit of "
                f"{firing.limit:,} per minute ({setting}); the call that crossed it: app {app}, "
                f"model {model}."
            )
        body = {
            "labels": labels,
            "annotations": {
                "summary": summary,
                "description": description,
                "runbook_url": self._runbook,
                "dashboard_url": self._dashboard + team,
            },
            "startsAt": rfc3339(firing.starts),
            "endsAt": rfc3339(ends),
        }
        return Alert(firing.fingerprint, status, body, change)
