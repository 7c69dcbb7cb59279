"""Provider normalisation: provider names (OpenTelemetry and genai-prices ids) and provider responses.

This is the one home of what differs per LLM provider. A usage event names its provider either
way (`aws.bedrock` or `aws`); the `provider` label always carries the OpenTelemetry name, and
pricing looks it up under the genai-prices id. A usage event may carry the provider's `response`
(or just its usage part) instead of token counts: the genai-prices extractor for the provider and
`api_flavor` reads it, and its normalisation is where cached-token semantics live (OpenAI's
`prompt_tokens` include cached tokens, Anthropic's `input_tokens` exclude cache reads and writes),
so downstream `input_tokens` always counts *all* input tokens. A new provider response shape is
an extractor in genai-prices or a case here, with a test in `tests/unit/exporters/events/test_usage.py`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any

# Called with (field, reason) for each problem found; the caller adds the `data.` prefix.
Report = Callable[[str, str], None]

# OpenTelemetry `gen_ai.provider.name` values and the genai-prices provider id that prices them.
# Names not listed here are used as given: genai-prices resolves its own ids and close aliases.
OTEL_TO_PRICES: Mapping[str, str | None] = MappingProxyType(
    {
        "openai": "openai",
        "anthropic": "anthropic",
        "aws.bedrock": "aws",
        "azure.ai.openai": "azure",
        "azure.ai.inference": "azure",
        "gcp.gemini": "google",
        "gcp.vertex_ai": "google",
        "gcp.gen_ai": "google",
        "mistral_ai": "mistral",
        "x_ai": "x-ai",
        "deepseek": "deepseek",
        "groq": "groq",
        "cohere": "cohere",
        "perplexity": "perplexity",
        # A well-known OpenTelemetry value the catalogue has no prices for.
        "ibm.watsonx.ai": None,
    }
)
# genai-prices ids whose OpenTelemetry value differs; the `provider` label always carries the latter.
PRICES_TO_OTEL: Mapping[str, str] = MappingProxyType(
    {
        "aws": "aws.bedrock",
        "azure": "azure.ai.openai",
        "google": "gcp.gemini",
        "mistral": "mistral_ai",
        "x-ai": "x_ai",
    }
)

_PROVIDER = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_PROVIDER_RULE = "must be 1-64 characters of [a-z0-9._-] starting with a letter or digit"
# Provider values already resolved to their label (bounded: client input).
SEEN_PROVIDERS: dict[str, str] = {}
MEMO_LIMIT = 50_000


def otel_provider_name(name: str) -> str:
    """The OpenTelemetry `gen_ai.provider.name` for a provider given by either naming scheme."""
    lowered = name.strip().lower()
    return PRICES_TO_OTEL.get(lowered, lowered)


def prices_provider_id(otel_name: str) -> str | None:
    """The genai-prices provider id to price an OpenTelemetry provider name with (None: none)."""
    if otel_name in OTEL_TO_PRICES:
        return OTEL_TO_PRICES[otel_name]
    return otel_name


def provider_label(value: str, problem: Report) -> str | None:
    """The `provider` label of a usage event's `provider` string (either naming scheme,
    memoised); None after reporting why it is invalid."""
    known = SEEN_PROVIDERS.get(value)
    if known is not None:
        return known
    name = otel_provider_name(value)
    if not _PROVIDER.fullmatch(name):
        problem("provider", f"{_PROVIDER_RULE} (got {value!r})")
        return None
    if len(SEEN_PROVIDERS) < MEMO_LIMIT:
        SEEN_PROVIDERS[value] = name
    return name


def extract_response(
    response: Mapping[str, Any],
    provider: str,
    flavor: Any,
    problem: Report,
    fields: Iterable[tuple[str, str]],
    max_tokens: int,
) -> tuple[str | None, dict[str, int], dict[str, int | Decimal]] | None:
    """Normalise a provider response (or its usage part) with the genai-prices extractor for its
    provider and `api_flavor`: the response's model (None when it names none), the five counts
    under the usage event's token field names (`fields`: each with its genai-prices usage key),
    and every count under genai-prices usage keys.
    None after reporting why the response cannot be read (fields `response`, `api_flavor`).

    The provider's extractor is called directly rather than through `genai_prices.extract_usage`,
    which also looks the model up and fails for a model the catalogue does not know: such a call
    must still have its tokens counted (and be reported unpriced).
    """
    from genai_prices import data_snapshot

    prices_id = prices_provider_id(provider)
    snapshot = data_snapshot.get_snapshot()
    try:
        if prices_id is None:
            raise LookupError(provider)
        catalogue_provider = snapshot.find_provider(None, prices_id, None)
    except LookupError:
        problem(
            "response",
            f"the price catalogue has no response extractor for provider {provider!r}; "
            "send the token fields instead",
        )
        return None
    extractors = catalogue_provider.extractors or []
    flavors = [e.api_flavor for e in extractors]
    if flavor is None:
        if "default" in flavors:
            flavor = "default"
        elif len(flavors) == 1:
            flavor = flavors[0]
        else:
            problem("api_flavor", f"required for provider {provider} (one of {', '.join(flavors)})")
            return None
    if not isinstance(flavor, str) or flavor not in flavors:
        problem("api_flavor", f"must be one of {', '.join(flavors)} (got {flavor!r})")
        return None
    extractor = extractors[flavors.index(flavor)]
    root = [extractor.root] if isinstance(extractor.root, str) else list(extractor.root)
    if all(isinstance(step, str) for step in root) and root[0] not in response:
        # Just the usage part was sent: put it where the extractor looks for it.
        wrapped: Any = response
        for step in reversed(root):
            wrapped = {step: wrapped}
        response = wrapped
    try:
        model, extracted = catalogue_provider.extract_usage(response, api_flavor=flavor)
    except ValueError as exc:
        problem("response", str(exc))
        return None
    usage: dict[str, int | Decimal] = {}
    for key, value in vars(extracted).items():
        if isinstance(value, int):
            usage[key] = value
        elif key.endswith("_tokens"):
            if not float(value).is_integer():
                problem("response", f"{key} must be a whole number of tokens (got {value})")
                return None
            usage[key] = int(value)
        else:  # seconds, characters, pages: fractional counts are legitimate
            usage[key] = Decimal(repr(value)) if isinstance(value, float) else value
    counts: dict[str, int] = {}
    for name, usage_key in fields:
        try:
            # Attribute access infers an unreported key (0) and refuses an inconsistent report.
            value = getattr(extracted, usage_key)
        except ValueError as exc:
            problem("response", str(exc))
            return None
        counts[name] = int(value)
        if counts[name] > max_tokens:
            problem("response", f"{usage_key} must be at most {max_tokens} (got {value})")
            return None
    return model, counts, usage
