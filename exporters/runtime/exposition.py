"""Turns a collector registry into the Prometheus text (or OpenMetrics) exposition a scrape receives, fast.

prometheus_client's `generate_latest` builds a `Sample` with a label dict per series and formats it
with general-purpose escaping: about 1 s for 50,000 series. Here collectors that hold many series
yield `RowsMetricFamily` (label values as tuples, no per-series dict); each series' rendered prefix
`name{labels} ` is kept between scrapes, so a row costs a look-up and a concatenation. Any other
family goes through an equivalent generic path (text format) or the stock OpenMetrics encoder. `samples` of a `RowsMetricFamily` are built lazily, so the stock
encoders, `registry.get_sample_value` and tests still see ordinary samples.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

Row = tuple[tuple[str, ...], float | int]


class RowsMetricFamily(Metric):
    """A counter or gauge family given as rows of `(label values, value)` in `labelnames` order.

    ```python
    family = RowsMetricFamily("aifinops_llm_requests", "LLM calls.", "counter", ("team",))
    family.rows = [(("ml",), 12)]
    ```
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        typ: str,
        labelnames: Sequence[str],
        rows: Iterable[Row] = (),
    ) -> None:
        if typ == "counter" and name.endswith("_total"):
            name = name[: -len("_total")]
        if typ not in ("counter", "gauge"):
            raise ValueError(f"RowsMetricFamily supports counter and gauge, not {typ}")
        self._samples: list[Sample] | None = None
        super().__init__(name, documentation, typ)
        self.labelnames = tuple(labelnames)
        self.rows: list[Row] = list(rows)

    @property
    def sample_name(self) -> str:
        """The name its samples carry (`_total` added for counters)."""
        return self.name + "_total" if self.type == "counter" else self.name

    @property
    def samples(self) -> list[Sample]:
        """Ordinary samples, built on first use (the fast encoders never need them)."""
        if self._samples is None:
            name = self.sample_name
            names = self.labelnames
            self._samples = [
                Sample(name, dict(zip(names, values, strict=True)), value, None, None, None)
                for values, value in self.rows
            ]
        return self._samples

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        # Metric.__init__ assigns an empty list; rows are the source of truth.
        self._samples = value or None


def render_metrics(registry: CollectorRegistry, accept: str) -> tuple[bytes, str]:
    """Encode every metric of `registry` in the format the scraper's Accept header asks for."""
    _encoder, content_type = choose_encoder(accept)
    if content_type.startswith("application/openmetrics-text"):
        return encode_openmetrics(registry), content_type
    return encode_text(registry), content_type


# Go's float formatting, as every Prometheus client writes values ("1.0", "1e+06").
# (Typed here: prometheus_client ships the function without annotations.)
_value: Callable[[float], str] = floatToGoString
_openmetrics_latest: Callable[[Any], bytes] = openmetrics.generate_latest


class _Escaper:
    """Escapes label values (backslash, quote, newline), remembering values already seen."""

    def __init__(self) -> None:
        self._cache: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        cached = self._cache.get(value)
        if cached is not None:
            return cached
        escaped = value
        if "\\" in value or '"' in value or "\n" in value:
            escaped = value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
        if len(self._cache) < 200_000:
            self._cache[value] = escaped
        return escaped


_escape = _Escaper()


def _help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def _row_value(value: float | int) -> str:
    # Integers as integers, floats in their shortest exact form: both formats accept either, and
    # it is several times cheaper than Go-style formatting.
    if type(value) is int:
        return str(value)
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


# Series prefixes (`name{a="x",b="y"} `) rendered in earlier scrapes, per family: label sets are
# mostly the same scrape after scrape, so most rows cost one look-up and one concatenation.
_PREFIXES: dict[tuple[str, tuple[str, ...]], dict[tuple[str, ...], str]] = {}
_PREFIX_LIMIT = 1_000_000


def _render_rows(metric: RowsMetricFamily, out: list[str]) -> None:
    name = metric.sample_name
    if not metric.labelnames:
        out.extend(f"{name} {_row_value(value)}\n" for _values, value in metric.rows)
        return
    cache = _PREFIXES.setdefault((name, metric.labelnames), {})
    if len(cache) > _PREFIX_LIMIT:
        cache.clear()
    template = name + "{" + ",".join(f'{label}="%s"' for label in metric.labelnames) + "} "
    esc = _escape
    get = cache.get
    fmt = _row_value
    for values, value in metric.rows:
        prefix = get(values)
        if prefix is None:
            prefix = cache[values] = template % tuple(map(esc, values))
        out.append(prefix + fmt(value) + "\n")


def _sample_line(sample: Sample) -> str:
    labels = sample.labels
    if labels:
        body = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
        line = f"{sample.name}{{{body}}} {_value(sample.value)}"
    else:
        line = f"{sample.name} {_value(sample.value)}"
    if sample.timestamp is not None:
        line += f" {int(float(sample.timestamp) * 1000):d}"
    return line + "\n"


_TEXT_TYPES = {
    "info": "gauge",
    "stateset": "gauge",
    "gaugehistogram": "histogram",
    "unknown": "untyped",
}


def encode_text(registry: Any) -> bytes:
    """The Prometheus text format 0.0.4, as `prometheus_client.generate_latest` writes it."""
    out: list[str] = []
    for metric in registry.collect():
        name = metric.name
        typ = metric.type
        if typ == "counter":
            name += "_total"
        elif typ == "info":
            name += "_info"
        out.append(f"# HELP {name} {_help(metric.documentation)}\n")
        out.append(f"# TYPE {name} {_TEXT_TYPES.get(typ, typ)}\n")
        if isinstance(metric, RowsMetricFamily):
            _render_rows(metric, out)
            continue
        # OpenMetrics-only samples become gauges of their own after the family, as the stock
        # encoder does, so the text format never carries a sample its TYPE line does not cover.
        extra: dict[str, list[str]] = {}
        for sample in metric.samples:
            suffix = sample.name[len(metric.name) :]
            if suffix in ("_created", "_gsum", "_gcount") and sample.name.startswith(metric.name):
                extra.setdefault(suffix, []).append(_sample_line(sample))
            else:
                out.append(_sample_line(sample))
        for suffix, lines in sorted(extra.items()):
            out.append(f"# HELP {metric.name}{suffix} {_help(metric.documentation)}\n")
            out.append(f"# TYPE {metric.name}{suffix} gauge\n")
            out.extend(lines)
    return "".join(out).encode()


class _One:
    """A registry-like holder of one family, to reuse the stock OpenMetrics encoder for it."""

    def __init__(self, metric: Metric) -> None:
        self._metric = metric

    def collect(self) -> Iterable[Metric]:
        return [self._metric]


def encode_openmetrics(registry: Any) -> bytes:
    """OpenMetrics 1.0 text; row families fast, others through the stock encoder."""
    out: list[str] = []
    for metric in registry.collect():
        if not isinstance(metric, RowsMetricFamily):
            text = _openmetrics_latest(_One(metric)).decode()
            out.append(text[: -len("# EOF\n")])
            continue
        out.append(f"# HELP {metric.name} {_om_help(metric.documentation)}\n")
        out.append(f"# TYPE {metric.name} {metric.type}\n")
        _render_rows(metric, out)
    out.append("# EOF\n")
    return "".join(out).encode()


def _om_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
