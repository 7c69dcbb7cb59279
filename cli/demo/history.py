"""Recorded history for the demo's Prometheus: the fast tier's per team and model rates of the demo
fleet's normal traffic over the past hour, written as TSDB blocks with promtool before Prometheus
starts.

The fast tier compares a spike with the maximum of its own 30 s rate between 1h30m and 30m ago
(its first minutes while its history is shorter), and on a Prometheus without any baseline it
stays silent on purpose (a fresh Prometheus must not page for every team already spending). A demo
that starts from nothing would therefore catch a step only from its 15th minute. So before
Prometheus starts, the demo writes the history a Prometheus
watching the fleet would have recorded: the traffic generator draws the fleet's calls for every
5 s scrape of the past hour (same workloads, same daily cycle, same Poisson noise), the exporters'
pricer prices each call, and each fast-tier recording rule of the form
`sum by (<labels>) (rate(aifinops_llm_<x>_total{...}[<window>]))` gets the value that rule would
have computed from those counters.

The savings tier (docs/savings.md) judges a GPU on at least a day of 5-minute steps, so the demo
also writes the steps it records per GPU (5-minute average and peak utilisation, memory peak,
busy and off-hours flags) over the past `gpu_days`, from the simulated fleet's readings at those
times (`SimulatedSource.reading_at`, every `GPU_SAMPLE_SECONDS`): its first evaluation then
recommends what the fleet's patterns call for. Only those recorded series are written: raw
counters, GPU series and the other tiers start empty, as on a new Prometheus.
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from aifinops.exporters.events import parse_usage
from aifinops.exporters.gpu.model import GPUReading
from aifinops.exporters.gpu.simulated import SimulatedSource
from aifinops.exporters.pricing.pricer import Pricer

from .stack import StackError, find_binary
from .traffic import TrafficGenerator, Workload

log = logging.getLogger(__name__)

# The fast tier's rate recordings: one sum of one LLM counter's rate per label set.
_RATE_RULE = re.compile(
    r"^\s*sum\s+by\s*\((?P<by>[\w\s,]*)\)\s*"
    r"\(\s*rate\(\s*(?P<metric>aifinops_llm_\w+_total)\s*(\{[^}]*\})?\s*"
    r"\[(?P<window>(\d+[smhd])+)\]\s*\)\s*\)\s*$"
)
_DURATION_PART = re.compile(r"(\d+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_USAGE_LABELS = ("provider", "model", "team", "app")
# The savings tier's per-GPU step recordings (jsonnet/rules/savings.libsonnet), by form.
_GPU_KEY = ("node", "gpu", "uuid")
_GPU_STEP = re.compile(
    r"^max by \(node, gpu, uuid\) \((?P<fn>avg|max)_over_time\("
    r"(?P<metric>aifinops_gpu_utilization_ratio|aifinops_gpu_memory_used_bytes)"
    r"(\{[^}]*\})?\[(?P<window>(\d+[smhd])+)\]\)\)$"
)
_GPU_BUSY = re.compile(r"^(?P<source>[\w:]+) >= bool (?P<threshold>[\d.]+)$")
_GPU_OFF_HOURS = re.compile(
    r"^\((?P<source>[\w:]+) \* 0 \+ 1 unless on \(\) \(\(hour\(\) >= (?P<start>\d+) < (?P<end>\d+)\)"
)
_GPU_PRODUCT = re.compile(r"^(?P<a>[\w:]+) \* on \(node, gpu, uuid\) (?P<b>[\w:]+)$")
_DAY_OF_WEEK = re.compile(r"day_of_week\(\) == (\d)")
# How often the history reads the simulated fleet within each step (the exporter's own interval
# is shorter; a 15 s sampling keeps a week of history to a few seconds of work).
GPU_SAMPLE_SECONDS = 15


@dataclass(frozen=True)
class RateRecord:
    """A recording rule `record = sum by (by) (rate(metric[window_seconds]))`."""

    record: str
    metric: str
    by: tuple[str, ...]
    window_seconds: int


def rate_records(rule_files: Iterable[Path]) -> list[RateRecord]:
    """The recording rules of that form in `rule_files`, over the LLM usage labels."""
    out = []
    for path in rule_files:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for group in document.get("groups", []):
            for rule in group.get("rules", []):
                match = _RATE_RULE.match(str(rule.get("expr", "")))
                if "record" not in rule or not match:
                    continue
                by = tuple(label.strip() for label in match["by"].split(",") if label.strip())
                if all(label in _USAGE_LABELS for label in by):
                    window = sum(
                        int(n) * _UNIT_SECONDS[unit]
                        for n, unit in _DURATION_PART.findall(match["window"])
                    )
                    out.append(RateRecord(rule["record"], match["metric"], by, window))
    return out


def _increment(metric: str, data: dict[str, Any], cost: Decimal) -> float | None:
    """What one call adds to an LLM counter (None for a counter this module does not model)."""
    if metric == "aifinops_llm_requests_total":
        return 1.0
    if metric == "aifinops_llm_tokens_total":
        # The four token types are disjoint and sum to all input plus all output tokens.
        return float(data["input_tokens"] + data["output_tokens"])
    if metric == "aifinops_llm_cost_usd_total":
        return float(cost)
    return None


def simulate(
    records: Sequence[RateRecord],
    workloads: Sequence[Workload],
    *,
    start: datetime,
    end: datetime,
    step_seconds: int,
    daily_cycle: bool = True,
    seed: int = 0,
) -> dict[str, dict[tuple[str, ...], list[tuple[float, float]]]]:
    """Each record's series as the recording rule would have computed them from scrapes every
    `step_seconds` between `start` and `end`: record -> label values -> [(unix time, value)]."""
    clock = [start]
    generator = TrafficGenerator(
        "http://history.invalid",
        workloads,
        daily_cycle=daily_cycle,
        seed=seed,
        clock=lambda: clock[0],
    )
    pricer = Pricer()
    metrics = {r.metric for r in records}
    keys = {r.record: r for r in records}
    # Counter values per (metric, label set of the record) at each scrape.
    counters: dict[str, dict[tuple[str, ...], float]] = {
        r.record: defaultdict(float) for r in records
    }
    scrapes: list[tuple[float, dict[str, dict[tuple[str, ...], float]]]] = []
    while clock[0] <= end:
        # No sink or URL: every workload's calls, whatever its path, come back as `http`.
        for event in generator.tick(float(step_seconds)).http:
            data = event["data"]
            cost = (
                pricer.price(parse_usage(data), clock[0]).total
                if "aifinops_llm_cost_usd_total" in metrics
                else Decimal(0)
            )
            for record in keys.values():
                value = _increment(record.metric, data, cost)
                if value is not None:
                    counters[record.record][tuple(data[label] for label in record.by)] += value
        scrapes.append((clock[0].timestamp(), {name: dict(c) for name, c in counters.items()}))
        clock[0] += timedelta(seconds=step_seconds)
    out: dict[str, dict[tuple[str, ...], list[tuple[float, float]]]] = {}
    for record in keys.values():
        # rate() over a window holding n = window/step samples spans (n - 1) steps; with the
        # samples evenly spaced its extrapolation gives exactly the increase over that span.
        back = max(1, record.window_seconds // step_seconds - 1)
        series: dict[tuple[str, ...], list[tuple[float, float]]] = defaultdict(list)
        for i in range(back, len(scrapes)):
            t, now = scrapes[i]
            _, then = scrapes[i - back]
            for labels, value in now[record.record].items():
                previous = then[record.record].get(labels, 0.0)
                series[labels].append((t, (value - previous) / (back * step_seconds)))
        out[record.record] = dict(series)
    return out


@dataclass(frozen=True)
class GPUStepRecord:
    """A savings-tier recording of one value per GPU and step: `kind` is `avg` or `max` (of
    `metric` over `window_seconds`), `busy` (`source` >= `threshold`), `off_hours` (outside
    [`start_hour`, `end_hour`) UTC on `days`, 0 = Sunday) or `product` (`source` x `other`)."""

    record: str
    kind: str
    metric: str = ""
    window_seconds: int = 0
    source: str = ""
    other: str = ""
    threshold: float = 0.0
    start_hour: int = 0
    end_hour: int = 0
    days: tuple[int, ...] = ()


def gpu_step_records(rule_files: Iterable[Path]) -> tuple[list[GPUStepRecord], int]:
    """The savings tier's per-GPU step recordings in `rule_files`, in rule order, and the
    group's interval in seconds (0 when there is no such group)."""
    out: list[GPUStepRecord] = []
    interval = 0
    for path in rule_files:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for group in document.get("groups", []):
            for rule in group.get("rules", []):
                record, expr = rule.get("record"), " ".join(str(rule.get("expr", "")).split())
                if record is None:
                    continue
                step = _gpu_step(record, expr)
                if step is not None:
                    out.append(step)
                    interval = _seconds(str(group.get("interval", "1m")))
    return out, interval


def _seconds(duration: str) -> int:
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(duration))


def _gpu_step(record: str, expr: str) -> GPUStepRecord | None:
    if m := _GPU_STEP.match(expr):
        return GPUStepRecord(record, m["fn"], m["metric"], _seconds(m["window"]))
    if m := _GPU_BUSY.match(expr):
        return GPUStepRecord(record, "busy", source=m["source"], threshold=float(m["threshold"]))
    if m := _GPU_OFF_HOURS.match(expr):
        days = tuple(int(d) for d in _DAY_OF_WEEK.findall(expr))
        return GPUStepRecord(
            record, "off_hours", source=m["source"], start_hour=int(m["start"]),
            end_hour=int(m["end"]), days=days,
        )  # fmt: skip
    if m := _GPU_PRODUCT.match(expr):
        return GPUStepRecord(record, "product", source=m["a"], other=m["b"])
    return None


def _reading_value(reading: GPUReading, metric: str) -> float:
    if metric == "aifinops_gpu_utilization_ratio":
        return reading.utilization_ratio
    return float(reading.memory_used_bytes)


def simulate_gpu_steps(
    records: Sequence[GPUStepRecord],
    fleet: SimulatedSource,
    *,
    start: datetime,
    end: datetime,
    step_seconds: int,
) -> dict[str, dict[tuple[str, ...], list[tuple[float, float]]]]:
    """Each record's per-GPU series as the savings group would have recorded them every
    `step_seconds` between `start` and `end` (now, the fleet's start): record -> (node, gpu,
    uuid) -> [(unix time, value)]."""
    out: dict[str, dict[tuple[str, ...], list[tuple[float, float]]]] = {
        r.record: defaultdict(list) for r in records
    }
    now = end.timestamp()
    longest = max((r.window_seconds for r in records), default=0)
    # Readings every GPU_SAMPLE_SECONDS, newest last, reused by every step whose window holds them.
    reads: list[tuple[float, tuple[GPUReading, ...]]] = []
    t = start.timestamp() - longest
    while t <= now:
        reads.append((t, fleet.reading_at(t).gpus))
        t += GPU_SAMPLE_SECONDS
    first = 0
    at = start.timestamp()
    while at <= now:
        while first < len(reads) and reads[first][0] <= at - longest:
            first += 1
        when = datetime.fromtimestamp(at, UTC)
        values: dict[tuple[str, tuple[str, ...]], float] = {}
        for record in records:
            if record.kind in ("avg", "max"):
                window = [
                    g
                    for ts, gpus in reads[first:]
                    if at - record.window_seconds < ts <= at
                    for g in gpus
                ]
                by_gpu: dict[tuple[str, ...], list[float]] = defaultdict(list)
                for g in window:
                    by_gpu[(g.node, str(g.index), g.uuid)].append(_reading_value(g, record.metric))
                for key, xs in by_gpu.items():
                    values[(record.record, key)] = (
                        sum(xs) / len(xs) if record.kind == "avg" else max(xs)
                    )
                continue
            for (name, key), source in list(values.items()):
                if name != record.source:
                    continue
                if record.kind == "busy":
                    value = 1.0 if source >= record.threshold else 0.0
                elif record.kind == "off_hours":
                    working = (when.isoweekday() % 7) in record.days and (
                        record.start_hour <= when.hour < record.end_hour
                    )
                    value = 0.0 if working else 1.0
                else:
                    value = source * values.get((record.other, key), 0.0)
                values[(record.record, key)] = value
        for (name, key), value in values.items():
            out[name][key].append((at, value))
        at += step_seconds
    return {name: dict(series) for name, series in out.items()}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def openmetrics(
    records: Sequence[RateRecord | GPUStepRecord],
    values: dict[str, dict[tuple[str, ...], list[tuple[float, float]]]],
) -> str:
    """The series in the OpenMetrics text format promtool backfills from."""
    lines = []
    for record in records:
        by = record.by if isinstance(record, RateRecord) else _GPU_KEY
        lines.append(f"# TYPE {record.record} gauge")
        for labels, points in sorted(values.get(record.record, {}).items()):
            selector = ",".join(
                f'{name}="{_escape(value)}"' for name, value in zip(by, labels, strict=True)
            )
            lines.extend(f"{record.record}{{{selector}}} {v!r} {t:.3f}" for t, v in points)
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def backfill(
    data_dir: Path,
    rule_files: Sequence[Path],
    workloads: Sequence[Workload],
    *,
    hours: float = 1.0,
    step_seconds: int = 5,
    end: datetime | None = None,
    daily_cycle: bool = True,
    seed: int = 0,
    fleet: SimulatedSource | None = None,
    gpu_days: float = 3.0,
) -> int:
    """Write `hours` of the fast tier's recorded history of `workloads`, and with a `fleet`
    `gpu_days` of the savings tier's per-GPU steps, ending at `end` (now), as TSDB blocks into
    `data_dir` (Prometheus's `--storage.tsdb.path`, before it starts). Returns the number of
    series written. Raises `StackError` when promtool fails."""
    records: list[RateRecord | GPUStepRecord] = list(rate_records(rule_files))
    end = end or datetime.now(UTC)
    values: dict[str, dict[tuple[str, ...], list[tuple[float, float]]]] = {}
    if records and hours > 0 and workloads:
        values = simulate(
            [r for r in records if isinstance(r, RateRecord)],
            workloads,
            start=end - timedelta(hours=hours),
            end=end,
            step_seconds=step_seconds,
            daily_cycle=daily_cycle,
            seed=seed,
        )
    steps, interval = gpu_step_records(rule_files)
    if fleet is not None and steps:
        # Steps on the group's interval grid, the last at or before `end`.
        last = datetime.fromtimestamp(end.timestamp() // interval * interval, UTC)
        values |= simulate_gpu_steps(
            steps, fleet, start=last - timedelta(days=gpu_days), end=last, step_seconds=interval
        )
        records += steps
    if not values:
        return 0
    data_dir.mkdir(parents=True, exist_ok=True)
    source = data_dir.parent / "history.om"
    source.write_text(openmetrics(records, values), encoding="utf-8")
    result = subprocess.run(
        [find_binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", "--quiet",
         str(source), str(data_dir)],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    source.unlink()
    if result.returncode != 0:
        raise StackError(f"promtool could not backfill the history: {result.stderr.strip()}")
    return sum(len(series) for series in values.values())
