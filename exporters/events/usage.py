"""The `io.aifinops.llm.usage.v1` event: its `data` fields, their one definition and the usage record.

One LLM API call arrives either with its token counts (`input_tokens`, `cache_read_tokens`,
`cache_write_tokens`, `output_tokens`, `reasoning_tokens`) or with the provider's `response` (or
just its usage part) plus `api_flavor`, which `providers.extract_response` turns into the same
counts; everything downstream sees `input_tokens` as *all* input tokens. Provider names and
response shapes live in `providers.py`, not here.

The two forms are declared once each, as msgspec Structs (`TokenUsage`, `ResponseUsage`, sharing
their common fields), and `UsageCloudEvent` is the envelope with token-count `data`. Both readings
come from those declarations (`schema.py`): `parse_usage_event` (what the HTTP ingest and the
Kafka bridge call) and `decode_usage_event` (the bridge, from the message bytes) build the Structs
with msgspec, then apply the rules no declaration can state (`_typed`: provider names, token
counts across fields, the exact cost); an event msgspec refuses, or one those rules question, is
checked field by field against the same declarations by `parse_usage`, which applies the same
rules and raises one `EventError` listing every `Problem(field, reason)`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Annotated, Any, Literal, NamedTuple

from msgspec import Meta, Struct, ValidationError
from msgspec import convert as _convert

from .codec import EventError, Problem, loads, plain_numbers
from .envelope import (
    DEFAULT_MAX_FUTURE,
    SPECVERSION,
    USAGE_TYPE,
    CloudEvent,
    Envelope,
    parse_event,
    typed_envelope,
)
from .providers import (
    MEMO_LIMIT,
    SEEN_PROVIDERS,
    extract_response,
    prices_provider_id,
    provider_label,
)
from .schema import Definition, Report


class TokenField(NamedTuple):
    """One token count of usage `data`: its field, its genai-prices usage key, and whether an
    event must give it (an optional one not given is 0)."""

    name: str
    usage_key: str
    required: bool


# A sanity bound: no single call uses a trillion tokens; a value that large is a unit mistake.
MAX_TOKENS = 10**12
MAX_COST_USD = Decimal(10**9)
OTHER = "__other__"
# The four disjoint token types of `aifinops_llm_tokens_total` and `aifinops_llm_cost_usd_total`.
TOKEN_TYPES = ("input", "cache_read", "cache_write", "output")
STATUSES = ("ok", "error")

_MODEL_RULE = (
    "must be 1-200 characters of [A-Za-z0-9._:/@+=~-] starting with a letter, digit, @ or ~"
)
_ATTRIBUTION_RULE = "must be at most 128 characters of [A-Za-z0-9._:/@-]"
_TOKENS_RULE = "must be a non-negative integer (got {value!r})"

# The declared types of usage `data` fields. Label patterns are `extra["pattern"]`, matched once per
# distinct value (see `schema.py`).
# `__other__` is the value folded label values are counted under: no event may claim it.
_RESERVED = {OTHER: f"{OTHER} is reserved for folded label values"}
Model = Annotated[
    str,
    Meta(
        extra={
            "pattern": r"[A-Za-z0-9@~][A-Za-z0-9._:/@+=~-]{0,199}",
            "rule": _MODEL_RULE + " (got {shown!r})",
            "reserved": _RESERVED,
        },
    ),
]
Attribution = Annotated[
    str,
    Meta(
        extra={
            "pattern": r"[A-Za-z0-9._:/@-]{0,128}",
            "rule": _ATTRIBUTION_RULE + " (got {shown!r})",
            "reserved": _RESERVED,
        },
    ),
]
# A token count: an integer, or a float that is a whole number (`_whole` checks that).
Tokens = Annotated[
    Annotated[int, Meta(ge=0, le=MAX_TOKENS)] | Annotated[float, Meta(ge=0, le=MAX_TOKENS)],
    Meta(extra={"type_rule": _TOKENS_RULE, "rule": _TOKENS_RULE}),
]


def _usage_key(key: str) -> Meta:
    return Meta(extra={"usage_key": key})


class _UsageFields(Struct, kw_only=True):
    """The fields both forms of usage `data` share."""

    provider: str  # either naming scheme; `providers.provider_label` normalises it
    model: Annotated[
        Model, Meta(extra={"required": "required (or a response that names its model)"})
    ]
    team: Attribution = ""
    app: Attribution = ""
    status: Annotated[
        Literal["ok", "error"],
        Meta(extra={"type_rule": "must be one of ok, error (got {value!r})", "null": False}),
    ] = "ok"
    # A JSON number (or a decimal string): `_cost` reads it exactly as written.
    cost_usd: Any = None


class TokenUsage(_UsageFields, kw_only=True, forbid_unknown_fields=True):
    """The definition of usage `data` with token counts, in `UsageRecord` order; each count's
    genai-prices usage key is part of its declaration. Unknown fields are refused by the typed
    decode only: the listing allows them, unless one is a near-miss of a known field."""

    input_tokens: Annotated[Tokens, _usage_key("input_tokens")]
    cache_read_tokens: Annotated[Tokens, _usage_key("cache_read_tokens")] = 0
    cache_write_tokens: Annotated[Tokens, _usage_key("cache_write_tokens")] = 0
    output_tokens: Annotated[Tokens, _usage_key("output_tokens")]
    reasoning_tokens: Annotated[Tokens, _usage_key("output_reasoning_tokens")] = 0


class ResponseUsage(_UsageFields, kw_only=True):
    """The definition of usage `data` carrying the provider's response instead of token counts;
    the model may come from the response."""

    model: Model | None = None  # type: ignore[assignment]
    response: Annotated[
        dict[str, Any],
        Meta(extra={"type_rule": "must be a JSON object (the provider's response or its usage)"}),
    ]
    api_flavor: Any = None


class UsageCloudEvent(CloudEvent, kw_only=True):
    """The definition of a usage event with token counts: the envelope and `TokenUsage` data."""

    data: TokenUsage  # type: ignore[assignment]


class _SentTokenUsage(TokenUsage, kw_only=True, forbid_unknown_fields=False):
    """`TokenUsage` as msgspec reads it from an already decoded event, whose `data` keys
    `parse_usage_event` has checked itself: extra fields the listing allows pass."""


class _SentUsageCloudEvent(CloudEvent, kw_only=True):
    data: _SentTokenUsage  # type: ignore[assignment]


TOKEN_USAGE = Definition(TokenUsage)
RESPONSE_USAGE = Definition(ResponseUsage)
USAGE_EVENT = Definition(UsageCloudEvent)
_SENT_USAGE_EVENT = Definition(_SentUsageCloudEvent)

# The token fields of usage `data`, in `UsageRecord` order, read from `TokenUsage`: the one list
# the provider-response normalisation and pricing's usage keys are derived from.
TOKEN_SPEC = tuple(
    TokenField(f.name, f.extra["usage_key"], f.required)
    for f in TOKEN_USAGE.fields
    if "usage_key" in f.extra
)
TOKEN_FIELDS = tuple(f.name for f in TOKEN_SPEC)
# The genai-prices usage keys of the token fields, in `TOKEN_FIELDS` order.
STANDARD_USAGE_KEYS = tuple(f.usage_key for f in TOKEN_SPEC)
_INPUT, _CACHE_READ, _CACHE_WRITE, _OUTPUT, _REASONING = STANDARD_USAGE_KEYS
DATA_FIELDS = TOKEN_USAGE.names | RESPONSE_USAGE.names


class UsageRecord(NamedTuple):
    """One validated LLM call: who, what, how many tokens (all input/output included) and its cost.

    `usage` holds the counts under genai-prices usage keys (`input_tokens`, `cache_read_tokens`,
    `output_reasoning_tokens`, and for provider responses any finer key such as
    `cache_write_1h_tokens` or `input_audio_tokens`); pricing reads it so that a detailed response
    is priced as finely as the catalogue allows. `detail` is that mapping for a provider response,
    None for token fields (whose usage is the five counts under `STANDARD_USAGE_KEYS`).
    """

    provider: str
    model: str
    team: str
    app: str
    status: Literal["ok", "error"]
    input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cost_usd: Decimal | None
    detail: Mapping[str, int | Decimal] | None = None

    @property
    def usage(self) -> Mapping[str, int | Decimal]:
        """The counts under genai-prices usage keys."""
        if self.detail is not None:
            return self.detail
        return MappingProxyType(
            {
                _INPUT: self.input_tokens,
                _CACHE_READ: self.cache_read_tokens,
                _CACHE_WRITE: self.cache_write_tokens,
                _OUTPUT: self.output_tokens,
                _REASONING: self.reasoning_tokens,
            }
        )

    @property
    def counts(self) -> tuple[int, int, int, int, int]:
        """input, cache_read, cache_write, output and reasoning tokens (`STANDARD_USAGE_KEYS`)."""
        return (
            self.input_tokens,
            self.cache_read_tokens,
            self.cache_write_tokens,
            self.output_tokens,
            self.reasoning_tokens,
        )

    @property
    def prices_provider(self) -> str | None:
        """The genai-prices provider id this call is priced with."""
        return prices_provider_id(self.provider)

    @property
    def token_split(self) -> tuple[int, int, int, int]:
        """Tokens per `TOKEN_TYPES` entry: input (neither read from nor written to the cache),
        cache_read, cache_write, output. Disjoint; they sum to all tokens of the call."""
        return (
            self.input_tokens - self.cache_read_tokens - self.cache_write_tokens,
            self.cache_read_tokens,
            self.cache_write_tokens,
            self.output_tokens,
        )


class UsageEvent(NamedTuple):
    """A validated usage CloudEvent: its envelope (identity, time) and its usage record."""

    envelope: Envelope
    usage: UsageRecord

    @property
    def identity(self) -> tuple[str, str]:
        """`(source, id)`: the dedupe key."""
        return self.envelope.identity

    @property
    def time(self) -> datetime:
        """When the call happened (receipt time when the event had no `time`); prices depend on it."""
        return self.envelope.time

    @property
    def key(self) -> str:
        """The Kafka message key of docs/architecture.md for `ai-api-costs`: `team/app`."""
        return f"{self.usage.team}/{self.usage.app}"

    def with_team(self, team: str) -> UsageEvent:
        """The same event counted for `team` (an authenticated credential's team wins)."""
        if team == self.usage.team:
            return self
        return UsageEvent(self.envelope, self.usage._replace(team=team))

    def to_cloudevent(self) -> dict[str, Any]:
        """The event as it is handed on (to Kafka): the original envelope and data, with `time`
        made explicit and `team` set to the team it was counted for, so every consumer prices and
        attributes it the same way."""
        env = self.envelope
        event: dict[str, Any] = {
            "specversion": SPECVERSION,
            "id": env.id,
            "source": env.source,
            "type": env.type,
            "time": env.time.isoformat().replace("+00:00", "Z"),
            "datacontenttype": "application/json",
            "data": {**env.data, "team": self.usage.team},
        }
        if env.subject is not None:
            event["subject"] = env.subject
        return event


def parse_usage_event(
    obj: Any,
    *,
    now: datetime | None = None,
    max_future: timedelta = DEFAULT_MAX_FUTURE,
) -> UsageEvent:
    """Validate a decoded `io.aifinops.llm.usage.v1` CloudEvent, envelope and data together.

    Raises `EventError` listing every problem (fields like `time` or `data.input_tokens`).
    """
    if now is None:
        now = datetime.now(UTC)
    if type(obj) is dict:
        # The typed reading: msgspec builds `UsageCloudEvent`, then the rules beyond it.
        try:
            event: UsageCloudEvent | _SentUsageCloudEvent | None = _convert(obj, UsageCloudEvent)
        except (ValidationError, RecursionError):
            event = _with_extra_fields(obj)
        if event is not None and (typed := _typed(event, obj["data"], now, max_future)):
            return typed
    checked, parsed = parse_event(obj, _USAGE_TYPES, parse_usage, now=now, max_future=max_future)
    return UsageEvent(checked, parsed)


def decode_usage_event(
    raw: bytes,
    *,
    now: datetime | None = None,
    max_future: timedelta = DEFAULT_MAX_FUTURE,
) -> UsageEvent:
    """`parse_usage_event(loads(raw))`, straight from the message bytes: msgspec decodes and
    checks them into `UsageCloudEvent` in one pass, and anything it refuses is read by `loads`
    and listed. Raises what `loads` raises for bytes that are not JSON (`json.JSONDecodeError`,
    `UnicodeDecodeError`, `ValueError` for an integer too long to convert), else `EventError`.
    """
    if now is None:
        now = datetime.now(UTC)
    # msgspec skips the fields it does not declare without checking all that `loads` checks:
    # bytes that are not UTF-8, an integer too long to convert (over 4,300 digits). `loads` must
    # see those, so that they are refused alike.
    if (len(raw) <= _MAX_INT_DIGITS or plain_numbers(raw)) and (raw.isascii() or _utf8(raw)):
        event = USAGE_EVENT.decode(raw)
        if event is not None:
            typed = _typed(event, _SentData(raw), now, max_future)
            if typed is not None:
                return typed
    return parse_usage_event(loads(raw), now=now, max_future=max_future)


def _with_extra_fields(obj: dict[str, Any]) -> _SentUsageCloudEvent | None:
    """The typed reading of a decoded event whose `data` has fields `TokenUsage` does not
    declare: allowed once the listing has found them no near-miss of a known one
    (`_EXTRA_FIELDS`); any other is the listing's to judge (None)."""
    data = obj.get("data")
    if type(data) is not dict:
        return None
    extra = data.keys() - _TOKEN_FIELDS_DECLARED
    if not extra or not extra <= _EXTRA_FIELDS:  # no extra field: msgspec refused something else
        return None
    return _SENT_USAGE_EVENT.convert(obj)


def _typed(
    event: UsageCloudEvent | _SentUsageCloudEvent,
    data: Mapping[str, Any],
    now: datetime,
    max_future: timedelta,
) -> UsageEvent | None:
    """The usage event of what msgspec built, once the rules beyond the declarations hold (the
    label patterns and reserved values, `_count_problems`, the provider's name, `_cost`); None
    when one does not, or a count is a float, for `parse_usage` to word or convert. `data` is
    the event's `data` as sent, for `Envelope.data`."""
    usage = event.data
    inp = usage.input_tokens
    cache_read = usage.cache_read_tokens
    cache_write = usage.cache_write_tokens
    out = usage.output_tokens
    reasoning = usage.reasoning_tokens
    if (
        type(inp) is not int
        or type(cache_read) is not int
        or type(cache_write) is not int
        or type(out) is not int
        or type(reasoning) is not int
        or _count_problems(inp, cache_read, cache_write, out, reasoning)
        or not TOKEN_USAGE.patterns_ok(usage)
    ):
        return None
    provider = SEEN_PROVIDERS.get(usage.provider) or provider_label(usage.provider, _ignore)
    cost = usage.cost_usd
    if provider is None or (cost is not None and (cost := _cost(cost, _ignore)) is None):
        return None
    envelope = typed_envelope(event, data, _USAGE_TYPES, now, max_future)
    if envelope is None:
        return None
    record = _new(
        UsageRecord,
        (
            provider,
            usage.model,
            usage.team,
            usage.app,
            usage.status,
            inp,
            cache_read,
            cache_write,
            out,
            reasoning,
            cost,
            None,
        ),
    )
    return _new(UsageEvent, (envelope, record))


def _utf8(raw: bytes) -> bool:
    """Whether `raw` is valid UTF-8 (what `loads` requires of every byte)."""
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True


class _SentData(Mapping[str, Any]):
    """The `data` of an event read straight from its bytes, as it was sent (extension fields
    and all): decoded from them again only when asked for (the bridge never asks)."""

    __slots__ = ("_data", "_raw")

    def __init__(self, raw: bytes) -> None:
        self._raw = raw
        self._data: Mapping[str, Any] | None = None

    def _load(self) -> Mapping[str, Any]:
        if self._data is None:
            self._data = loads(self._raw)["data"]
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())

    def __repr__(self) -> str:
        return repr(self._load())


def _ignore(_field: str, _reason: str) -> None:
    """The problem report of the typed path: a problem makes it hand the event to the listing."""


def _count_problems(
    inp: int, cache_read: int, cache_write: int, out: int, reasoning: int
) -> tuple[tuple[str, str], ...]:
    """The rules across token counts, as `(field, reason)`: cached tokens are part of the input
    tokens, reasoning tokens part of the output tokens."""
    if cache_read + cache_write <= inp and reasoning <= out:
        return ()
    found = []
    if cache_read + cache_write > inp:
        found.append(
            (
                "cache_read_tokens",
                f"cache_read_tokens + cache_write_tokens ({cache_read + cache_write}) exceed "
                f"input_tokens ({inp}), which counts all input tokens, cached ones included",
            )
        )
    if reasoning > out:
        found.append(
            (
                "reasoning_tokens",
                f"reasoning_tokens ({reasoning}) exceed output_tokens ({out}), which counts "
                "all output tokens, reasoning included",
            )
        )
    return tuple(found)


def _whole(value: int | float) -> int | None:
    """A token count as an integer: a float only when it is a whole number (`5.0`)."""
    if isinstance(value, int):
        return value
    return int(value) if value.is_integer() else None


def parse_usage(data: Mapping[str, Any], *, prefix: str = "data") -> UsageRecord:
    """Validate the `data` of a usage event against its declaration (`TokenUsage`, or
    `ResponseUsage` when it carries a `response`); raise `EventError` listing every problem."""
    problems: list[Problem] = []

    def problem(name: str, reason: str) -> None:
        problems.append(Problem(f"{prefix}.{name}", reason))

    response = data.get("response")
    form = TOKEN_USAGE if response is None else RESPONSE_USAGE
    given = [f for f in TOKEN_FIELDS if f in data] if response is not None else []

    def checked(name: str, reason: str) -> None:
        # Both forms at once is the problem with `response`, whatever it holds.
        if not (given and name == "response"):
            problem(name, reason)

    values = form.check(data, checked)
    for key in data:
        if key not in DATA_FIELDS and key not in _EXTRA_FIELDS:
            # Extra fields are allowed (a gateway may add its own); a near-miss of a known field
            # is a typo whose value would otherwise be silently ignored.
            close = difflib.get_close_matches(str(key), DATA_FIELDS, n=1, cutoff=0.8)
            if close:
                problem(str(key), f"unknown field (did you mean {close[0]}?)")
            elif type(key) is str and len(_EXTRA_FIELDS) < MEMO_LIMIT:
                _EXTRA_FIELDS.add(key)
    provider = values.get("provider")
    if provider is not None:
        provider = provider_label(provider, problem)
    model = values.get("model")
    counts: list[int | None] = []
    detail: Mapping[str, int | Decimal] | None = None
    if response is not None:
        if given:
            problem("response", f"give either response or the token fields, not both ({given[0]})")
        elif "response" in values and provider is not None:
            extracted = extract_response(
                response, provider, data.get("api_flavor"), problem, _NAME_KEYS, MAX_TOKENS
            )
            if extracted is not None:
                response_model, found, usage = extracted
                counts = [found[name] for name in TOKEN_FIELDS]
                detail = MappingProxyType(usage)
                if response_model is not None:
                    # The response names the model that ran: it must be a valid `model` too.
                    reason = RESPONSE_USAGE.reason("model", response_model)
                    if reason is None:
                        model = response_model
                    else:
                        problem("response.model", reason)
                        model = None
        named = (f"{prefix}.model", f"{prefix}.response.model")
        if model is None and not any(p.field in named for p in problems):
            problem("model", "required (or a response that names its model)")
    else:
        if "api_flavor" in data:
            problem("api_flavor", "only meaningful with response")
        for name in TOKEN_FIELDS:
            value = values.get(name)
            whole = None if value is None else _whole(value)
            if value is not None and whole is None:
                problem(name, _TOKENS_RULE.format(value=value))
            counts.append(whole)
    team, app = values.get("team", ""), values.get("app", "")
    cost = _cost(data.get("cost_usd"), problem)
    known = [c for c in counts if c is not None]
    if len(known) == len(TOKEN_FIELDS):
        for name, reason in _count_problems(*known):
            problem(name, reason)
    if problems:
        raise EventError(form.sort(problems, f"{prefix}."))
    # Every way to a missing part reports a problem.
    assert provider is not None and model is not None and len(known) == len(TOKEN_FIELDS)
    inp, cache_read, cache_write, out, reasoning = known
    return UsageRecord(
        provider,
        model,
        team,
        app,
        values["status"],
        inp,
        cache_read,
        cache_write,
        out,
        reasoning,
        cost,
        detail,
    )


_USAGE_TYPES = frozenset((USAGE_TYPE,))
_NAME_KEYS = tuple((f.name, f.usage_key) for f in TOKEN_SPEC)
# Extra `data` fields found to be no near-miss of a known one (a gateway's own fields), so that
# difflib looks at each one once; bounded, since field names are client input.
_EXTRA_FIELDS: set[str] = set()
_TOKEN_FIELDS_DECLARED = TOKEN_USAGE.names
_new = tuple.__new__
# Python converts integers of at most this many digits (CVE-2020-10735).
_MAX_INT_DIGITS = 4300


def _cost(value: Any, problem: Report) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        problem("cost_usd", f"must be a number or null (got {type(value).__name__})")
        return None
    if isinstance(value, float) and not math.isfinite(value):
        problem("cost_usd", "must be a finite number")
        return None
    try:
        # repr() of a float is its shortest round-trip form: 0.1 becomes Decimal("0.1").
        cost = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        problem("cost_usd", f"must be a number or null (got {value!r})")
        return None
    if not cost.is_finite() or cost < 0 or cost > MAX_COST_USD:
        problem("cost_usd", f"must be between 0 and {MAX_COST_USD} (got {value!r})")
        return None
    return cost
