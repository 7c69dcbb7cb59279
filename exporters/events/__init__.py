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
from .gpu import GPUSample, parse_gpu_sample

__all__ = [
    "ANOMALY_TYPE",
    "GPU_SAMPLE_TYPE",
    "USAGE_TYPE",
    "Envelope",
    "EventError",
    "GPUSample",
    "Problem",
    "decode",
    "encode",
    "make_event",
    "parse_envelope",
    "parse_gpu_sample",
]
