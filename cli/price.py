"""`aifinops price`: the price of one LLM call, broken down by token type, exactly as the exporters price it."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime
from decimal import Decimal

from aifinops.exporters.config import Config
from aifinops.exporters.events import EventError, parse_usage
from aifinops.exporters.events.usage import TOKEN_TYPES
from aifinops.exporters.llm.overrides import load_overrides
from aifinops.exporters.pricing import Pricer, PricingError
from aifinops.exporters.runtime.config import ConfigError, load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`aifinops price --provider P --model M --input N --output N [...]`."""
    parser.add_argument(
        "--provider",
        required=True,
        help="OpenTelemetry gen_ai.provider.name (openai, gcp.gemini...) or genai-prices id",
    )
    parser.add_argument("--model", required=True)
    parser.add_argument(
        "--input",
        type=int,
        required=True,
        metavar="N",
        help="all input tokens, cache reads and writes included (as providers' bills count them)",
    )
    parser.add_argument("--output", type=int, required=True, metavar="N", help="all output tokens")
    parser.add_argument("--cache-read", type=int, default=0, metavar="N", dest="cache_read")
    parser.add_argument("--cache-write", type=int, default=0, metavar="N", dest="cache_write")
    parser.add_argument("--reasoning", type=int, default=0, metavar="N", help="part of --output")
    parser.add_argument(
        "--time",
        metavar="RFC3339",
        help="when the call was made (prices change over time); default now",
    )
    parser.add_argument(
        "--overrides", metavar="PATH", help="a price override file (default: the config's)"
    )
    parser.add_argument(
        "--config.file", dest="config_file", metavar="PATH", help="read llm.pricing from it"
    )


def run(args: argparse.Namespace) -> int:
    """Print the breakdown; 0 when priced, 1 when no price is known, 2 for bad input."""
    # The exporters' "no price" warning is this verb's answer, printed below as such.
    logging.getLogger("aifinops.exporters.pricing").setLevel(logging.ERROR)
    try:
        overrides_file = args.overrides
        if overrides_file is None and args.config_file:
            overrides_file = load_config(Config, args.config_file).llm.pricing.overrides_file
        overrides = load_overrides(overrides_file) if overrides_file else ()
    except ConfigError as exc:
        print(f"aifinops price: {exc}", file=sys.stderr)
        return 2
    try:
        when = (
            datetime.fromisoformat(args.time.replace("Z", "+00:00"))
            if args.time
            else datetime.now(UTC)
        )
    except ValueError:
        print(f"aifinops price: --time {args.time!r} is not an RFC 3339 timestamp", file=sys.stderr)
        return 2
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        usage = parse_usage(
            {
                "provider": args.provider,
                "model": args.model,
                "input_tokens": args.input,
                "output_tokens": args.output,
                "cache_read_tokens": args.cache_read,
                "cache_write_tokens": args.cache_write,
                "reasoning_tokens": args.reasoning,
            },
            prefix="",
        )
    except EventError as exc:
        for problem in exc.problems:
            print(f"aifinops price: --{_flag(problem.field)}: {problem.reason}", file=sys.stderr)
        return 2
    pricer = Pricer(overrides)
    try:
        cost = pricer.price(usage, when)
    except PricingError as exc:
        print(f"aifinops price: {exc}", file=sys.stderr)
        return 2
    if not cost.priced:
        print(
            f"no price for provider {usage.provider} model {usage.model} in the genai-prices "
            "catalogue or the overrides (the exporters count its tokens and report it in "
            "aifinops_llm_unpriced_requests_total)"
        )
        return 1
    assert cost.rates is not None
    print(f"provider  {usage.provider} (genai-prices: {usage.prices_provider})")
    print(f"model     {usage.model} (priced as {cost.model_id}, {cost.source} prices)")
    print(f"time      {when.isoformat()}")
    print()
    print(f"{'token type':<12} {'tokens':>12} {'USD / 1M':>12} {'USD':>16}")
    for token_type, tokens, rate, usd in zip(
        TOKEN_TYPES, usage.token_split, cost.rates, cost.by_type, strict=True
    ):
        print(f"{token_type:<12} {tokens:>12,} {_money(rate):>12} {_money(usd, 8):>16}")
    total_tokens = sum(usage.token_split)
    print(f"{'total':<12} {total_tokens:>12,} {'':>12} {_money(cost.total, 8):>16}")
    if usage.reasoning_tokens:
        print(f"({usage.reasoning_tokens:,} of the output tokens were reasoning)")
    print(f"\nexact total: ${cost.total.normalize():f}")
    return 0


def _flag(field: str) -> str:
    name = field.lstrip(".").removesuffix("_tokens")
    return {"cache_read": "cache-read", "cache_write": "cache-write"}.get(name, name)


def _money(value: Decimal, places: int = 4) -> str:
    quantum = Decimal(1).scaleb(-places)
    rounded = value.quantize(quantum)
    return f"{rounded:,f}" if rounded == value else f"~{rounded:,f}"
