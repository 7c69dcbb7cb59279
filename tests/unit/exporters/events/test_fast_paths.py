"""The hot path's readings agree with the definitions they come from, on fuzzed corpora.

Decoding (`loads`: orjson, else `json`), timestamps (`parse_time`: `fromisoformat`, else the
RFC 3339 parse) and encoding (`encode`: orjson for plain JSON values, else `json`) are shortcuts
that must give the reference's result. Envelopes and usage data are each declared once, as a
msgspec `Struct`, and read twice (`schema.Definition`): by msgspec's typed decode, which stops at
the first problem, and by the listing, which words every problem. On a declaration of plain
constraints the two readings agree exactly; on the event definitions the typed reading accepts
only what the listing accepts, with the same result, and it accepts the common shape (else it is
no shortcut); every refused event gets a problem naming a field.
"""

from __future__ import annotations

import json
import math
import random
import string
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
import pytest
from msgspec import Meta

from aifinops.exporters.events import (
    GPU_SAMPLE_TYPE,
    USAGE_TYPE,
    EventError,
    decode_usage_event,
    encode,
    loads,
    make_event,
    parse_gpu_event,
    parse_usage,
    parse_usage_event,
)
from aifinops.exporters.events.envelope import (
    DEFAULT_MAX_FUTURE,
    ENVELOPE,
    _list_envelope,
    _parse_time_fully,
    parse_time,
    typed_envelope,
)
from aifinops.exporters.events.schema import Definition
from aifinops.exporters.events.usage import (
    DATA_FIELDS,
    TOKEN_SPEC,
    USAGE_EVENT,
    _SentData,
    _typed,
    _with_extra_fields,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
TYPES = frozenset({USAGE_TYPE})


def same(a, b) -> bool:
    """Equal values of equal types all the way down (1 is not 1.0; NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return a == b


# -- decoding ------------------------------------------------------------------------------------

NUMBERS = [
    "0",
    "-0",
    "-0.0",
    "1",
    "-1",
    "1.5",
    "1e5",
    "1E-7",
    "2.5e+3",
    "4.35e-320",
    "1.7976931348623157e308",
    "1e400",
    "-1e400",
    "123456789012345678",
    "-123456789012345678",
    "9223372036854775807",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
    "0.1234567890123456789",
    "NaN",
    "Infinity",
    "-Infinity",
    "01",
    "1.",
    ".5",
    "+1",
]
STRINGS = [
    '""',
    '"plain"',
    '"caf\u00e9 \u2603 \U0001f600"',
    '"\\u00e9\\n\\t\\"\\\\\\/"',
    '"\\ud83d\\ude00"',
    '"\\ud800"',
    '"\\udc00x"',
    '"tab\there"',
    '"a\u2028b"',
    '"1234567890123456789012345"',
]


def random_json(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    if depth > 3 or roll < 0.45:
        return rng.choice(NUMBERS + STRINGS + ["true", "false", "null"])
    if roll < 0.75:
        items = [
            f"{rng.choice(STRINGS)}:{random_json(rng, depth + 1)}" for _ in range(rng.randint(0, 4))
        ]
        if items and rng.random() < 0.1:
            items.append(items[0])  # a repeated key: the last one wins
        return "{" + ",".join(items) + "}"
    return "[" + ",".join(random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))) + "]"


def mutate(rng: random.Random, raw: bytes) -> bytes:
    choice = rng.randrange(7)
    if choice == 0 and raw:
        i = rng.randrange(len(raw))
        return raw[:i] + bytes([rng.randrange(256)]) + raw[i + 1 :]
    if choice == 1 and raw:
        return raw[: rng.randrange(len(raw))]
    if choice == 2:
        return b"\xef\xbb\xbf" + raw
    if choice == 3:
        return raw.decode("utf-8", "surrogatepass").encode("utf-16", "surrogatepass")
    if choice == 4:
        return b" \n\t" + raw + b"\r\n"
    if choice == 5:
        return raw + b"x"
    return raw


def test_loads_agrees_with_json_loads_on_a_fuzzed_corpus():
    rng = random.Random(5)
    accepted = 0
    for _ in range(20_000):
        raw = random_json(rng).encode("utf-8", "surrogatepass")
        if rng.random() < 0.3:
            raw = mutate(rng, raw)
        try:
            expected = ("ok", json.loads(raw))
        except (ValueError, UnicodeDecodeError) as exc:
            expected = (type(exc), str(exc))
        try:
            got = ("ok", loads(raw))
        except (ValueError, UnicodeDecodeError) as exc:
            got = (type(exc), str(exc))
        if expected[0] == "ok":
            accepted += 1
            assert got[0] == "ok" and same(got[1], expected[1]), raw
        else:
            assert got == expected, raw
    assert accepted > 10_000


def test_loads_reads_real_events_and_words_deep_nesting_as_a_decode_error():
    event = make_event(USAGE_TYPE, "gw", {"provider": "openai", "n": 2**70, "f": 1e300})
    assert same(loads(encode(event)), json.loads(encode(event)))
    with pytest.raises(json.JSONDecodeError, match="nested too deeply"):
        loads(b"[" * 100_000)
    assert loads(b'{"a": NaN}')["a"] != loads(b'{"a": NaN}')["a"]  # json accepts NaN


# -- timestamps ----------------------------------------------------------------------------------


def random_time(rng: random.Random) -> str:
    date = (
        f"{rng.choice([1, 1970, 2024, 2026, 9999]):04d}-{rng.randint(0, 13):02d}-"
        f"{rng.choice([1, 15, 28, 29, 30, 31, 32]):02d}"
    )
    clock = f"{rng.randint(0, 24):02d}:{rng.randint(0, 60):02d}:{rng.randint(0, 61):02d}"
    fraction = rng.choice(["", "", "." + "".join(rng.choices(string.digits, k=rng.randint(1, 10)))])
    zone = rng.choice(["Z", "z", "+00:00", "-00:00", "+05:30", "-23:59", "+24:00", "", "+0530"])
    text = date + rng.choice("TTTt x") + clock + fraction + zone
    if rng.random() < 0.1:
        i = rng.randrange(len(text))
        text = text[:i] + rng.choice("0٣:-.TZ \n") + text[i + 1 :]
    return text


def test_parse_time_agrees_with_the_full_rfc3339_parse():
    rng = random.Random(7)
    accepted = 0
    for _ in range(20_000):
        text = random_time(rng)
        try:
            expected = _parse_time_fully(text)
        except ValueError as exc:
            with pytest.raises(ValueError) as info:
                parse_time(text)
            assert str(info.value) == str(exc), text
            continue
        got = parse_time(text)
        assert got == expected and got.utcoffset() == expected.utcoffset(), text
        accepted += 1
    assert accepted > 2_000


# -- one declaration, two readings --------------------------------------------------------------


class Plain(msgspec.Struct, kw_only=True):
    """A declaration of plain constraints only: both readings must agree on it exactly."""

    n: Annotated[int, Meta(ge=1, le=5)]
    x: Annotated[float, Meta(ge=0)] | None = None
    s: Annotated[str, Meta(min_length=1, max_length=3)] = "a"
    lit: Literal["a", "b"] = "a"
    both: Annotated[int, Meta(ge=0)] | Annotated[float, Meta(le=1)] = 0
    obj: dict[str, Any] = {}
    gone: msgspec.UnsetType = msgspec.UNSET


VALUES = [
    None,
    0,
    1,
    5,
    6,
    -1,
    0.5,
    2.0,
    float("nan"),
    True,
    "",
    "a",
    "abcd",
    "b",
    {},
    [],
    {"k": 1},
]


def test_the_typed_decode_and_the_listing_read_a_declaration_alike():
    plain = Definition(Plain)
    rng = random.Random(3)
    accepted = 0
    for _ in range(20_000):
        obj = {"n": rng.choice([1, 3, 5])}
        for _ in range(rng.randint(0, 3)):
            field = rng.choice(["n", "x", "s", "lit", "both", "obj", "gone"])
            if rng.random() < 0.15:
                obj.pop(field, None)
            else:
                obj[field] = rng.choice(VALUES)
        problems: list[tuple[str, str]] = []
        values = plain.check(obj, lambda f, reason, found=problems: found.append((f, reason)))
        typed = plain.convert(obj)
        # The listing reads an explicit null of an optional field as absent; msgspec does not.
        lenient = any(obj.get(f) is None and f in obj for f in ("s", "lit", "both", "obj"))
        if typed is not None:
            accepted += 1
            assert not problems, (obj, problems)
            assert msgspec.structs.asdict(typed) == {**msgspec.structs.asdict(Plain(n=1)), **values}
        elif not lenient:
            assert problems and all(field in obj or field == "n" for field, _ in problems), obj
    assert accepted > 3_000


# -- envelopes -----------------------------------------------------------------------------------


class Text(str):
    """A str subclass: the typed reading may leave it to the listing."""


def random_envelope(rng: random.Random) -> object:
    event = make_event(
        USAGE_TYPE,
        "gw",
        {"provider": "openai"},
        event_id=str(rng.randint(0, 9)),
        time=NOW - timedelta(seconds=rng.choice([0, 1, 3600])),
    )
    for _ in range(rng.choice([0, 0, 1, 2, 3])):
        field = rng.choice(
            ["specversion", "id", "source", "type", "time", "data", "subject", "data_base64"]
        )
        event[field] = rng.choice(
            [
                None,
                "",
                "1.0",
                "0.3",
                "x" * 257,
                "y" * 513,
                USAGE_TYPE,
                GPU_SAMPLE_TYPE,
                Text("gw"),
                7,
                [],
                {},
                {"a": 1},
                random_time(rng),
                (NOW + timedelta(minutes=rng.choice([4, 6]))).isoformat(),
                "2026-11-28T11:59:59.123456789Z",
            ]
        )
        if rng.random() < 0.2:
            del event[field]
    if rng.random() < 0.03:
        return rng.choice([[event], "event", None, 3])
    return event


ENVELOPE_FIELDS = {"specversion", "id", "source", "type", "time", "data", "subject", "data_base64"}


def test_the_typed_envelope_accepts_only_what_the_listing_accepts_and_alike():
    rng = random.Random(11)
    accepted = 0
    for _ in range(20_000):
        obj = random_envelope(rng)
        types = rng.choice([TYPES, None, frozenset({GPU_SAMPLE_TYPE})])
        event = ENVELOPE.convert(obj) if type(obj) is dict else None
        fast = (
            typed_envelope(event, obj["data"], types, NOW, DEFAULT_MAX_FUTURE)
            if event is not None
            else None
        )
        try:
            full = _list_envelope(obj, types, NOW, DEFAULT_MAX_FUTURE)
        except EventError as exc:
            assert fast is None, obj
            assert exc.problems
            assert all(p.field in ENVELOPE_FIELDS or p.field == "" for p in exc.problems), obj
            continue
        if fast is not None:
            assert fast == full and fast.time.utcoffset() == full.time.utcoffset(), obj
            accepted += 1
    assert accepted > 5_000


# -- usage data ----------------------------------------------------------------------------------

LABELS = ["ml", "", "a team", "__other__", "x" * 129, "web/app-1", Text("ml"), 5, None, "ml\n"]
PROVIDERS = ["openai", "OpenAI", "google", "gcp.gemini", "Open AI", "", None, 3, "x-ai", "aws"]
MODELS = ["gpt-4o", "claude-sonnet-4-5", "", "__other__", "m" * 201, "bad model", None, 1.5]
TOKENS = [0, 1, 100, 10**12, 10**12 + 1, -1, None, True, 5.0, 5.5, "5", 2**70, float("nan")]
COSTS = [None, 0, 0.1, 1e-30, 2.5, -1, 10**9, 10**9 + 1, float("inf"), float("nan"), "0.3"]
WILD = {
    "provider": PROVIDERS,
    "model": MODELS,
    "team": LABELS,
    "app": LABELS,
    "input_tokens": TOKENS,
    "output_tokens": TOKENS,
    "cache_read_tokens": TOKENS,
    "cache_write_tokens": TOKENS,
    "reasoning_tokens": TOKENS,
    "status": ["ok", "error", "failed", None, 1, ["ok"]],
    "cost_usd": [*COSTS, Decimal("0.25"), True],
    "inptu_tokens": [5],
    "modle": ["x"],
    "api_flavor": ["chat"],
    "response": [None, {"usage": {"prompt_tokens": 1}}, "text"],
}


def random_usage(rng: random.Random) -> dict:
    """A usage `data` of the common shape, half the time with one to three odd values."""
    data: dict = {
        "provider": rng.choice(["openai", "anthropic", "OpenAI", "google"]),
        "model": rng.choice(["gpt-4o", "claude-sonnet-4-5", "m@1"]),
        "team": rng.choice(["ml", "web", ""]),
        "app": rng.choice(["chat", "search", ""]),
        "input_tokens": rng.choice([1000, 50, 0]),
        "output_tokens": rng.choice([200, 7, 0]),
    }
    for name in ("cache_read_tokens", "cache_write_tokens", "reasoning_tokens"):
        if rng.random() < 0.5:
            data[name] = rng.choice([0, 0, 3, 40])
    if rng.random() < 0.2:
        data["status"] = rng.choice(["ok", "error"])
    if rng.random() < 0.2:
        data["cost_usd"] = rng.choice([0, 0.1, 2.5, 10**9])
    if rng.random() < 0.1:
        data[rng.choice(["region", "gateway", "trace_id"])] = "x"
    if rng.random() < 0.5:
        for _ in range(rng.randint(1, 3)):
            field = rng.choice(list(WILD))
            if field in data and rng.random() < 0.2:
                del data[field]
            else:
                data[field] = rng.choice(WILD[field])
    return data


def listed(event: dict) -> tuple:
    """The listing's verdict on a usage event: the event, or the problems it names."""
    from aifinops.exporters.events.envelope import parse_event
    from aifinops.exporters.events.usage import _USAGE_TYPES, UsageEvent

    try:
        return ("ok", UsageEvent(*parse_event(event, _USAGE_TYPES, parse_usage, now=NOW)))
    except EventError as exc:
        return ("refused", [(p.field, p.reason) for p in exc.problems])


def typed_reading(event: dict) -> object:
    """What `parse_usage_event`'s typed reading makes of a decoded event (None: it declines)."""
    try:
        typed = msgspec.convert(event, USAGE_EVENT.cls)
    except msgspec.ValidationError:
        typed = _with_extra_fields(event)
    return None if typed is None else _typed(typed, event["data"], NOW, DEFAULT_MAX_FUTURE)


def test_the_typed_usage_reading_accepts_only_what_the_listing_accepts_and_alike():
    rng = random.Random(13)
    accepted = 0
    for i in range(20_000):
        data = random_usage(rng)
        event = make_event(USAGE_TYPE, "gw", data, event_id=str(i), time=NOW)
        # Before and after the listing has seen the event (it remembers extra fields).
        fast = typed_reading(event) if i % 2 else None
        verdict, full = listed(event)
        # The bridge's reading of the same event from its bytes (`data` as sent, read lazily).
        typed = USAGE_EVENT.convert(event)
        raw_fast = None
        if typed is not None and not isinstance(data.get("cost_usd"), Decimal):  # not JSON
            raw_fast = _typed(typed, _SentData(encode(event)), NOW, DEFAULT_MAX_FUTURE)
        if verdict == "refused":
            assert fast is None and raw_fast is None, data
            assert typed_reading(event) is None, data
            # Every problem names a declared field, or a near-miss of one the event holds.
            assert full and all(
                field.split(".")[1] in DATA_FIELDS or field.split(".")[1] in data
                for field, _ in full
            ), (data, full)
            continue
        for reading in (fast, typed_reading(event), raw_fast):
            if reading is not None:
                assert reading == full, data
                assert type(reading.usage.cost_usd) is type(full.usage.cost_usd)
                accepted += 1
        assert parse_usage_event(event, now=NOW) == full
    assert accepted > 10_000


def test_a_value_its_declaration_refuses_gets_a_problem_naming_its_field():
    base = {"provider": "openai", "model": "gpt-4o", "team": "ml", "app": "chat"}
    base.update(input_tokens=100, cache_read_tokens=10, output_tokens=20, reasoning_tokens=5)
    # A refused count may break a rule across counts instead (cached <= input, reasoning <= output).
    across = {
        "input_tokens": "data.cache_read_tokens",
        "cache_write_tokens": "data.cache_read_tokens",
        "output_tokens": "data.reasoning_tokens",
    }
    refused = 0
    for field, wild in WILD.items():
        for value in wild:
            data = {**base, field: value}
            verdict, found = listed(make_event(USAGE_TYPE, "gw", data, event_id="e", time=NOW))
            if verdict == "ok":
                continue
            refused += 1
            fields = {f for f, _ in found}
            assert f"data.{field}" in fields or across.get(field) in fields, (field, value, found)
    assert refused > 60


def test_decoding_from_bytes_is_parse_usage_event_of_loads():
    """The bridge's one-pass decode gives what `loads` then `parse_usage_event` give: the same
    event, the same problems, or the same JSON error (NaN, big and too-long integers, lone
    surrogates, BOMs and broken bytes all included)."""
    rng = random.Random(19)

    def outcome(call, raw):
        try:
            return ("ok", call(raw))
        except EventError as exc:
            return ("event", [(p.field, p.reason) for p in exc.problems])
        except (ValueError, UnicodeDecodeError) as exc:
            return (type(exc), str(exc))

    odd = [
        b', "nan": NaN',
        b', "big": 123456789012345678901234567890',
        b', "huge": ' + b"9" * 5000,
        b', "subject": "\\ud800"',
        b', "note": "\\ud83d\\ude00"',
        b', "id": "again"',
        b', "bad": "x\\q"',
        b', "tab": "a\tb"',
        b', "num": 01',
        b', "deep": ' + b"[" * 3000 + b"]" * 3000,
        b', "overlong": "\xc0\xaf"',
    ]
    decoded = 0
    for i in range(5_000):
        data = random_usage(rng)
        try:
            raw = encode(make_event(USAGE_TYPE, "gw", data, event_id=str(i), time=NOW))
        except (TypeError, ValueError):  # Decimal, NaN: not JSON
            continue
        if rng.random() < 0.1:
            raw = mutate(rng, raw)
        if rng.random() < 0.3:
            raw = raw[:-1] + rng.choice(odd) + b"}"
        got = outcome(lambda r: decode_usage_event(r, now=NOW), raw)
        want = outcome(lambda r: parse_usage_event(loads(r), now=NOW), raw)
        assert got == want, raw
        decoded += got[0] == "ok"
    assert decoded > 1_500


def test_token_fields_and_their_usage_keys_come_from_the_declaration():
    assert [(f.name, f.usage_key, f.required) for f in TOKEN_SPEC] == [
        ("input_tokens", "input_tokens", True),
        ("cache_read_tokens", "cache_read_tokens", False),
        ("cache_write_tokens", "cache_write_tokens", False),
        ("output_tokens", "output_tokens", True),
        ("reasoning_tokens", "output_reasoning_tokens", False),
    ]


def test_the_problems_the_docs_quote_are_worded_as_quoted():
    data = {"provider": "openai", "model": "gpt-4o", "team": "ML team", "app": "chat"}
    data.update(input_tokens=5000, cache_read_tokens=9000, output_tokens=1)
    event = make_event(USAGE_TYPE, "gw", data, event_id="e", time=NOW)
    event["time"] = "2031-01-01T00:00:00Z"
    with pytest.raises(EventError) as info:
        parse_usage_event(event, now=NOW)
    assert {p.field: p.reason for p in info.value.problems} == {
        "time": "more than 0:05:00 in the future (2031-01-01T00:00:00Z)",
        "data.team": "must be at most 128 characters of [A-Za-z0-9._:/@-] (got 'ML team')",
        "data.cache_read_tokens": "cache_read_tokens + cache_write_tokens (9000) exceed "
        "input_tokens (5000), which counts all input tokens, cached ones included",
    }


def test_parse_usage_event_is_the_same_through_either_reading():
    data = {"provider": "openai", "model": "gpt-4o", "team": "t", "app": "a"}
    data.update(input_tokens=10, cache_read_tokens=4, output_tokens=2, cost_usd=0.5, gateway="x")
    event = make_event(USAGE_TYPE, "gw", data, event_id="e1", time=NOW)
    # An extra field (`gateway`) leaves the event to the listing; without it msgspec reads it.
    first = parse_usage_event(event, now=NOW)
    plain = {**event, "data": {k: v for k, v in data.items() if k != "gateway"}}
    assert USAGE_EVENT.convert(event) is None and USAGE_EVENT.convert(plain) is not None
    assert parse_usage_event(plain, now=NOW).usage == first.usage
    assert decode_usage_event(encode(plain), now=NOW).usage == first.usage
    assert first.usage.usage == {
        "input_tokens": 10,
        "cache_read_tokens": 4,
        "cache_write_tokens": 0,
        "output_tokens": 2,
        "output_reasoning_tokens": 0,
    }
    assert first.usage.cost_usd == Decimal("0.5")
    for checked in (event, plain):
        checked["data"]["cache_read_tokens"] = 11
        with pytest.raises(EventError) as info:
            parse_usage_event(checked, now=NOW)
        assert [p.field for p in info.value.problems] == ["data.cache_read_tokens"]


# -- encoding ------------------------------------------------------------------------------------


def test_encode_writes_what_json_dumps_writes():
    reference = {"separators": (",", ":"), "ensure_ascii": False}
    event = make_event(USAGE_TYPE, "gw", {"team": "caf\u00e9", "n": [1, 2.5, None, True]})
    assert encode(event) == json.dumps(event, **reference).encode()
    # What orjson would write differently, or not at all, is json's to write (or refuse).
    odd = {"nan": float("nan"), "big": 2**70, 1: "int key", "t": (1, 2)}
    assert encode(odd) == json.dumps(odd, **reference).encode()
    assert encode({"x": 1e16}) in (b'{"x":1e16}', b'{"x":1e+16}')
    with pytest.raises(TypeError):
        encode({"id": uuid.uuid4()})
    with pytest.raises(UnicodeEncodeError):
        encode({"s": "\ud800"})
    rng = random.Random(17)
    for _ in range(2_000):
        try:
            value = json.loads(random_json(rng))
        except ValueError:
            continue
        try:
            expected = json.dumps(value, **reference).encode()
        except UnicodeEncodeError:
            continue
        assert same(json.loads(encode(value)), json.loads(expected))


# -- gpu events ----------------------------------------------------------------------------------

GPU = {
    "node": "n1",
    "gpu": 0,
    "uuid": "GPU-1",
    "model": "NVIDIA H100 80GB HBM3",
    "utilization_ratio": 0.5,
    "memory_used_bytes": 1,
    "memory_total_bytes": 2,
    "power_watts": 100,
    "hourly_cost_usd": 3.6,
    "interval_seconds": 10,
}


def test_parse_gpu_event_checks_envelope_and_data_together():
    event = make_event(GPU_SAMPLE_TYPE, "gpu/n1", GPU, event_id="g1", time=NOW)
    parsed = parse_gpu_event(event, now=NOW)
    assert parsed.envelope.identity == ("gpu/n1", "g1")
    assert parsed.envelope.time == NOW
    assert parsed.sample.hourly_cost_usd == Decimal("3.6")
    bad = make_event(USAGE_TYPE, "gpu/n1", {**GPU, "gpu": -1}, event_id="g2", time=NOW)
    bad["time"] = "yesterday"
    with pytest.raises(EventError) as info:
        parse_gpu_event(bad, now=NOW)
    assert [p.field for p in info.value.problems] == ["type", "time", "data.gpu"]
    with pytest.raises(EventError) as info:
        parse_gpu_event({"specversion": "1.0", "data": []}, now=NOW)
    assert [p.field for p in info.value.problems] == ["id", "source", "type", "data"]


def test_the_bridge_dead_letters_json_nested_too_deeply_for_the_decoder():
    from aifinops.bridge.pipeline import MessageProcessor
    from aifinops.bridge.records import InboundRecord
    from aifinops.exporters.config import LLMConfig, TopicsConfig
    from aifinops.exporters.gpu import GPUAggregator
    from aifinops.exporters.llm import DedupeWindow, UsageIngest

    record = InboundRecord(TopicsConfig().usage.name, 0, 0, None, b"[" * 200_000, [])
    processor = MessageProcessor(
        UsageIngest.from_config(LLMConfig(), sources=("kafka",)),
        GPUAggregator(),
        DedupeWindow(),
        TopicsConfig(),
        "here",
        1 << 20,
    )
    batch = processor.process([record])
    assert [reason for _record, reason in batch.invalid] == [
        "value: not valid JSON: nested too deeply: line 1 column 1 (char 0)"
    ]
