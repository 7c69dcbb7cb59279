"""The CloudEvents 1.0 envelope every aifinops event travels in: building, encoding and validating it."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from math import isfinite
from typing import Any, NamedTuple, TypeVar

import orjson

USAGE_TYPE = "io.aifinops.llm.usage.v1"
GPU_SAMPLE_TYPE = "io.aifinops.gpu.sample.v1"
ANOMALY_TYPE = "io.aifinops.cost.anomaly.v1"

SPECVERSION = "1.0"
MAX_ID_LENGTH = 256
MAX_SOURCE_LENGTH = 512
MAX_TYPE_LENGTH = 256
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


@dataclass(frozen=True)
class Problem:
    """One reason an event is invalid: the field (dotted, e.g. `data.input_tokens`) and why."""

    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        """The `{field, reason}` shape of a 400 body entry."""
        return {"field": self.field, "reason": self.reason}


class EventError(ValueError):
    """An event that cannot be accepted; `problems` lists every reason found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.reason}" for p in problems))


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
    if subject is not None and (type(subject) is not str or not 0 < len(subject) <= 256):
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
    subject = text("subject", 256, required=False)
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


def encode(event: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, as the event goes on the wire: what `json.dumps` with compact
    separators and `ensure_ascii=False` writes (orjson writes it, several times faster, when the
    event holds only plain JSON values; floats may then spell their exponent differently)."""
    if _plain_json(event):
        try:
            return _orjson_dumps(event)
        except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits, a lone surrogate
            pass
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


def _plain_json(value: Any) -> bool:
    """True when `value` is made of dicts with string keys, lists, tuples, strings, integers,
    booleans, None and finite floats only: values orjson and json encode alike (anything else,
    e.g. NaN, a str subclass or a UUID, is left to json, which decides as it always did)."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            kind = type(item)
            if type(key) is not str:
                return False
            if kind is str or kind is int or item is None or kind is bool:
                continue
            if not _plain_json(item):
                return False
        return True
    if kind is list or kind is tuple:
        for item in value:
            kind = type(item)
            if kind is str or kind is int or item is None or kind is bool:
                continue
            if not _plain_json(item):
                return False
        return True
    if kind is float:
        return isfinite(value)
    return kind is str or kind is int or value is None or kind is bool


def loads(raw: bytes | str) -> Any:
    """`json.loads`, several times faster on the JSON producers write: what it accepts, the
    values it returns and the errors it raises (`json.JSONDecodeError`, `UnicodeDecodeError`)
    are `json.loads`'s, except that JSON nested too deeply for it is a `JSONDecodeError` too
    rather than a `RecursionError`.

    orjson parses strict RFC 8259 UTF-8 JSON with the same results as `json`, except integers
    beyond 64 bits, which it turns into floats: a value with a run of 19 digits, and whatever
    orjson refuses (NaN, Infinity, lone surrogates, a BOM, UTF-16, deep nesting), goes to `json`.
    """
    if type(raw) is bytes and _LONG_DIGIT_RUN not in raw.translate(_DIGITS_AS_NINES):
        try:
            return _orjson_loads(raw)
        except _OrjsonDecodeError:
            pass
    try:
        return _json_loads(raw)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", "", 0) from None


_orjson_loads = orjson.loads
_orjson_dumps = orjson.dumps
_OrjsonDecodeError = orjson.JSONDecodeError
_json_loads = json.loads
_DIGITS_AS_NINES = bytes.maketrans(b"012345678", b"999999999")
# Integers of up to 18 digits are within 64 bits, where orjson returns what json does.
_LONG_DIGIT_RUN = b"9" * 19


def decode(raw: bytes | str) -> Any:
    """Parse a message value; raise `EventError` when it is not UTF-8 JSON."""
    try:
        return loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EventError([Problem("", f"not valid JSON: {exc}")]) from exc


# A `\uD800`..`\uDFFF` escape: the only way a surrogate gets into a decoded JSON string (raw
# UTF-8 cannot carry one), so a body without it needs no walk.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


def may_hold_lone_surrogate(raw: bytes) -> bool:
    """False when the JSON text `raw` cannot decode to a string holding a lone surrogate (it has
    no surrogate escape); True means `lone_surrogate_field` must look."""
    return b"\\u" in raw and _SURROGATE_ESCAPE.search(raw) is not None


def lone_surrogate_field(value: Any, path: str = "") -> str | None:
    """The dotted path (`subject`, `data.metadata.note`, `data.tags[2]`) of the first string, or
    object key, holding a lone surrogate: no UTF-8 encoder (Kafka's, orjson's) can write such an
    event, so it must be refused where it arrives rather than counted and then lost. None when
    there is none."""
    kind = type(value)
    if kind is str:
        try:
            value.encode()
        except UnicodeEncodeError:
            return path or "(value)"
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str):
                try:
                    key.encode()
                except UnicodeEncodeError:
                    return f"{path}.{key!a}" if path else ascii(key)
            found = lone_surrogate_field(item, where)
            if found is not None:
                return found
        return None
    if kind is list or kind is tuple:
        for i, item in enumerate(value):
            found = lone_surrogate_field(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None
