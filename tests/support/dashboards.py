"""The generated Grafana dashboards as tests see them: their panels' queries with template variables substituted the way Grafana does, and which panels would show "No data" against a running Prometheus.

The end-to-end test of the demo stack calls `panels_without_data(prometheus, load_dashboards())`
and fails on any name it returns.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "dashboards"

# Grafana's global variables a query may use, besides the dashboard's own.
BUILTIN_VARIABLES = frozenset(
    {
        "__rate_interval",
        "__interval",
        "__interval_ms",
        "__range",
        "__range_s",
        "__range_ms",
        "__url_time_range",
    }
)
# `$name`, `${name}`, `${name:format}` and the deprecated `[[name]]`.
VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]")


class PrometheusAPI(Protocol):
    """What the checker needs of a Prometheus: `aifinops.cli.demo.stack.Prometheus` has it."""

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path> and return its `data`, raising on an error status."""
        ...


@dataclass(frozen=True)
class PanelQuery:
    """One query of one panel, as written in the dashboard (variables not substituted)."""

    dashboard: str
    panel: str
    ref_id: str
    expr: str
    instant: bool
    time_from: str | None

    @property
    def name(self) -> str:
        """`<dashboard title>: <panel title>`, how failures name the panel."""
        return f"{self.dashboard}: {self.panel}"


def load_dashboards(directory: Path = DASHBOARDS) -> dict[str, dict[str, Any]]:
    """The committed dashboards by file name."""
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(directory.glob("*.json"))
    }


def iter_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows included, and the panels inside collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_queries(dashboard: Mapping[str, Any]) -> list[PanelQuery]:
    """The PromQL queries every panel runs (hidden queries left out), in panel order."""
    out = []
    for panel in iter_panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("hide") or "expr" not in target:
                continue
            out.append(
                PanelQuery(
                    dashboard=dashboard.get("title", "?"),
                    panel=panel.get("title", f"panel {panel.get('id')}"),
                    ref_id=target.get("refId", ""),
                    expr=target["expr"],
                    instant=bool(target.get("instant")) and not target.get("range"),
                    time_from=panel.get("timeFrom"),
                )
            )
    return out


def variable_values(dashboard: Mapping[str, Any]) -> dict[str, str]:
    """What each template variable becomes with "All" selected: its `allValue` (`.*` here)."""
    values = {}
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "datasource":
            continue
        values[variable["name"]] = variable.get("allValue") or ".*"
    return values


def substitute(
    expr: str,
    variables: Mapping[str, str],
    *,
    range_seconds: float,
    rate_interval: str = "1m",
    interval: str = "15s",
) -> str:
    """`expr` as Grafana sends it: built-ins and template variables replaced.

    Raises `KeyError` naming a variable that is neither a built-in nor in `variables`.
    """
    range_s = max(1, int(range_seconds))
    builtins = {
        "__rate_interval": rate_interval,
        "__interval": interval,
        "__interval_ms": str(_seconds(interval) * 1000),
        "__range": f"{range_s}s",
        "__range_s": str(range_s),
        "__range_ms": str(range_s * 1000),
    }

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name in builtins:
            return builtins[name]
        if name in variables:
            return variables[name]
        raise KeyError(f"unknown variable ${name} in {expr!r}")

    return VARIABLE.sub(replace, expr)


def time_range(time_from: str | None, now: float, default_seconds: float) -> tuple[float, float]:
    """The (start, end) a panel queries, in Unix seconds (UTC, as the dashboards' time zone):
    its relative time `now/d` (today so far), `now/M` (month to date) or `now-<duration>`, else
    the dashboard's range."""
    if time_from is None:
        return now - default_seconds, now
    moment = datetime.fromtimestamp(now, UTC)
    if time_from == "now/d":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        return start.timestamp(), now
    if time_from == "now/M":
        start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return start.timestamp(), now
    if time_from.startswith("now-"):
        return now - _seconds(time_from[4:]), now
    raise ValueError(f"unsupported relative time {time_from!r}")


def _seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    match = re.fullmatch(r"(\d+)([smhdw])", duration)
    if not match:
        raise ValueError(f"unsupported duration {duration!r}")
    return int(match.group(1)) * units[match.group(2)]


def has_data(result: Mapping[str, Any]) -> bool:
    """Whether a query result would draw anything: a series with a value, or a scalar."""
    if result.get("resultType") in ("scalar", "string"):
        return True
    return any(series.get("values") or series.get("value") for series in result.get("result", []))


def panels_without_data(
    prometheus: PrometheusAPI,
    dashboards: Iterable[Mapping[str, Any]],
    *,
    lookback_seconds: float = 300,
    rate_interval: str = "1m",
    variables: Mapping[str, str] | None = None,
    now: float | None = None,
) -> list[str]:
    """Panels that would show "No data" now, named `<dashboard>: <panel>`.

    Each panel is queried as Grafana would with "All" selected in every variable (or the values
    in `variables`): range queries over the last `lookback_seconds` (or the panel's own relative
    time, such as today so far), instant queries at the end with `$__range` the whole range. A
    panel has data when any of its queries returns a value. A panel with a `noValue` message
    shows that message instead of "No data" and is not reported. A query Prometheus refuses is
    reported with its error.
    """
    now = time.time() if now is None else now
    missing: list[str] = []
    for dashboard in dashboards:
        values = {**variable_values(dashboard), **(variables or {})}
        by_panel: dict[str, list[PanelQuery]] = {}
        for query in panel_queries(dashboard):
            by_panel.setdefault(query.name, []).append(query)
        empty_messages = {
            f"{dashboard.get('title', '?')}: {p.get('title')}"
            for p in iter_panels(dashboard)
            if p.get("fieldConfig", {}).get("defaults", {}).get("noValue") is not None
        }
        for name, queries in by_panel.items():
            errors = []
            found = False
            for query in queries:
                start, end = time_range(query.time_from, now, lookback_seconds)
                expr = substitute(
                    query.expr, values, range_seconds=end - start, rate_interval=rate_interval
                )
                try:
                    if query.instant:
                        result = prometheus.api("query", query=expr, time=f"{end:.3f}")
                    else:
                        step = max(5, int((end - start) / 100))
                        result = prometheus.api(
                            "query_range",
                            query=expr,
                            start=f"{start:.3f}",
                            end=f"{end:.3f}",
                            step=f"{step}s",
                        )
                except Exception as exc:  # Grafana shows the error on the panel: report it
                    errors.append(f"{query.ref_id}: {exc}")
                    continue
                if has_data(result):
                    found = True
                    break
            if errors:
                missing.append(f"{name} (query error: {'; '.join(errors)})")
            elif not found and name not in empty_messages:
                missing.append(name)
    return missing
