"""The event schema every part shares: the CloudEvents envelope and each event type's `data`."""

from .envelope import (
    ANOMALY_TYPE,
    GPU_SAMPLE_TYPE,
    USAGE_TYPE,
    Envelope,
    EventError,
    Problem,
    decode,
    encode,
    make_event,
    parse_envelope,
)

__all__ = [
    "ANOMALY_TYPE",
    "GPU_SAMPLE_TYPE",
    "USAGE_TYPE",
    "Envelope",
    "EventError",
    "Problem",
    "decode",
    "encode",
    "make_event",
    "parse_envelope",
]
