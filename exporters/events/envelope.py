"""The CloudEvents 1.0 envelope every aifinops event travels in: building, encoding and validating it."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

USAGE_TYPE = "io.aifinops.llm.usage.v1"
GPU_SAMPLE_TYPE = "io.aifinops.gpu.sample.v1"
ANOMALY_TYPE = "io.aifinops.cost.anomaly.v1"

SPECVERSION = "1.0"
MAX_ID_LENGTH = 256
MAX_SOURCE_LENGTH = 512
# Events stamped further ahead than this are refused: a clock that far off would poison the
# per-period budget figures.
DEFAULT_MAX_FUTURE = timedelta(minutes=5)

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


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


@dataclass(frozen=True)
class Envelope:
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
    event_type = text("type", 256)
    subject = text("subject", 256, required=False)
    if event_type is not None and types is not None and event_type not in types:
        problems.append(
            Problem("type", f"must be one of {', '.join(sorted(types))} (got {event_type!r})")
        )
    now = now or datetime.now(UTC)
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
    """Compact UTF-8 JSON, as the event goes on the wire."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


def decode(raw: bytes | str) -> Any:
    """Parse a message value; raise `EventError` when it is not UTF-8 JSON."""
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EventError([Problem("", f"not valid JSON: {exc}")]) from exc
