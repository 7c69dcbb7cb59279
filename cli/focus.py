"""`aifinops focus export`: LLM and GPU spend from Kafka as FOCUS 1.2 files for chargeback (docs/focus.md)."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from aifinops.bridge.focus import DEFAULT_LOOKBACK, ExportStats, collect
from aifinops.bridge.transport import TransportError
from aifinops.exporters.config import Config
from aifinops.exporters.currency.rates import CurrencyError
from aifinops.exporters.currency.source import load_schedule
from aifinops.exporters.focus import ExportContext, FocusAccumulator, money
from aifinops.exporters.focus.write import parquet_available, write_csv, write_parquet
from aifinops.exporters.pricing import Pricer
from aifinops.exporters.runtime.config import ConfigError, load_config

PROG = "aifinops focus export"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`aifinops focus export --from T --to T --out DIR [...]`."""
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = sub.add_parser(
        "export",
        help="write the events of a time range as FOCUS 1.2 rows (CSV, and Parquet with pyarrow)",
        description="Read ai-api-costs and gpu-utilization-events from Kafka and write one FOCUS "
        "row per hour x team x app x provider x model x token type, and per hour x GPU x holder.",
    )
    export.add_argument(
        "--from",
        dest="start",
        required=True,
        metavar="TIME",
        help="start (inclusive), on the hour: 2026-12-01 or 2026-12-01T13:00:00Z",
    )
    export.add_argument(
        "--to", dest="end", required=True, metavar="TIME", help="end (exclusive), on the hour"
    )
    export.add_argument("--out", required=True, metavar="DIR", help="directory to write into")
    export.add_argument("--config.file", dest="config_file", metavar="PATH")
    export.add_argument(
        "--kafka.bootstrap-servers", dest="kafka_bootstrap_servers", metavar="HOST:PORT[,...]"
    )
    export.add_argument(
        "--billing-account-id",
        metavar="ID",
        help="BillingAccountId of every row (default: the config's cluster name)",
    )
    export.add_argument(
        "--billing-account-name", metavar="NAME", help="BillingAccountName (default: the id)"
    )
    export.add_argument(
        "--gpu-provider",
        metavar="NAME",
        help="ProviderName of GPU rows, e.g. AWS (default: the config's cluster name)",
    )
    export.add_argument(
        "--lookback",
        type=float,
        default=DEFAULT_LOOKBACK.total_seconds(),
        metavar="SECONDS",
        help="also read messages Kafka stored this long before --from (producer clock skew; "
        "default 900)",
    )
    export.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="give up when Kafka sends nothing for this long while messages are due",
    )
    export.add_argument(
        "--format",
        choices=["auto", "csv", "parquet"],
        default="auto",
        help="auto: CSV, plus Parquet when pyarrow is installed (default)",
    )


def parse_hour(text: str, flag: str) -> datetime:
    """A `--from`/`--to` value: a date (00:00 UTC) or an RFC 3339 time on the hour. Raises
    ValueError naming the flag."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{flag} {text!r} is not a date or an RFC 3339 time") from None
    if when.tzinfo is None:
        raise ValueError(f"{flag} {text!r} needs a time zone (Z for UTC)")
    when = when.astimezone(UTC)
    if when.minute or when.second or when.microsecond:
        raise ValueError(f"{flag} {text!r} must be on the hour (charge periods are hours)")
    return when


def run(args: argparse.Namespace) -> int:
    """0 when the files are written; 1 when Kafka fails or a charge period has no exchange rate;
    2 for bad flags or config."""
    logging.getLogger("aifinops.exporters.pricing").setLevel(logging.ERROR)
    try:
        start = parse_hour(args.start, "--from")
        end = parse_hour(args.end, "--to")
        if end <= start:
            raise ValueError("--to must be later than --from")
    except ValueError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    overrides = {}
    if args.kafka_bootstrap_servers:
        overrides["kafka.bootstrap_servers"] = args.kafka_bootstrap_servers
    try:
        config = load_config(Config, args.config_file, overrides=overrides)
        schedule = load_schedule(config.currency)
    except (ConfigError, CurrencyError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    if not config.kafka.bootstrap_servers:
        print(
            f"{PROG}: --kafka.bootstrap-servers (or kafka.bootstrap_servers) is required",
            file=sys.stderr,
        )
        return 2
    if args.format == "parquet" and not parquet_available():
        print(
            f"{PROG}: --format parquet needs pyarrow (pip install 'aifinops[focus]')",
            file=sys.stderr,
        )
        return 2
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"{PROG}: --out {out}: {exc.strerror}", file=sys.stderr)
        return 2
    account = args.billing_account_id or config.cluster
    context = ExportContext(
        billing_account_id=account,
        billing_account_name=args.billing_account_name or account,
        gpu_provider=args.gpu_provider or config.cluster,
    )
    accumulator = FocusAccumulator(list_pricer=Pricer(()))
    try:
        stats = collect(
            config,
            start,
            end,
            accumulator,
            lookback=timedelta(seconds=args.lookback),
            idle_timeout=args.timeout,
        )
        rows = accumulator.rows(schedule, context)
    except TransportError as exc:
        print(f"{PROG}: Kafka: {exc}", file=sys.stderr)
        return 1
    except CurrencyError as exc:
        print(
            f"{PROG}: {exc} (add a rate to currency.rates or currency.rates_file)", file=sys.stderr
        )
        return 1
    stem = f"focus-{start:%Y%m%dT%H}Z-{end:%Y%m%dT%H}Z"
    written = []
    if args.format in ("auto", "csv"):
        written.append(write_csv(rows, out / f"{stem}.csv"))
    if args.format == "parquet" or (args.format == "auto" and parquet_available()):
        written.append(write_parquet(rows, out / f"{stem}.parquet"))
    _report(stats, rows, accumulator, schedule.code, written)
    return 0


def _report(
    stats: ExportStats,
    rows: list[dict[str, Any]],
    accumulator: FocusAccumulator,
    currency: str,
    written: list[Path],
) -> None:
    for topic, s in stats.topics.items():
        print(
            f"{topic}: {s.read} read, {s.counted} counted, {s.duplicate} duplicate, "
            f"{s.outside} outside the range, {s.invalid} invalid"
        )
        for reason in s.reasons:
            print(f"  invalid {topic} {reason}", file=sys.stderr)
    billed = Decimal(0)
    for row in rows:
        billed += row["BilledCost"]
    print(
        f"{len(rows)} rows; events cost {money(accumulator.total_usd).normalize():f} USD; "
        f"billed {billed.normalize():f} {currency}"
    )
    for path in written:
        print(f"wrote {path}")
