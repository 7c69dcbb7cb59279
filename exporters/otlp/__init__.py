"""OTLP/HTTP ingest of OpenTelemetry GenAI spans and metrics as usage events (docs/otlp.md)."""

from .api import METRICS_PATH, OTLPAPI, TRACES_PATH
from .metrics import MetricStreams, metrics_to_events
from .spans import SpanSettings, spans_to_events

__all__ = [
    "METRICS_PATH",
    "OTLPAPI",
    "TRACES_PATH",
    "MetricStreams",
    "SpanSettings",
    "metrics_to_events",
    "spans_to_events",
]
