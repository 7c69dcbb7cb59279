"""The CloudEvents 1.0 envelope every aifinops event travels in: building and validating it."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from .codec import EventError, Problem

USAGE_TYPE = "io.aifinops.llm.usage.v1"
GPU_SAMPLE_TYPE = "io.aifinops.gpu.sample.v1"
ANOMALY_TYPE = "io.aifinops.cost.anomaly.v1"

SPECVERSION = "1.0"
MAX_ID_LENGTH = 256
MAX_SOURCE_LENGTH = 512
MAX_TYPE_LENGTH = 256
MAX_SUBJECT_LENGTH = 256
# Events stamped further ahead than this are refused: a clock that far off would poison the
# per-period budget figures.
DEFAULT_MAX_FUTURE = timedelta(minutes=5)

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)
# The form nearly every producer writes (`T`, `Z` or an offset, at most microseconds), which
# `datetime.fromisoformat` reads as it stands; a subset of `_RFC3339`.
_PLAIN_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})"
)
_fromisoformat = datetime.fromisoformat
# Builds a named tuple from its values without the keyword-handling `__new__` (5x cheaper).
_new = tuple.__new__


class Envelope(NamedTuple):
    """A validated CloudEvent envelope; `data` is still unvalidated (its type's module checks it)."""

    id: str
    source: str
    type: str
    time: datetime
    data: Mapping[str, Any]
    subject: str | None = None

    @property
    def identity(self) -> tuple[str, str]:
        """`(source, id)`: an event seen twice under this identity is counted once."""
        return (self.source, self.id)


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (nanosecond fractions are truncated to microseconds)."""
    if _PLAIN_RFC3339.fullmatch(text):
        try:
            return _fromisoformat(text)
        except ValueError:
            pass  # out-of-range fields: the full parse words the error
    return _parse_time_fully(text)


def _parse_time_fully(text: str) -> datetime:
    """The definition of a valid timestamp: every RFC 3339 form, every error worded."""
    if not _RFC3339.match(text):
        raise ValueError("must be an RFC 3339 timestamp")
    text = text.replace("z", "Z").replace("Z", "+00:00").replace("t", "T").replace(" ", "T")
    main, _, rest = text.partition(".")
    if rest:
        digits = re.match(r"\d+", rest)
        assert digits is not None
        text = f"{main}.{digits.group()[:6].ljust(6, '0')}{rest[digits.end() :]}"
    return datetime.fromisoformat(text)


def parse_envelope(
    obj: Any,
    *,
    types: frozenset[str] | None = None,
    now: datetime | None = None,
    max_future: timedelta = DEFAULT_MAX_FUTURE,
) -> Envelope:
    """Check the envelope fields of a decoded event; raise `EventError` listing every problem.

    `time` is optional on the wire; a missing one means now (receipt time).
    """
    now = now or datetime.now(UTC)
    return accept_envelope(obj, types, now, max_future) or _check_envelope(
        obj, types, now, max_future
    )


def accept_envelope(
    obj: Any, types: frozenset[str] | None, now: datetime, max_future: timedelta
) -> Envelope | None:
    """The envelope of an event in the shape nearly every producer writes, checked in a few
    comparisons; None for anything else, which `parse_envelope`'s full check then words.

    It accepts only what the full check accepts, with the same result (a test proves it on a
    fuzzed corpus): the full check stays the one definition of a valid envelope.
    """
    if type(obj) is not dict:
        return None
    get = obj.get
    event_id = get("id")
    source = get("source")
    event_type = get("type")
    data = get("data")
    if (
        get("specversion") != SPECVERSION
        or type(event_id) is not str
        or not 0 < len(event_id) <= MAX_ID_LENGTH
        or type(source) is not str
        or not 0 < len(source) <= MAX_SOURCE_LENGTH
        or type(event_type) is not str
        or not 0 < len(event_type) <= MAX_TYPE_LENGTH
        or (types is not None and event_type not in types)
        or type(data) is not dict
        or "data_base64" in obj
    ):
        return None
    subject = get("subject")
    if subject is not None and (
        type(subject) is not str or not 0 < len(subject) <= MAX_SUBJECT_LENGTH
    ):
        return None
    raw_time = get("time")
    if raw_time is None:
        when = now
    elif type(raw_time) is str:
        try:
            when = parse_time(raw_time)
        except ValueError:
            return None
        if when - now > max_future:
            return None
    else:
        return None
    return _new(Envelope, (event_id, source, event_type, when, data, subject))


def _check_envelope(
    obj: Any, types: frozenset[str] | None, now: datetime, max_future: timedelta
) -> Envelope:
    """The definition of a valid envelope: every field checked, every problem listed."""
    if not isinstance(obj, Mapping):
        raise EventError([Problem("", "event must be a JSON object")])
    problems: list[Problem] = []

    def text(name: str, max_len: int, required: bool = True) -> str | None:
        value = obj.get(name)
        if value is None:
            if required:
                problems.append(Problem(name, "required"))
            return None
        if not isinstance(value, str) or not value:
            problems.append(Problem(name, "must be a non-empty string"))
            return None
        if len(value) > max_len:
            problems.append(Problem(name, f"longer than {max_len} characters"))
            return None
        return value

    specversion = obj.get("specversion")
    if specversion != SPECVERSION:
        problems.append(Problem("specversion", f"must be {SPECVERSION!r} (got {specversion!r})"))
    event_id = text("id", MAX_ID_LENGTH)
    source = text("source", MAX_SOURCE_LENGTH)
    event_type = text("type", MAX_TYPE_LENGTH)
    subject = text("subject", MAX_SUBJECT_LENGTH, required=False)
    if event_type is not None and types is not None and event_type not in types:
        problems.append(
            Problem("type", f"must be one of {', '.join(sorted(types))} (got {event_type!r})")
        )
    when = now
    raw_time = obj.get("time")
    if raw_time is not None:
        if not isinstance(raw_time, str):
            problems.append(Problem("time", "must be an RFC 3339 timestamp string"))
        else:
            try:
                when = parse_time(raw_time)
            except ValueError as exc:
                problems.append(Problem("time", str(exc)))
            else:
                if when - now > max_future:
                    problems.append(
                        Problem("time", f"more than {max_future} in the future ({raw_time})")
                    )
    data = obj.get("data")
    if not isinstance(data, Mapping):
        problems.append(Problem("data", "required, must be a JSON object"))
    if "data_base64" in obj:
        problems.append(Problem("data_base64", "binary data is not supported; use data"))
    if problems:
        raise EventError(problems)
    assert event_id and source and event_type and isinstance(data, Mapping)
    return Envelope(event_id, source, event_type, when, data, subject)


T = TypeVar("T")


def parse_event(
    obj: Any,
    types: frozenset[str],
    parse_data: Callable[[Mapping[str, Any]], T],
    *,
    now: datetime | None = None,
    max_future: timedelta = DEFAULT_MAX_FUTURE,
) -> tuple[Envelope, T]:
    """Validate an event of one of `types`, its envelope and its `data` (with `parse_data`)
    together; raise `EventError` listing the problems of both (`time`, `data.input_tokens`...)."""
    problems: list[Problem] = []
    envelope: Envelope | None = None
    try:
        envelope = parse_envelope(obj, types=types, now=now, max_future=max_future)
    except EventError as exc:
        problems.extend(exc.problems)
    data = obj.get("data") if isinstance(obj, Mapping) else None
    parsed: T | None = None
    if isinstance(data, Mapping):
        try:
            parsed = parse_data(data)
        except EventError as exc:
            problems.extend(exc.problems)
    if problems:
        raise EventError(problems)
    assert envelope is not None and parsed is not None
    return envelope, parsed


def make_event(
    event_type: str,
    source: str,
    data: Mapping[str, Any],
    *,
    event_id: str | None = None,
    time: datetime | None = None,
    subject: str | None = None,
) -> dict[str, Any]:
    """A CloudEvent in structured JSON mode, with a fresh id and the current time by default."""
    event: dict[str, Any] = {
        "specversion": SPECVERSION,
        "id": event_id or str(uuid.uuid4()),
        "source": source,
        "type": event_type,
        "time": (time or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": dict(data),
    }
    if subject is not None:
        event["subject"] = subject
    return event
