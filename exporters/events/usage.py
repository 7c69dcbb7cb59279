"""The `io.aifinops.llm.usage.v1` event: its `data` fields, their validation and the usage record.

One LLM API call arrives either with its token counts (`input_tokens`, `cache_read_tokens`,
`cache_write_tokens`, `output_tokens`, `reasoning_tokens`) or with the provider's `response` (or
just its usage part) plus `api_flavor`, which `providers.extract_response` turns into the same
counts; everything downstream sees `input_tokens` as *all* input tokens. Provider names and
response shapes live in `providers.py`, not here.

`parse_usage_event` is what the HTTP ingest and the Kafka bridge both call: it checks the envelope
and the data together and raises one `EventError` listing every `Problem(field, reason)`. Most
events have the common shape (token fields, label values seen before): `accept_usage` recognises
it in a few comparisons; everything else goes through `parse_usage`, the one definition of a valid
event, which also words every problem (a test proves both agree on a fuzzed corpus).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from .codec import EventError, Problem
from .envelope import (
    DEFAULT_MAX_FUTURE,
    SPECVERSION,
    USAGE_TYPE,
    Envelope,
    accept_envelope,
    parse_event,
)
from .providers import (
    MEMO_LIMIT,
    SEEN_PROVIDERS,
    extract_response,
    prices_provider_id,
    provider_name,
)


class TokenField(NamedTuple):
    """One token count of usage `data`: its field, its genai-prices usage key, and whether an
    event must give it (an optional one not given is 0)."""

    name: str
    usage_key: str
    required: bool


# The token fields of usage `data`, in `UsageRecord` order: the one list the field checks, the
# provider-response normalisation and pricing's usage keys are all derived from.
TOKEN_SPEC = (
    TokenField("input_tokens", "input_tokens", required=True),
    TokenField("cache_read_tokens", "cache_read_tokens", required=False),
    TokenField("cache_write_tokens", "cache_write_tokens", required=False),
    TokenField("output_tokens", "output_tokens", required=True),
    TokenField("reasoning_tokens", "output_reasoning_tokens", required=False),
)
TOKEN_FIELDS = tuple(f.name for f in TOKEN_SPEC)
# The genai-prices usage keys of the token fields, in `TOKEN_FIELDS` order.
STANDARD_USAGE_KEYS = tuple(f.usage_key for f in TOKEN_SPEC)
_INPUT, _CACHE_READ, _CACHE_WRITE, _OUTPUT, _REASONING = STANDARD_USAGE_KEYS
DATA_FIELDS = frozenset(
    (
        *TOKEN_FIELDS,
        "provider",
        "model",
        "team",
        "app",
        "cost_usd",
        "status",
        "response",
        "api_flavor",
    )
)
# The four disjoint token types of `aifinops_llm_tokens_total` and `aifinops_llm_cost_usd_total`.
TOKEN_TYPES = ("input", "cache_read", "cache_write", "output")
STATUSES = ("ok", "error")
# A sanity bound: no single call uses a trillion tokens; a value that large is a unit mistake.
MAX_TOKENS = 10**12
MAX_COST_USD = Decimal(10**9)
OTHER = "__other__"

_MODEL = re.compile(r"[A-Za-z0-9@~][A-Za-z0-9._:/@+=~-]{0,199}")
_ATTRIBUTION = re.compile(r"[A-Za-z0-9._:/@-]{0,128}")
_MODEL_RULE = (
    "must be 1-200 characters of [A-Za-z0-9._:/@+=~-] starting with a letter, digit, @ or ~"
)
_ATTRIBUTION_RULE = "must be at most 128 characters of [A-Za-z0-9._:/@-]"


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
    envelope = accept_envelope(obj, _USAGE_TYPES, now, max_future)
    if envelope is not None:
        record = accept_usage(envelope.data)
        if record is not None:
            return _new(UsageEvent, (envelope, record))
    checked, parsed = parse_event(obj, _USAGE_TYPES, parse_usage, now=now, max_future=max_future)
    return UsageEvent(checked, parsed)


def accept_usage(data: Mapping[str, Any]) -> UsageRecord | None:
    """The record of usage `data` in the common shape (token fields, label values `parse_usage`
    already found valid, no field it would question), in a few comparisons; None for anything
    else, which `parse_usage` then checks. It accepts only what `parse_usage` accepts, with the
    same result."""
    if type(data) is not dict:
        return None
    get = data.get
    provider = get("provider")
    model = get("model")
    team = get("team", "")
    app = get("app", "")
    if (
        type(provider) is not str
        or type(model) is not str
        or type(team) is not str
        or type(app) is not str
        or model not in _VALID_MODELS
        or team not in _VALID_ATTRIBUTION
        or app not in _VALID_ATTRIBUTION
    ):
        return None
    provider = SEEN_PROVIDERS.get(provider)
    status = get("status", "ok")
    if provider is None or (status != "ok" and status != "error"):
        return None
    inp = get("input_tokens")
    cache_read = get("cache_read_tokens", 0)
    cache_write = get("cache_write_tokens", 0)
    out = get("output_tokens")
    reasoning = get("reasoning_tokens", 0)
    if (
        type(inp) is not int
        or type(cache_read) is not int
        or type(cache_write) is not int
        or type(out) is not int
        or type(reasoning) is not int
        or cache_read < 0
        or cache_write < 0
        or reasoning < 0
        or not cache_read + cache_write <= inp <= MAX_TOKENS
        or not reasoning <= out <= MAX_TOKENS
    ):
        return None
    keys = data.keys()
    if not keys <= _PLAIN_FIELDS:
        for key in keys - _PLAIN_FIELDS:
            if key not in _EXTRA_FIELDS:  # `response`, `api_flavor`, or a field not seen yet
                return None
    cost = get("cost_usd")
    if cost is not None:
        try:
            cost = _cost(cost, _decline)
        except _Declined:
            return None
    return _new(
        UsageRecord,
        (
            provider,
            model,
            team,
            app,
            status,
            inp,
            cache_read,
            cache_write,
            out,
            reasoning,
            cost,
            None,
        ),
    )


class _Declined(Exception):
    """A value `accept_usage` leaves to `parse_usage` to word."""


def _decline(_name: str, _reason: str) -> None:
    raise _Declined


def parse_usage(data: Mapping[str, Any], *, prefix: str = "data") -> UsageRecord:
    """Validate the `data` of a usage event; raise `EventError` listing every problem."""
    problems: list[Problem] = []

    def problem(name: str, reason: str) -> None:
        problems.append(Problem(f"{prefix}.{name}", reason))

    provider = provider_name(data.get("provider"), problem)
    model = _label(data.get("model"), "model", _MODEL, _MODEL_RULE, problem, required=False)
    team = _label(data.get("team"), "team", _ATTRIBUTION, _ATTRIBUTION_RULE, problem) or ""
    app = _label(data.get("app"), "app", _ATTRIBUTION, _ATTRIBUTION_RULE, problem) or ""
    status = data.get("status", "ok")
    if status not in STATUSES:
        problem("status", f"must be one of ok, error (got {status!r})")
    cost = _cost(data.get("cost_usd"), problem)
    for key in data:
        if key not in DATA_FIELDS and key not in _EXTRA_FIELDS:
            # Extra fields are allowed (a gateway may add its own); a near-miss of a known field
            # is a typo whose value would otherwise be silently ignored.
            close = difflib.get_close_matches(str(key), DATA_FIELDS, n=1, cutoff=0.8)
            if close:
                problem(str(key), f"unknown field (did you mean {close[0]}?)")
            elif type(key) is str and len(_EXTRA_FIELDS) < MEMO_LIMIT:
                _EXTRA_FIELDS.add(key)

    counts: dict[str, int] | None = None
    usage: dict[str, int | Decimal] | None = None
    detail: Mapping[str, int | Decimal] | None = None
    response = data.get("response")
    if response is not None:
        given = [f for f in TOKEN_FIELDS if f in data]
        if given:
            problem("response", f"give either response or the token fields, not both ({given[0]})")
        elif not _is_mapping(response):
            problem("response", "must be a JSON object (the provider's response or its usage)")
        elif provider is not None:
            extracted = extract_response(
                response, provider, data.get("api_flavor"), problem, _NAME_KEYS, MAX_TOKENS
            )
            if extracted is not None:
                response_model, counts, usage = extracted
                detail = MappingProxyType(usage)
                if response_model is not None:
                    model = _label(response_model, "response.model", _MODEL, _MODEL_RULE, problem)
    else:
        if "api_flavor" in data:
            problem("api_flavor", "only meaningful with response")
        counts = {}
        for name, _, required in TOKEN_SPEC:
            value = data.get(name)
            if type(value) is int and 0 <= value <= MAX_TOKENS:
                counts[name] = value
                continue
            value = _tokens(value, name, problem, required=required)
            if value is not None:
                counts[name] = value
        if len(counts) != len(TOKEN_FIELDS):
            counts = None
    if model is None and not any(p.field == f"{prefix}.model" for p in problems):
        problem("model", "required (or a response that names its model)")
    if counts is not None:
        cached = counts["cache_read_tokens"] + counts["cache_write_tokens"]
        if cached > counts["input_tokens"]:
            problem(
                "cache_read_tokens",
                f"cache_read_tokens + cache_write_tokens ({cached}) exceed input_tokens "
                f"({counts['input_tokens']}), which counts all input tokens, cached ones included",
            )
        if counts["reasoning_tokens"] > counts["output_tokens"]:
            problem(
                "reasoning_tokens",
                f"reasoning_tokens ({counts['reasoning_tokens']}) exceed output_tokens "
                f"({counts['output_tokens']}), which counts all output tokens, reasoning included",
            )
    if problems:
        raise EventError(problems)
    assert provider is not None and model is not None and counts is not None
    return UsageRecord(
        provider=provider,
        model=model,
        team=team,
        app=app,
        status=status,
        input_tokens=counts["input_tokens"],
        cache_read_tokens=counts["cache_read_tokens"],
        cache_write_tokens=counts["cache_write_tokens"],
        output_tokens=counts["output_tokens"],
        reasoning_tokens=counts["reasoning_tokens"],
        cost_usd=cost,
        detail=detail,
    )


_USAGE_TYPES = frozenset((USAGE_TYPE,))
_NAME_KEYS = tuple((f.name, f.usage_key) for f in TOKEN_SPEC)


def _is_mapping(value: Any) -> bool:
    # A dict (what JSON decodes to) without the slower ABC check.
    return type(value) is dict or isinstance(value, Mapping)


# Label values already found valid, so the hot path skips the regular expressions; bounded,
# since label values are client input. An empty team or app is valid.
_VALID_MODELS: set[str] = set()
_VALID_ATTRIBUTION: set[str] = {""}
_VALID: dict[re.Pattern[str], set[str]] = {_MODEL: _VALID_MODELS, _ATTRIBUTION: _VALID_ATTRIBUTION}
# Extra `data` fields found to be no near-miss of a known one (a gateway's own fields).
_EXTRA_FIELDS: set[str] = set()
# The fields `accept_usage` handles itself; `response` and `api_flavor` take the full check.
_PLAIN_FIELDS = DATA_FIELDS - {"response", "api_flavor"}
_new = tuple.__new__


def _label(
    value: Any, name: str, pattern: re.Pattern[str], rule: str, problem: Any, required: bool = False
) -> str | None:
    valid = _VALID[pattern]
    if type(value) is str and value in valid:
        return value
    if value is None:
        if required:
            problem(name, "required")
        return None
    if not isinstance(value, str):
        problem(name, f"must be a string (got {type(value).__name__})")
        return None
    if not pattern.fullmatch(value):
        shown = value if len(value) <= 80 else value[:77] + "..."
        problem(name, f"{rule} (got {shown!r})")
        return None
    if value == OTHER:
        problem(name, f"{OTHER} is reserved for folded label values")
        return None
    if len(valid) < MEMO_LIMIT:
        valid.add(value)
    return value


def _tokens(value: Any, name: str, problem: Any, *, required: bool) -> int | None:
    if value is None:
        if required:
            problem(name, "required")
            return None
        return 0
    if type(value) is not int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            problem(name, f"must be a non-negative integer (got {value!r})")
            return None
    if value < 0:
        problem(name, f"must be a non-negative integer (got {value})")
        return None
    if value > MAX_TOKENS:
        problem(name, f"must be at most {MAX_TOKENS} (got {value})")
        return None
    count: int = value  # an int by now (checked above)
    return count


def _cost(value: Any, problem: Any) -> Decimal | None:
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
