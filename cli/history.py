"""Recorded history for the demo's Prometheus: the fast tier's per team and model rates of the demo
fleet's normal traffic over the past hour, written as TSDB blocks with promtool before Prometheus
starts.

The fast tier compares a spike with the maximum of its own 30 s rate between 1h30m and 30m ago,
and on a Prometheus without any such baseline it stays silent on purpose (a fresh Prometheus must
not page for every team already spending). A demo that starts from nothing would therefore catch
nothing for 40 minutes. So before Prometheus starts, the demo writes the history a Prometheus
watching the fleet would have recorded: the traffic generator draws the fleet's calls for every
5 s scrape of the past hour (same workloads, same daily cycle, same Poisson noise), the exporters'
pricer prices each call, and each fast-tier recording rule of the form
`sum by (<labels>) (rate(aifinops_llm_<x>_total{...}[<window>]))` gets the value that rule would
have computed from those counters. Only those recorded series are written: raw counters, GPU
series and the slower tiers start empty, as on a new Prometheus.
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
        http, _ = generator.tick(float(step_seconds))
        for event in http:
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


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def openmetrics(
    records: Sequence[RateRecord],
    values: dict[str, dict[tuple[str, ...], list[tuple[float, float]]]],
) -> str:
    """The series in the OpenMetrics text format promtool backfills from."""
    lines = []
    for record in records:
        lines.append(f"# TYPE {record.record} gauge")
        for labels, points in sorted(values.get(record.record, {}).items()):
            selector = ",".join(
                f'{name}="{_escape(value)}"' for name, value in zip(record.by, labels, strict=True)
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
) -> int:
    """Write `hours` of the fast tier's recorded history of `workloads`, ending at `end` (now), as
    TSDB blocks into `data_dir` (Prometheus's `--storage.tsdb.path`, before it starts). Returns
    the number of series written. Raises `StackError` when promtool fails."""
    records = rate_records(rule_files)
    if not records:
        return 0
    end = end or datetime.now(UTC)
    start = end - timedelta(hours=hours)
    values = simulate(
        records,
        workloads,
        start=start,
        end=end,
        step_seconds=step_seconds,
        daily_cycle=daily_cycle,
        seed=seed,
    )
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
