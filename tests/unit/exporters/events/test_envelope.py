"""The CloudEvents envelope: built, encoded and validated with every problem named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aifinops.exporters.events import (
    USAGE_TYPE,
    EventError,
    decode,
    encode,
    make_event,
    parse_envelope,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_round_trip():
    event = make_event(USAGE_TYPE, "gw-eu", {"a": 1}, event_id="e1", time=NOW, subject="s")
    env = parse_envelope(decode(encode(event)), types=frozenset({USAGE_TYPE}), now=NOW)
    assert env.identity == ("gw-eu", "e1")
    assert env.time == NOW
    assert env.data == {"a": 1}
    assert env.subject == "s"


def test_every_problem_is_listed():
    bad = {"specversion": "0.3", "id": "", "type": "x", "time": "yesterday", "data": []}
    with pytest.raises(EventError) as err:
        parse_envelope(bad, types=frozenset({USAGE_TYPE}), now=NOW)
    fields = [p.field for p in err.value.problems]
    assert fields == ["specversion", "id", "source", "type", "time", "data"]


def test_time_far_in_the_future_is_refused_and_nanoseconds_are_accepted():
    event = make_event(USAGE_TYPE, "s", {}, time=NOW + timedelta(hours=1))
    with pytest.raises(EventError, match="in the future"):
        parse_envelope(event, now=NOW)
    event["time"] = "2026-11-28T11:59:59.123456789Z"
    assert parse_envelope(event, now=NOW).time.microsecond == 123456


def test_missing_time_means_receipt_time_and_bad_json_is_an_event_error():
    event = make_event(USAGE_TYPE, "s", {})
    del event["time"]
    assert parse_envelope(event, now=NOW).time == NOW
    with pytest.raises(EventError, match="not valid JSON"):
        decode(b"\xff{")


def test_lone_surrogates_are_found_with_their_path_and_pairs_are_not():
    from aifinops.exporters.events import loads, lone_surrogate_field, may_hold_lone_surrogate

    raw = b'{"subject":"ok","data":{"tags":["a","b\\udc00"],"k\\ud800":1}}'
    assert may_hold_lone_surrogate(raw)
    assert lone_surrogate_field(loads(raw)) == "data.tags[1]"
    assert lone_surrogate_field(loads(b'{"data":{"k\\ud800":1}}')) == "data.'k\\ud800'"
    assert lone_surrogate_field(loads(b'{"subject":"\\uD83D"}')) == "subject"
    pair = b'{"note":"\\ud83d\\ude00"}'
    assert may_hold_lone_surrogate(pair) and lone_surrogate_field(loads(pair)) is None
    assert not may_hold_lone_surrogate(b'{"note":"\\u00e9 \xc3\xa9"}')


def test_an_integer_too_long_to_convert_is_an_event_error_naming_its_field():
    huge = "9" * 5000
    raw = f'{{"id":"e1","data":{{"tags":[1,{huge}]}}}}'.encode()
    with pytest.raises(EventError) as err:
        decode(raw)
    (problem,) = err.value.problems
    assert problem.field == "data.tags[1]"
    assert "4300" in problem.reason
