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
    loads,
    make_event,
    parse_envelope,
    parse_event,
)
from .gpu import GPUEvent, GPUSample, parse_gpu_event, parse_gpu_sample
from .usage import (
    TOKEN_TYPES,
    UsageEvent,
    UsageRecord,
    otel_provider_name,
    parse_usage,
    parse_usage_event,
    prices_provider_id,
)

__all__ = [
    "ANOMALY_TYPE",
    "GPU_SAMPLE_TYPE",
    "TOKEN_TYPES",
    "USAGE_TYPE",
    "Envelope",
    "EventError",
    "GPUEvent",
    "GPUSample",
    "Problem",
    "UsageEvent",
    "UsageRecord",
    "decode",
    "encode",
    "loads",
    "make_event",
    "otel_provider_name",
    "parse_envelope",
    "parse_event",
    "parse_gpu_event",
    "parse_gpu_sample",
    "parse_usage",
    "parse_usage_event",
    "prices_provider_id",
]
