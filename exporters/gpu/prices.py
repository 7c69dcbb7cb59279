"""GPU prices: the shipped per-GPU-hour table (strictly loaded, every problem with its line) and the
overrides that set spot, reserved or on-premises prices per model, node, instance type or node label.

The table (`exporters/data/gpu-prices.yaml`, replaceable with `gpu.price_table`) lists, in order,
rows whose `match` regular expression is searched (case-insensitively) in the model name NVML or
dcgm-exporter reports; the first row that matches prices the GPU. Each row records where its number
came from: the instance it was derived from, that instance's on-demand price, its GPU count, the
provider, region and date; the loader checks `usd_per_hour == instance_usd_per_hour /
gpus_per_instance` exactly, so a transcription slip fails at start.

Overrides (config `gpu.price_overrides`) come first: the first override whose every given matcher
holds wins. Matchers: `model` (a table key such as `H100`, or a regular expression searched in the
model name), `node` (the node name), `instance_type` (the node's `node.kubernetes.io/instance-type`
label) and `node_label` (`key=value` on the node).
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Protocol

import yaml

# MAX_DECIMAL_PLACES stays importable from here (opencost.py reads it).
from ..checks import MAX_DECIMAL_PLACES as MAX_DECIMAL_PLACES
from ..checks import PriceRule, check_price, exact_decimal

DEFAULT_TABLE = Path(__file__).resolve().parent.parent / "data" / "gpu-prices.yaml"
INSTANCE_TYPE_LABELS = ("node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type")

_ROW_FIELDS = {
    "model": True,
    "match": True,
    "usd_per_hour": True,
    "instance": True,
    "instance_usd_per_hour": True,
    "gpus_per_instance": True,
    "provider": True,
    "region": True,
    "as_of": True,
    "source": True,
    "note": False,
}


class PriceTableError(Exception):
    """A price table that cannot be used; `problems` lists every `file:line: field: reason`."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__(
            f"invalid GPU price table ({len(self.problems)} problem"
            f"{'s' if len(self.problems) != 1 else ''}):\n"
            + "\n".join(f"  {p}" for p in self.problems)
        )


@dataclass(frozen=True)
class PriceRow:
    """One table row: a GPU model's on-demand price per GPU-hour and where it came from."""

    model: str
    match: re.Pattern[str]
    usd_per_hour: Decimal
    instance: str
    instance_usd_per_hour: Decimal
    gpus_per_instance: int
    provider: str
    region: str
    as_of: str
    source: str
    line: int


@dataclass(frozen=True)
class PriceTable:
    """The loaded table, in file order (the first matching row prices a GPU)."""

    rows: tuple[PriceRow, ...]
    path: str

    def lookup(self, model_name: str) -> PriceRow | None:
        """The first row whose `match` is found in `model_name`, or None."""
        for row in self.rows:
            if row.match.search(model_name):
                return row
        return None

    def by_model(self, key: str) -> PriceRow | None:
        """The row whose `model` key is `key` (case-insensitive)."""
        for row in self.rows:
            if row.model.lower() == key.lower():
                return row
        return None


@dataclass(frozen=True)
class Price:
    """The price applied to one GPU, why (`basis`, for logs and docs) and which kind of source
    set it (`source`: `override` or `table` here; `opencost`/`opencost_spot` in opencost.py),
    the value of aifinops_gpu_price_info's `source` label."""

    usd_per_hour: Decimal
    basis: str
    source: str = "table"


class GPUPriceLookup(Protocol):
    """Anything that prices a GPU from its model name, node and node labels."""

    def price(self, model: str, node: str, labels: Mapping[str, str] | None = None) -> Price | None:
        """The price of one hour of a `model` GPU on `node`, or None when nothing prices it."""
        ...


class _LineDict(dict):  # type: ignore[type-arg]
    """A YAML mapping that remembers the line of itself and of each key."""

    line: int = 0
    key_lines: dict[str, int]


class _Loader(yaml.SafeLoader):
    """Safe YAML with line numbers on mappings, duplicate keys reported and floats read as Decimal."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[int, str]] = []


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _LineDict:
    result = _LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            loader.duplicates.append((key_node.start_mark.line + 1, str(key)))
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[str(key)] = key_node.start_mark.line + 1
    return result


def _construct_float(loader: _Loader, node: yaml.ScalarNode) -> Any:
    text = str(loader.construct_scalar(node))
    try:
        return Decimal(text.replace("_", ""))
    except InvalidOperation:
        return text  # .inf / .nan: reported as "not a finite number" by the checks


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)


def load_price_table(path: str | Path | None = None) -> PriceTable:
    """Load and check a price table (the shipped one by default); raise `PriceTableError`."""
    path = Path(path) if path is not None else DEFAULT_TABLE
    name = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PriceTableError([f"{path}: cannot read ({exc.strerror})"]) from exc
    loader = _Loader(text)
    try:
        doc = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise PriceTableError([f"{name}: not valid YAML ({exc})"]) from exc
    finally:
        loader.dispose()
    problems = [f"{name}:{line}: duplicate key {key!r}" for line, key in loader.duplicates]
    if not isinstance(doc, _LineDict) or not isinstance(doc.get("gpus"), list):
        raise PriceTableError([*problems, f"{name}:1: gpus: required, a list of rows"])
    for key in sorted(set(doc) - {"gpus"}, key=str):
        problems.append(f"{name}:{doc.key_lines[str(key)]}: {key}: unknown key")
    rows: list[PriceRow] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(doc["gpus"]):
        where = f"gpus[{i}]"
        if not isinstance(raw, _LineDict):
            problems.append(f"{name}: {where}: must be a mapping")
            continue
        row, row_problems = _row(raw, where)
        problems += [f"{name}:{line}: {field}: {reason}" for line, field, reason in row_problems]
        if row is None:
            continue
        if row.model.lower() in seen:
            problems.append(
                f"{name}:{raw.line}: {where}.model: {row.model!r} already defined at line "
                f"{seen[row.model.lower()]}"
            )
        seen[row.model.lower()] = raw.line
        rows.append(row)
    if problems:
        raise PriceTableError(problems)
    return PriceTable(tuple(rows), str(path))


def _row(raw: _LineDict, where: str) -> tuple[PriceRow | None, list[tuple[int, str, str]]]:
    problems: list[tuple[int, str, str]] = []

    def line_of(key: str) -> int:
        return raw.key_lines.get(key, raw.line)

    def bad(key: str, reason: str) -> None:
        problems.append((line_of(key), f"{where}.{key}", reason))

    for key in sorted(set(raw) - set(_ROW_FIELDS), key=str):
        bad(str(key), "unknown key")
    for key, required in _ROW_FIELDS.items():
        if required and key not in raw:
            bad(key, "required")
    text: dict[str, str] = {}
    for key in ("model", "match", "instance", "provider", "region", "source", "note"):
        value = raw.get(key)
        if key in raw and (not isinstance(value, str) or not value.strip()):
            bad(key, "must be a non-empty string")
        elif isinstance(value, str):
            text[key] = value
    pattern = None
    if "match" in text:
        try:
            pattern = re.compile(text["match"], re.IGNORECASE)
        except re.error as exc:
            bad("match", f"not a regular expression ({exc})")
    prices: dict[str, Decimal] = {}
    for key in ("usd_per_hour", "instance_usd_per_hour"):
        if key in raw:
            reason = check_price(raw[key])
            if reason:
                bad(key, reason)
            else:
                prices[key] = exact_decimal(raw[key])  # type: ignore[assignment]
    gpus = raw.get("gpus_per_instance")
    if "gpus_per_instance" in raw and (
        isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1
    ):
        bad("gpus_per_instance", f"must be a whole number of at least 1 (got {gpus!r})")
        gpus = None
    as_of = raw.get("as_of")
    if isinstance(as_of, _dt.date):
        as_of = as_of.isoformat()
    if "as_of" in raw and not (
        isinstance(as_of, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", as_of)
    ):
        bad("as_of", f"must be a date YYYY-MM-DD (got {raw.get('as_of')!r})")
    if len(prices) == 2 and isinstance(gpus, int):
        derived = prices["instance_usd_per_hour"] / gpus
        if derived != prices["usd_per_hour"]:
            bad(
                "usd_per_hour",
                f"{prices['usd_per_hour']} is not instance_usd_per_hour / gpus_per_instance "
                f"({prices['instance_usd_per_hour']} / {gpus} = {derived})",
            )
    if problems:
        return None, problems
    assert pattern is not None and isinstance(gpus, int) and isinstance(as_of, str)
    return (
        PriceRow(
            model=text["model"],
            match=pattern,
            usd_per_hour=prices["usd_per_hour"],
            instance=text["instance"],
            instance_usd_per_hour=prices["instance_usd_per_hour"],
            gpus_per_instance=gpus,
            provider=text["provider"],
            region=text["region"],
            as_of=as_of,
            source=text["source"],
            line=raw.line,
        ),
        [],
    )


class GPUPricer:
    """Prices a GPU from its model name, node and node labels: overrides first, then the table."""

    def __init__(self, table: PriceTable, overrides: Sequence[PriceRule] = ()) -> None:
        self._table = table
        self._overrides = [
            (
                o,
                re.compile(o.model, re.IGNORECASE) if o.model is not None else None,
                tuple(o.node_label.split("=", 1)) if o.node_label else None,
            )
            for o in overrides
        ]
        self._label_keys = tuple(
            sorted({pair[0] for _, _, pair in self._overrides if pair is not None})
        )
        self._cache: dict[tuple[Any, ...], Price | None] = {}

    @property
    def table(self) -> PriceTable:
        """The table in use."""
        return self._table

    def price(self, model: str, node: str, labels: Mapping[str, str] | None = None) -> Price | None:
        """The price of one hour of a `model` GPU on `node`, or None when nothing prices it."""
        labels = labels or {}
        instance_type = instance_type_of(labels)
        key = (model, node, instance_type, *(labels.get(k) for k in self._label_keys))
        if key in self._cache:
            return self._cache[key]
        result = self._resolve(model, node, instance_type, labels)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = result
        return result

    def _resolve(
        self, model: str, node: str, instance_type: str | None, labels: Mapping[str, str]
    ) -> Price | None:
        row = self._table.lookup(model)
        for i, (o, pattern, label) in enumerate(self._overrides):
            if pattern is not None and not (
                (row is not None and row.model.lower() == (o.model or "").lower())
                or pattern.search(model)
            ):
                continue
            if o.node is not None and o.node != node:
                continue
            if o.instance_type is not None and o.instance_type != instance_type:
                continue
            if label is not None and labels.get(label[0]) != label[1]:
                continue
            return Price(Decimal(o.usd_per_hour), f"gpu.price_overrides[{i}]", "override")
        if row is None:
            return None
        return Price(
            row.usd_per_hour,
            f"{row.model}: {row.provider} {row.instance} {row.region} {row.as_of} / "
            f"{row.gpus_per_instance}",
        )


def instance_type_of(labels: Mapping[str, str]) -> str | None:
    """The node's instance type from its well-known labels, if any."""
    for key in INSTANCE_TYPE_LABELS:
        value = labels.get(key)
        if value:
            return value
    return None
