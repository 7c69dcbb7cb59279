"""The fast exposition encoders say exactly what prometheus_client's stock encoders say."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
    generate_latest,
)
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily
from prometheus_client.openmetrics.exposition import generate_latest as om_generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
from prometheus_client.parser import text_string_to_metric_families

from aifinops.exporters.runtime.exposition import (
    RowsMetricFamily,
    encode_openmetrics,
    encode_text,
    render_metrics,
)

AWKWARD = ["plain", 'quote"d', "back\\slash", "new\nline", "ünïcode", ""]


class Rows:
    def collect(self):
        yield RowsMetricFamily(
            "demo_events",
            "Events with awkward label values.\nSecond line \\ backslash.",
            "counter",
            ("a", "b"),
            [((v, str(i)), i * 1.5) for i, v in enumerate(AWKWARD)] + [(("big", "x"), 10**20)],
        )
        yield RowsMetricFamily(
            "demo_level",
            "A gauge with special values.",
            "gauge",
            ("kind",),
            [(("inf",), float("inf")), (("ninf",), float("-inf")), (("zero",), 0), (("f",), 0.1)],
        )
        yield RowsMetricFamily("demo_scalar", "No labels.", "gauge", (), [((), 3)])
        plain = GaugeMetricFamily("demo_plain", "A stock gauge family.", labels=["x"])
        plain.add_metric(['with "quote"'], 2.5, timestamp=1700000000.5)
        yield plain
        histogram = GaugeHistogramMetricFamily(
            "demo_gauge_histogram",
            "A gauge histogram.",
            buckets=[("1", 4), ("+Inf", 5)],
            gsum_value=7,
        )
        yield histogram


def registry() -> CollectorRegistry:
    reg = CollectorRegistry()
    reg.register(Rows())
    Counter("demo_stock", "Stock counter (has _created).", ["code"], registry=reg).labels(
        "200"
    ).inc(3)
    Gauge("demo_stock_gauge", "Stock gauge.", registry=reg).set(-2)
    Histogram("demo_latency_seconds", "Stock histogram.", registry=reg).observe(0.3)
    Summary("demo_summary_seconds", "Stock summary.", registry=reg).observe(1.0)
    Info("demo_build", "Stock info.", registry=reg).info({"version": "1.2"})
    Enum("demo_state", "Stock enum.", states=["a", "b"], registry=reg).state("b")
    return reg


def samples(families):
    out = {}
    for family in families:
        for s in family.samples:
            out[(family.name, family.type, s.name, tuple(sorted(s.labels.items())))] = (
                s.value,
                s.timestamp,
            )
    return out


def test_text_format_matches_the_stock_encoder():
    reg = registry()
    fast = encode_text(reg).decode()
    stock = generate_latest(reg).decode()
    assert samples(text_string_to_metric_families(fast)) == samples(
        text_string_to_metric_families(stock)
    )
    # Same HELP and TYPE lines, same family order.
    assert [line for line in fast.splitlines() if line.startswith("#")] == [
        line for line in stock.splitlines() if line.startswith("#")
    ]


def test_openmetrics_matches_the_stock_encoder():
    reg = registry()
    fast = encode_openmetrics(reg).decode()
    stock = om_generate_latest(reg).decode()
    assert fast.endswith("# EOF\n")
    assert samples(om_parse(fast)) == samples(om_parse(stock))


def test_row_families_still_offer_ordinary_samples():
    reg = registry()
    assert reg.get_sample_value("demo_events_total", {"a": 'quote"d', "b": "1"}) == 1.5
    assert reg.get_sample_value("demo_scalar", {}) == 3


def test_content_negotiation():
    reg = registry()
    body, content_type = render_metrics(reg, "application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")
    body, content_type = render_metrics(reg, "")
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert b"# EOF" not in body
