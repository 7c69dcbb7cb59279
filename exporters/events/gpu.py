"""The `io.aifinops.gpu.sample.v1` event's `data` (one GPU over one sampling interval): the typed
sample, its JSON form and its validation.

One sample says what one GPU did over one interval and who held it. A GPU shared by several pods
(time-slicing, MPS) over an interval is written as one sample per holder, each with `holders` set to
their number: each sample then carries `1/holders` of the GPU's cost for the interval, so the
samples of one interval add up to exactly `hourly_cost_usd * interval_seconds / 3600`.

`data` fields (docs/architecture.md, plus the optional `holders`):

| field | type | |
|---|---|---|
| node | string | Kubernetes node (or host) name |
| gpu | int ≥ 0 | device index on the node |
| uuid | string | `GPU-…` UUID |
| model | string | product name as NVML reports it (`NVIDIA H100 80GB HBM3`) |
| utilization_ratio | number 0..1 | share of the interval a kernel was running |
| memory_used_bytes, memory_total_bytes | int ≥ 0 | used ≤ total |
| power_watts | number ≥ 0 or null | null where the GPU does not report power |
| hourly_cost_usd | number ≥ 0 or null | price of one GPU-hour; null: no price known (no money counted) |
| interval_seconds | number, 0 < x ≤ 3600 | the time this sample covers |
| namespace, pod | string, optional | the holder; both or neither |
| container, team | string, optional | only with a pod |
| holders | int ≥ 1, optional (1) | how many holders share the GPU over this interval |

Numbers that are money or time are read as `Decimal` from their shortest decimal form, so a price
written as `2.1` is exactly 2.1, not its binary neighbour.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from .codec import EventError, Problem
from .envelope import (
    DEFAULT_MAX_FUTURE,
    GPU_SAMPLE_TYPE,
    Envelope,
    parse_event,
)

MAX_TEXT_LENGTH = 256
MAX_INTERVAL_SECONDS = Decimal(3600)
MAX_HOLDERS = 1024
# More than this many decimal places in a price or interval cannot be written exactly as a JSON
# number by every producer, and no price list is that precise.
MAX_DECIMAL_PLACES = 9

_REQUIRED_TEXT = ("node", "uuid", "model")
_HOLDER_TEXT = ("namespace", "pod", "container", "team")
KNOWN_FIELDS = frozenset(
    {
        *_REQUIRED_TEXT,
        *_HOLDER_TEXT,
        "gpu",
        "utilization_ratio",
        "memory_used_bytes",
        "memory_total_bytes",
        "power_watts",
        "hourly_cost_usd",
        "interval_seconds",
        "holders",
    }
)


@dataclass(frozen=True)
class GPUSample:
    """One GPU over one interval, validated. Holder fields are `""` when no pod holds the GPU."""

    node: str
    gpu: int
    uuid: str
    model: str
    utilization_ratio: float
    memory_used_bytes: int
    memory_total_bytes: int
    power_watts: float | None
    hourly_cost_usd: Decimal | None
    interval_seconds: Decimal
    namespace: str = ""
    pod: str = ""
    container: str = ""
    team: str = ""
    holders: int = 1

    @property
    def key(self) -> str:
        """The Kafka message key, `node/uuid`, which keeps one GPU's samples in order."""
        return f"{self.node}/{self.uuid}"

    @property
    def held(self) -> bool:
        """Whether a pod held the GPU over this interval."""
        return bool(self.pod)

    def to_data(self) -> dict[str, Any]:
        """The event's `data` as JSON-ready values (decimals as JSON numbers, exact on read-back)."""
        data: dict[str, Any] = {
            "node": self.node,
            "gpu": self.gpu,
            "uuid": self.uuid,
            "model": self.model,
            "utilization_ratio": self.utilization_ratio,
            "memory_used_bytes": self.memory_used_bytes,
            "memory_total_bytes": self.memory_total_bytes,
            "power_watts": self.power_watts,
            "hourly_cost_usd": None
            if self.hourly_cost_usd is None
            else _number(self.hourly_cost_usd),
            "interval_seconds": _number(self.interval_seconds),
        }
        if self.pod:
            data["namespace"] = self.namespace
            data["pod"] = self.pod
            if self.container:
                data["container"] = self.container
            if self.team:
                data["team"] = self.team
        if self.holders != 1:
            data["holders"] = self.holders
        return data


class GPUEvent(NamedTuple):
    """A validated GPU sample CloudEvent: its envelope (`identity`, `time`: when the GPU was read)
    and its sample."""

    envelope: Envelope
    sample: GPUSample


def parse_gpu_event(
    obj: Any, *, now: datetime | None = None, max_future: timedelta = DEFAULT_MAX_FUTURE
) -> GPUEvent:
    """Validate a decoded `io.aifinops.gpu.sample.v1` CloudEvent, envelope and data together.

    Raises `EventError` listing every problem (fields like `time` or `data.gpu`).
    """
    return GPUEvent(*parse_event(obj, _GPU_TYPES, parse_gpu_sample, now=now, max_future=max_future))


_GPU_TYPES = frozenset((GPU_SAMPLE_TYPE,))


def _number(value: Decimal) -> int | float:
    """A JSON number whose shortest form reads back as exactly `value` (checked by the validator's
    limits: at most 9 decimal places and 15 significant digits)."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def _decimal(value: Any) -> Decimal | None:
    """The decimal a JSON number (or decimal string) was written as; None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            d = Decimal(value.strip())
        except InvalidOperation:
            return None
        return d if d.is_finite() else None
    return None


def parse_gpu_sample(data: Any, prefix: str = "data.") -> GPUSample:
    """Validate a gpu sample event's `data`; raise `EventError` listing every problem.

    Fields are named `data.<field>` (change `prefix` for another context). Unknown fields are
    refused, so a misspelt `hourly_cost` is reported rather than silently priced as nothing.
    """
    if not isinstance(data, Mapping):
        raise EventError([Problem(prefix.rstrip("."), "must be a JSON object")])
    problems: list[Problem] = []

    def bad(name: str, reason: str) -> None:
        problems.append(Problem(prefix + name, reason))

    for name in sorted(set(data) - KNOWN_FIELDS, key=str):
        bad(str(name), "unknown field")

    def text(name: str, required: bool) -> str:
        value = data.get(name)
        if value is None or (value == "" and not required):
            if required:
                bad(name, "required")
            return ""
        if not isinstance(value, str) or not value:
            bad(name, "must be a non-empty string")
            return ""
        if len(value) > MAX_TEXT_LENGTH:
            bad(name, f"longer than {MAX_TEXT_LENGTH} characters")
            return ""
        return value

    def integer(
        name: str, minimum: int, maximum: int | None = None, default: int | None = None
    ) -> int:
        value = data.get(name)
        if value is None and default is not None:
            return default
        if value is None:
            bad(name, "required")
            return 0
        if isinstance(value, bool) or not isinstance(value, int):
            bad(name, f"must be an integer (got {value!r})")
            return 0
        if value < minimum or (maximum is not None and value > maximum):
            limit = f" and at most {maximum}" if maximum is not None else ""
            bad(name, f"must be at least {minimum}{limit} (got {value})")
            return 0
        return value

    def real(name: str, nullable: bool) -> float | None:
        value = data.get(name)
        if value is None:
            if not nullable:
                bad(name, "required")
            elif name not in data:
                bad(name, "required (null when unknown)")
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            bad(name, f"must be a finite number (got {value!r})")
            return None
        if value < 0:
            bad(name, f"must not be negative (got {value})")
            return None
        return float(value)

    def exact(name: str, nullable: bool, upper: Decimal | None, positive: bool) -> Decimal | None:
        value = data.get(name)
        if value is None:
            if not nullable or name not in data:
                bad(name, "required" + (" (null when unknown)" if nullable else ""))
            return None
        d = _decimal(value)
        if d is None:
            bad(name, f"must be a finite number (got {value!r})")
            return None
        if d < 0 or (positive and d == 0):
            bad(name, f"must be {'positive' if positive else 'at least 0'} (got {value})")
            return None
        if upper is not None and d > upper:
            bad(name, f"must be at most {upper} (got {value})")
            return None
        exponent = d.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -MAX_DECIMAL_PLACES:
            bad(name, f"more than {MAX_DECIMAL_PLACES} decimal places (got {value})")
            return None
        if len(d.as_tuple().digits) > 15 and exponent != 0:
            bad(name, f"more than 15 significant digits (got {value})")
            return None
        return d

    node, uuid, model = (text(name, True) for name in _REQUIRED_TEXT)
    gpu = integer("gpu", 0)
    utilization = real("utilization_ratio", nullable=False)
    if utilization is not None and utilization > 1:
        bad("utilization_ratio", f"must be between 0 and 1 (got {utilization})")
    used = integer("memory_used_bytes", 0)
    total = integer("memory_total_bytes", 0)
    if used > total and not any(p.field.endswith("memory_total_bytes") for p in problems):
        bad("memory_used_bytes", f"more than memory_total_bytes ({used} > {total})")
    power = real("power_watts", nullable=True)
    price = exact("hourly_cost_usd", nullable=True, upper=Decimal(1_000_000), positive=False)
    interval = exact("interval_seconds", nullable=False, upper=MAX_INTERVAL_SECONDS, positive=True)
    namespace, pod, container, team = (text(name, False) for name in _HOLDER_TEXT)
    if bool(namespace) != bool(pod):
        bad("pod" if namespace else "namespace", "namespace and pod come together")
    if not pod:
        for name, value in (("container", container), ("team", team)):
            if value:
                bad(name, "only with a pod")
    holders = integer("holders", 1, MAX_HOLDERS, default=1)
    if problems:
        raise EventError(problems)
    assert utilization is not None and interval is not None
    return GPUSample(
        node=node,
        gpu=gpu,
        uuid=uuid,
        model=model,
        utilization_ratio=utilization,
        memory_used_bytes=used,
        memory_total_bytes=total,
        power_watts=power,
        hourly_cost_usd=price,
        interval_seconds=interval,
        namespace=namespace,
        pod=pod,
        container=container,
        team=team,
        holders=holders,
    )
