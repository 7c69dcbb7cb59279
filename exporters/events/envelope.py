"""The CloudEvents 1.0 envelope every aifinops event travels in: building it, and its one definition
(`CloudEvent`), read by msgspec's typed decode and by the every-problem listing (`schema.py`)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, NamedTuple, TypeVar

from msgspec import UNSET, Meta, Struct, UnsetType

from .codec import EventError, Problem
from .schema import Definition

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


_NON_EMPTY = "must be a non-empty string"


# The reason a string attribute is refused when it is not one, or empty.
_NON_EMPTY_RULE = {"type_rule": _NON_EMPTY, "rule": _NON_EMPTY}
_Id = Annotated[str, Meta(min_length=1, max_length=MAX_ID_LENGTH, extra=_NON_EMPTY_RULE)]
_Source = Annotated[str, Meta(min_length=1, max_length=MAX_SOURCE_LENGTH, extra=_NON_EMPTY_RULE)]
_Type = Annotated[str, Meta(min_length=1, max_length=MAX_TYPE_LENGTH, extra=_NON_EMPTY_RULE)]


class CloudEvent(Struct, kw_only=True):
    """The definition of a valid CloudEvents envelope (structured JSON mode): the attributes
    aifinops reads, each with its type and bounds. Other attributes (`datacontenttype`, extensions)
    are allowed and ignored. `time` is optional (receipt time); `data_base64` must be absent."""

    specversion: Annotated[
        Literal["1.0"], Meta(extra={"required": f"must be {SPECVERSION!r} (got None)"})
    ]
    id: _Id
    source: _Source
    type: _Type
    subject: Annotated[
        Annotated[str, Meta(min_length=1, max_length=MAX_SUBJECT_LENGTH)] | None,
        Meta(extra=_NON_EMPTY_RULE),
    ] = None
    time: Annotated[
        str | None, Meta(extra={"type_rule": "must be an RFC 3339 timestamp string"})
    ] = None
    data: Annotated[
        dict[str, Any],
        Meta(
            extra={
                "type_rule": "required, must be a JSON object",
                "required": "required, must be a JSON object",
            }
        ),
    ]
    data_base64: Annotated[
        UnsetType, Meta(extra={"type_rule": "binary data is not supported; use data"})
    ] = UNSET


ENVELOPE = Definition(CloudEvent)


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
    if type(obj) is dict:
        event = ENVELOPE.convert(obj)
        if event is not None:
            envelope = typed_envelope(event, obj["data"], types, now, max_future)
            if envelope is not None:
                return envelope
    return _list_envelope(obj, types, now, max_future)


def type_problem(event_type: str, types: frozenset[str] | None) -> str | None:
    """Why `event_type` is not one of `types` (None: it is, or any type goes)."""
    if types is None or event_type in types:
        return None
    return f"must be one of {', '.join(sorted(types))} (got {event_type!r})"


def event_time(raw_time: str | None, now: datetime, max_future: timedelta) -> datetime | str:
    """The time of an event whose `time` is `raw_time` (now when it has none), or why that
    `time` is refused: not RFC 3339, or more than `max_future` ahead of `now`."""
    if raw_time is None:
        return now
    try:
        when = parse_time(raw_time)
    except ValueError as exc:
        return str(exc)
    if when - now > max_future:
        return f"more than {max_future} in the future ({raw_time})"
    return when


def typed_envelope(
    event: CloudEvent,
    data: Mapping[str, Any],
    types: frozenset[str] | None,
    now: datetime,
    max_future: timedelta,
) -> Envelope | None:
    """The envelope of an event msgspec built as a `CloudEvent`, once the rules its declaration
    cannot state hold (`type_problem`, `event_time`); None when one does not, for the listing to
    word."""
    if types is not None and event.type not in types:
        return None
    when = event_time(event.time, now, max_future)
    if type(when) is str:
        return None
    return _new(Envelope, (event.id, event.source, event.type, when, data, event.subject))


def _list_envelope(
    obj: Any, types: frozenset[str] | None, now: datetime, max_future: timedelta
) -> Envelope:
    """The envelope checked field by field against `CloudEvent`, every problem listed."""
    if not isinstance(obj, Mapping):
        raise EventError([Problem("", "event must be a JSON object")])
    problems: list[Problem] = []
    values = ENVELOPE.check(obj, lambda name, reason: problems.append(Problem(name, reason)))
    event_type = values.get("type")
    if event_type is not None and (reason := type_problem(event_type, types)) is not None:
        problems.append(Problem("type", reason))
    when = event_time(values.get("time"), now, max_future)
    if isinstance(when, str):
        problems.append(Problem("time", when))
    if problems:
        raise EventError(ENVELOPE.sort(problems))
    assert isinstance(when, datetime)
    return Envelope(
        values["id"], values["source"], values["type"], when, obj["data"], values["subject"]
    )


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
