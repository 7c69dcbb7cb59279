"""The token exporter never counts what it cannot hand on: lone surrogates, a full spool, and
label mixes beyond the series budget (issue 19), against the real daemon and a real broker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from aifinops.exporters.events import USAGE_TYPE, make_event
from support.token_daemon import TokenDaemon

pytestmark = pytest.mark.integration


def usage(event_id: str, **data: object) -> dict:
    return make_event(
        USAGE_TYPE,
        "it-gateway",
        {
            "provider": "openai",
            "model": "gpt-4o",
            "team": "ml",
            "app": "chat",
            "input_tokens": 100,
            "output_tokens": 10,
            **data,
        },
        event_id=event_id,
    )


@pytest.fixture
def plain_daemon(tmp_path: Path) -> Iterator[TokenDaemon]:
    daemon = TokenDaemon(tmp_path / "exporter")
    daemon.start()
    yield daemon
    daemon.stop()


def test_a_lone_surrogate_anywhere_is_refused_naming_the_field(plain_daemon: TokenDaemon) -> None:
    # json.dumps (ensure_ascii) writes "\ud800" as the escape a hostile client would send.
    in_subject = {**usage("s-1"), "subject": "x\ud800"}
    in_ignored = usage("s-2", note={"deep": ["ok", "\udfff"]})
    status, body = plain_daemon.post(in_subject, "application/cloudevents+json")
    assert status == 400, body
    assert body[0]["field"] == "subject"
    assert "surrogate" in body[0]["reason"]
    status, body = plain_daemon.post([usage("s-ok"), in_ignored])
    assert status == 400, body
    assert [(p["index"], p["field"]) for p in body] == [(1, "data.note.deep[1]")]
    # Nothing of either request was counted; both are counted as rejected.
    assert plain_daemon.sample("aifinops_llm_requests_total") is None
    assert plain_daemon.sample("aifinops_ingest_events_total", outcome="accepted") == 0
    assert plain_daemon.sample("aifinops_ingest_events_total", outcome="rejected") == 3
    # A surrogate pair (an escaped emoji) is one character, counted as usual.
    assert json.dumps("\U0001f600") == '"\\ud83d\\ude00"'
    status, body = plain_daemon.post([usage("s-3", note="\U0001f600")])
    assert status == 202, body
    assert plain_daemon.sample("aifinops_llm_requests_total") == 1
