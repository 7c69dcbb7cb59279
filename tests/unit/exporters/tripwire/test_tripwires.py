"""Tripwires without services: the last-minute windows, each limit, overrides, refresh and resolution
on an injected clock, bounded state, exact money, the alert's labels and annotations, the config,
and which events reach them (counted ones only; the bridge skips its own cluster's)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from prometheus_client import CollectorRegistry

from aifinops.bridge.pipeline import MessageProcessor
from aifinops.bridge.records import InboundRecord
from aifinops.exporters.config import (
    Config,
    LLMConfig,
    TeamTripwireLimits,
    TopicsConfig,
    TripwireLimits,
    TripwiresConfig,
)
from aifinops.exporters.events import USAGE_TYPE, encode, make_event
from aifinops.exporters.gpu import GPUAggregator
from aifinops.exporters.llm import DedupeWindow, PricedEvent, UsageIngest
from aifinops.exporters.runtime.config import ConfigError, load_config
from aifinops.exporters.sink import COUNTED_IN_HEADER as COUNTED_IN
from aifinops.exporters.tripwire import (
    AlertmanagerNotifier,
    MinuteWindow,
    Tripwires,
    cost_units,
    fingerprint,
)
from aifinops.exporters.tripwire.checker import rfc3339

INGEST = UsageIngest.from_config(LLMConfig())
EPOCH = 1_750_000_000.0  # the injected wall clock starts at EPOCH + 1000
_ids = itertools.count()


class Clock:
    """A monotonic clock the test moves; the wall clock is EPOCH plus it."""

    def __init__(self) -> None:
        self.t = 1000.0

    def mono(self) -> float:
        return self.t

    def wall(self) -> float:
        return EPOCH + self.t


def call(
    cost: str | None = "0.01",
    team: str = "ml",
    app: str = "chat",
    model: str = "gpt-4o",
    tokens: tuple[int, int] = (100, 10),
    time: datetime | None = None,
) -> PricedEvent:
    data = {
        "provider": "openai",
        "model": model,
        "team": team,
        "app": app,
        "input_tokens": tokens[0],
        "output_tokens": tokens[1],
    }
    if cost is not None:
        data["cost_usd"] = float(cost)
    when = time or datetime.fromtimestamp(EPOCH + 1000, UTC)
    event = make_event(USAGE_TYPE, "test", data, event_id=f"e{next(_ids)}", time=when)
    return INGEST.prepare(event)


def tripwires(clock: Clock, **settings) -> Tripwires:
    """Tripwires with every limit off but those given."""
    limits = {"request_usd": Decimal(0), "team_usd_per_minute": Decimal(0)}
    config = TripwiresConfig(**{**limits, "team_tokens_per_minute": 0, **settings})
    return Tripwires(config, "east", clock=clock.mono, wall=clock.wall)


def labels(alerts) -> list[tuple[str, str, str]]:
    return [(a.status, a.body["labels"]["tripwire"], a.body["labels"]["team"]) for a in alerts]


# -- the window -------------------------------------------------------------------------------


def test_window_sums_the_last_sixty_seconds_exactly():
    w = MinuteWindow()
    assert w.add(100, 5) == 5
    assert w.add(130, 7) == 12
    assert w.add(159, 1) == 13
    # At 160 the second 100 has left the window (it holds 101..160).
    assert w.total_at(160) == 8
    assert w.total_at(189) == 8
    assert w.total_at(190) == 1
    assert w.total_at(219) == 0
    # A jump of more than a minute empties it at once.
    w.add(300, 3)
    assert w.total_at(10_000) == 0
    assert w.add(10_000, 2) == 2


# -- each limit -------------------------------------------------------------------------------


def test_a_single_call_above_request_usd_fires_once_with_the_dollar_figure():
    clock = Clock()
    t = tripwires(clock, request_usd=Decimal(5), team_usd_per_minute=Decimal(0))
    assert t.observe([call("5.00")]) == []  # at the limit is not above it
    alerts = t.observe([call("7.25")])
    assert labels(alerts) == [("firing", "request_usd", "ml")]
    alert = alerts[0]
    body = alert.body
    assert body["labels"] == {
        "alertname": "AIFinOpsSpendTripwire",
        "severity": "critical",
        "aifinops_tier": "tripwire",
        "tripwire": "request_usd",
        "team": "ml",
        "app": "chat",
        "model": "gpt-4o",
        "cluster": "east",
    }
    assert "$7.25" in body["annotations"]["description"]
    assert "$5.00" in body["annotations"]["description"]
    assert body["annotations"]["runbook_url"] == (
        "https://github.com/aifinops/aifinops/blob/main/docs/runbooks.md#aifinopsspendtripwire"
    )
    assert (
        body["annotations"]["dashboard_url"] == "http://localhost:3000/d/aifinops-llm?var-team=ml"
    )
    assert body["startsAt"] == rfc3339(EPOCH + 1000) == "2025-06-15T15:23:20Z"
    assert body["endsAt"] == rfc3339(EPOCH + 1120)  # alert_ttl_seconds later
    assert alert.fingerprint == fingerprint(body["labels"])
    # Another expensive call of the same team, app and model is the same alert: not sent again.
    assert t.observe([call("9")]) == []
    # Another model is another alert.
    assert labels(t.observe([call("9", model="o3")])) == [("firing", "request_usd", "ml")]
    assert t.stats().fired["request_usd"] == 2


def test_a_team_burst_over_the_minute_limit_fires_at_the_call_that_crosses_it():
    clock = Clock()
    t = tripwires(clock, team_usd_per_minute=Decimal(20))
    for _ in range(19):
        assert t.observe([call("1", app="a")]) == []
        clock.t += 1
    # Other teams' spend does not count towards ml's limit.
    assert t.observe([call("15", team="other")]) == []
    assert t.observe([call("1", app="b")]) == []  # exactly $20: not above
    alerts = t.observe([call("0.01", app="c", model="o3")])
    assert labels(alerts) == [("firing", "team_usd_per_minute", "ml")]
    description = alerts[0].body["annotations"]["description"]
    assert "Team ml spent $20.01 within 60 seconds" in description
    assert "limit of $20.00 per minute" in description
    assert "app c, model o3" in description


def test_the_same_spend_spread_over_more_than_a_minute_does_not_fire():
    clock = Clock()
    t = tripwires(clock, team_usd_per_minute=Decimal(20))
    for _ in range(40):
        assert t.observe([call("1")]) == []
        clock.t += 4  # $1 every 4 s: $15 a minute, $40 in all


def test_tokens_per_minute_fire_like_dollars():
    clock = Clock()
    t = tripwires(clock, team_tokens_per_minute=1_000_000, team_usd_per_minute=Decimal(0))
    assert t.observe([call("0", tokens=(900_000, 100_000))]) == []
    alerts = t.observe([call("0", tokens=(1, 0))])
    assert labels(alerts) == [("firing", "team_tokens_per_minute", "ml")]
    assert "1,000,001 LLM tokens" in alerts[0].body["annotations"]["description"]


def test_a_limit_of_zero_is_off():
    clock = Clock()
    t = tripwires(
        clock, request_usd=Decimal(0), team_usd_per_minute=Decimal(0), team_tokens_per_minute=0
    )
    assert t.observe([call("1000", tokens=(10**9, 10**9))]) == []


def test_unpriced_calls_count_tokens_but_no_dollars():
    clock = Clock()
    t = tripwires(clock, team_tokens_per_minute=1000)
    unpriced = call(None, model="no-such-model-xyz", tokens=(2000, 0))
    assert cost_units(unpriced.cost) == 0
    assert labels(t.observe([unpriced])) == [("firing", "team_tokens_per_minute", "ml")]


def test_money_is_exact_over_a_million_small_calls():
    # 0.00002 has no exact binary form: a float sum of a million of them is not exactly 20.
    assert sum([0.00002] * 1_000_000) != 20
    clock = Clock()
    t = tripwires(clock, team_usd_per_minute=Decimal(20), team_tokens_per_minute=0)
    small = call("0.00002")
    assert t.observe([small] * 1_000_000) == []
    assert labels(t.observe([small])) == [("firing", "team_usd_per_minute", "ml")]


# -- overrides --------------------------------------------------------------------------------


def test_team_and_app_overrides():
    clock = Clock()
    t = tripwires(
        clock,
        request_usd=Decimal(5),
        team_usd_per_minute=Decimal(20),
        overrides={
            "research": TeamTripwireLimits(request_usd=Decimal(50), team_usd_per_minute=Decimal(0)),
            "ml": TeamTripwireLimits(
                apps={"batch": TripwireLimits(team_usd_per_minute=Decimal(3))}
            ),
        },
    )
    # research: a larger single-call limit and no per-minute limit.
    assert t.observe([call("40", team="research")] * 10) == []
    assert labels(t.observe([call("60", team="research")])) == [
        ("firing", "request_usd", "research")
    ]
    # ml/batch has a minute window of its own, with its own limit; ml/chat only the team's.
    assert t.observe([call("2.5", app="chat")] * 2) == []
    alerts = t.observe([call("2.5", app="batch")] * 2)
    assert labels(alerts) == [("firing", "team_usd_per_minute", "ml")]
    assert alerts[0].body["labels"]["app"] == "batch"
    assert "App batch of team ml spent $5.00" in alerts[0].body["annotations"]["description"]
    # The team's own limit still fires separately, as another alert.
    team_alerts = t.observe([call("4", app="chat")] * 3)
    assert labels(team_alerts) == [("firing", "team_usd_per_minute", "ml")]
    assert team_alerts[0].fingerprint != alerts[0].fingerprint
    assert "Team ml spent $22.00" in team_alerts[0].body["annotations"]["description"]


# -- refresh, resolution, flood ---------------------------------------------------------------


def test_a_flood_sends_one_onset_then_refreshes_then_resolves_by_itself():
    clock = Clock()
    t = tripwires(clock, team_usd_per_minute=Decimal(20), refresh_seconds=30)
    sent = []
    event = call("0.01")
    # 100,000 calls over 50 s: $1,000, far above the limit the whole time.
    for _second in range(50):
        for _ in range(20):
            sent += t.observe([event] * 100)
        sent += t.due()
        clock.t += 1
    assert labels(sent) == [("firing", "team_usd_per_minute", "ml")] * 2
    assert [a.change for a in sent] == [True, False]  # an onset, then one refresh at 30 s
    assert sent[0].fingerprint == sent[1].fingerprint
    assert sent[1].body["startsAt"] == sent[0].body["startsAt"]
    assert sent[1].body["endsAt"] > sent[0].body["endsAt"]
    assert t.stats().fired["team_usd_per_minute"] == 1
    assert t.stats().firing["team_usd_per_minute"] == 1
    # The spend stops: the window still holds it for a minute, then resolve_after_seconds pass.
    later = []
    for _ in range(130):
        later += t.due()
        clock.t += 1
    # Refreshed every 30 s while the window holds it or within resolve_after_seconds of that.
    assert [(a.status, a.change) for a in later] == [("firing", False)] * 4 + [("resolved", True)]
    # $20 a second until t=1049: the window is above $20 until 1107 (it then holds 1048 and
    # 1049), and resolve_after_seconds (60) later it resolves, with endsAt that moment.
    assert later[-1].body["endsAt"] == rfc3339(EPOCH + 1167)
    assert t.stats().firing["team_usd_per_minute"] == 0
    # Spending again is a new onset.
    assert labels(t.observe([event] * 2001)) == [("firing", "team_usd_per_minute", "ml")]
    assert t.stats().fired["team_usd_per_minute"] == 2


def test_a_single_expensive_call_resolves_after_resolve_after_seconds():
    clock = Clock()
    t = tripwires(clock, request_usd=Decimal(5), resolve_after_seconds=60)
    assert len(t.observe([call("6")])) == 1
    clock.t += 30
    assert [(a.status, a.change) for a in t.due()] == [("firing", False)]  # the refresh
    clock.t += 29
    assert t.due() == []
    clock.t += 1
    assert [a.status for a in t.due()] == ["resolved"]
    assert t.stats().firing["request_usd"] == 0


def test_events_older_than_max_event_age_trip_nothing():
    clock = Clock()
    t = tripwires(clock, request_usd=Decimal(5), max_event_age_seconds=300)
    # prepare() checks event times against the real clock: put the injected one there too.
    real_now = datetime.now(UTC)
    clock.t = real_now.timestamp() - EPOCH
    assert t.observe([call("100", time=real_now - timedelta(seconds=301))]) == []
    assert len(t.observe([call("100", time=real_now - timedelta(seconds=10))])) == 1


# -- bounded state ----------------------------------------------------------------------------


def test_tracked_teams_are_bounded_least_recently_seen_first():
    clock = Clock()
    t = tripwires(clock, team_usd_per_minute=Decimal(20), max_tracked=100)
    assert t.observe([call("15", team="first")]) == []
    for i in range(100):
        t.observe([call("1", team=f"t{i}")])
    assert len(t._teams) == 100
    # "first" was forgotten with its $15: another $15 starts from zero.
    assert t.observe([call("15", team="first")]) == []
    assert len(t._teams) == 100


def test_firing_tripwires_are_bounded_and_the_rest_counted():
    clock = Clock()
    t = tripwires(clock, request_usd=Decimal(1), max_firing=3)
    alerts = t.observe([call("2", model=f"m{i}") for i in range(5)])
    assert len(alerts) == 3
    assert t.stats().untracked == 2
    assert t.stats().fired["request_usd"] == 3


def test_a_full_hand_over_queue_drops_and_counts():
    clock = Clock()
    notifier = AlertmanagerNotifier(
        tripwires(clock, request_usd=Decimal(1)), ["http://127.0.0.1:9"], queue_size=1
    )
    notifier.observe([call("2", model="a")])
    notifier.observe([call("2", model="b")])  # not started: nothing drains the queue
    registry = CollectorRegistry()
    registry.register(notifier.collector())
    assert (
        registry.get_sample_value("aifinops_tripwires_fired_total", {"tripwire": "request_usd"})
        == 2
    )
    assert (
        registry.get_sample_value(
            "aifinops_tripwire_notifications_dropped_total", {"reason": "queue_full"}
        )
        == 1
    )
    assert registry.get_sample_value("aifinops_tripwire_send_errors_total") == 0


# -- alert identity and config ----------------------------------------------------------------


def test_fingerprint_is_alertmanagers():
    # FNV-1a 64 as Prometheus' model.LabelSet.Fingerprint: the empty set is the offset basis.
    # (The integration tests compare fingerprints with a real Alertmanager's.)
    assert fingerprint({}) == "cbf29ce484222325"
    assert fingerprint({"a": "b"}) != fingerprint({"a": "c"})
    assert fingerprint({"a": "b", "c": "d"}) == fingerprint({"c": "d", "a": "b"})


def test_config_defaults_and_problems_listed_by_path(tmp_path):
    defaults = Config().tripwires
    assert defaults.enabled
    assert defaults.request_usd == 5
    assert defaults.team_usd_per_minute == 20
    assert defaults.alertmanager_urls == ()
    path = tmp_path / "aifinops.yml"
    path.write_text(
        """
tripwires:
  request_usd: -1
  team_usd_per_minute: 0.0000000000001
  alertmanager_urls: ["alertmanager:9093"]
  refresh_seconds: 100
  overrides:
    "bad team": {}
    ml:
      apps:
        chat: {team_tokens_per_minute: -5}
"""
    )
    with pytest.raises(ConfigError) as info:
        load_config(Config, path, environ={})
    assert sorted(info.value.problems) == sorted(
        [
            "tripwires.request_usd: must be 0 (off) or positive",
            "tripwires.team_usd_per_minute: at most 12 decimal places",
            "tripwires.alertmanager_urls[0]: must be an http:// or https:// URL",
            "tripwires.alert_ttl_seconds: must be at least twice refresh_seconds",
            "tripwires.overrides.bad team: team must be 1-128 characters of [A-Za-z0-9._:/@-]",
            "tripwires.overrides.ml.apps.chat.team_tokens_per_minute: must be 0 (off) or positive",
        ]
    )
    env = {"AIFINOPS_TRIPWIRES_ALERTMANAGER_URLS": "http://a:9093,http://b:9093"}
    assert load_config(Config, None, environ=env).tripwires.alertmanager_urls == (
        "http://a:9093",
        "http://b:9093",
    )


# -- the hook: only counted events ------------------------------------------------------------


def test_only_counted_events_reach_the_tripwires_and_the_bridge_skips_its_clusters():
    ingest = UsageIngest.from_config(LLMConfig())
    seen: list[PricedEvent] = []
    ingest.on_counted = seen.extend
    first = call("6")
    assert ingest.apply_all([first, first], "http") == [first]
    assert not ingest.apply(first, "http")  # a duplicate is not counted, nor checked
    assert seen == [first]

    # The bridge: an event an exporter of its own cluster counted is skipped before counting.
    processor = MessageProcessor(
        ingest, GPUAggregator(), DedupeWindow(), TopicsConfig(), "here", 1 << 16
    )
    own = call("7", team="own")
    gateway = call("8", team="gateway")

    usage_topic = TopicsConfig().usage.name
    records = [
        InboundRecord(
            usage_topic, 0, 0, None, encode(own.event.to_cloudevent()), [(COUNTED_IN, b"here")]
        ),
        InboundRecord(usage_topic, 0, 1, None, encode(gateway.event.to_cloudevent()), []),
    ]
    processor.apply(processor.process(records))
    assert [p.event.usage.team for p in seen[1:]] == ["gateway"]
