"""The wire form of every event: JSON decoding and encoding, and the `Problem` listing of what is wrong.

`loads` and `encode` are `json`'s behaviour at orjson's speed (orjson where it agrees with `json`,
`json` elsewhere: integers beyond 64 bits, NaN, Infinity, a BOM, deep nesting); `decode` turns a
message value that is not UTF-8 JSON into an `EventError`; `lone_surrogate_field` names the field of
a string no UTF-8 encoder can write. `Problem` and `EventError` are the one error shape every
event check raises: each problem by dotted field, as the HTTP 400 body and the DLQ headers list it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from math import isfinite
from typing import Any

import orjson


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
    if type(raw) is bytes and plain_numbers(raw):
        try:
            return _orjson_loads(raw)
        except _OrjsonDecodeError:
            pass
    try:
        return _json_loads(raw)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", "", 0) from None


def plain_numbers(raw: bytes) -> bool:
    """False when the JSON text `raw` has a run of 19 digits or more: an integer beyond 64 bits
    (which orjson would turn into a float) or one too long for Python to convert, which only
    `json` reads as `loads` must."""
    return _LONG_DIGIT_RUN not in raw.translate(_DIGITS_AS_NINES)


_orjson_loads = orjson.loads
_orjson_dumps = orjson.dumps
_OrjsonDecodeError = orjson.JSONDecodeError
_json_loads = json.loads
_DIGITS_AS_NINES = bytes.maketrans(b"012345678", b"999999999")
# Integers of up to 18 digits are within 64 bits, where orjson returns what json does.
_LONG_DIGIT_RUN = b"9" * 19


def decode(raw: bytes | str) -> Any:
    """Parse a message value; raise `EventError` when it is not UTF-8 JSON or holds an integer
    too long to convert (that one names its field)."""
    try:
        return loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EventError([Problem("", f"not valid JSON: {exc}")]) from exc
    except ValueError as exc:
        raise EventError([Problem(long_integer_field(raw), str(exc))]) from exc


def long_integer_field(raw: bytes | str) -> str:
    """The dotted path (`data.input_tokens`, `[3].data.input_tokens` in a batch) of the first
    integer in the JSON text `raw` too long for Python to convert (over 4,300 digits,
    CVE-2020-10735), which `loads` refuses with a bare `ValueError`; "" when none is found."""

    class _Long(str):
        pass

    def parse_int(text: str) -> Any:
        return _Long(text) if len(text.lstrip("-")) > 4300 else 0

    def find(value: Any, path: str) -> str | None:
        if isinstance(value, _Long):
            return path
        if isinstance(value, dict):
            items: Any = ((f"{path}.{k}", v) for k, v in value.items())
        elif isinstance(value, list):
            items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
        else:
            return None
        for sub, item in items:
            if (found := find(item, sub)) is not None:
                return found
        return None

    try:
        found = find(json.loads(raw, parse_int=parse_int), "")
    except (ValueError, RecursionError):
        return ""
    # Within a batch the path starts at the event: [3].data.input_tokens
    return (found or "").lstrip(".")


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
