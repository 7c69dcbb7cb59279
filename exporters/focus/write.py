"""Writes FOCUS rows to files: CSV always, Parquet when pyarrow is installed (`pip install aifinops[focus]`).

CSV: one header line of `COLUMN_NAMES`, RFC 4180 quoting, UTF-8; null is an empty field, decimals
in plain notation (no exponent, no trailing zeros), date/times as `YYYY-MM-DDTHH:MM:SSZ`. Parquet:
decimals as `decimal128(38, 15)`, date/times as UTC timestamps in seconds, JSON columns as strings.
A file is written under a temporary name and renamed, so a reader never sees half of one.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from .columns import COLUMNS, DATETIME, DECIMAL, INTEGER, SCALE


def parquet_available() -> bool:
    """Whether pyarrow is installed."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def format_decimal(value: Decimal) -> str:
    """Plain notation as FOCUS' numeric format wants it: `-0.0012`, `42`, never `1E-7`."""
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "0") else text


def format_datetime(value: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, to the second."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_FORMATS: dict[str, Callable[[Any], str]] = {DECIMAL: format_decimal, DATETIME: format_datetime}


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Write `rows` (header only when there are none) to `path`; returns it."""
    columns: list[tuple[str, Callable[[Any], str]]] = [
        (name, _FORMATS.get(kind, str)) for name, kind in COLUMNS
    ]
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        writer.writerow([name for name, _kind in COLUMNS])
        for row in rows:
            writer.writerow(["" if (v := row[name]) is None else fmt(v) for name, fmt in columns])
    os.replace(tmp, path)
    return path


def write_parquet(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Write `rows` to a Parquet file; raises ImportError without pyarrow."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {
        DECIMAL: pa.decimal128(38, SCALE),
        INTEGER: pa.int64(),
        DATETIME: pa.timestamp("s", tz="UTC"),
    }
    schema = pa.schema([(name, types.get(kind, pa.string())) for name, kind in COLUMNS])
    columns = {name: [row[name] for row in rows] for name, _kind in COLUMNS}
    table = pa.table(columns, schema=schema)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path
