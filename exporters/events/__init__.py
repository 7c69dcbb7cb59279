"""The event schema every part shares: the CloudEvents envelope and each event type's `data`.

`codec` (JSON in and out, the `Problem` listing), `schema` (one msgspec `Struct` per event part,
read by msgspec's typed decode and by the every-problem listing), `envelope` (CloudEvents
attributes), `usage` (LLM usage events), `gpu` (GPU sample events) and `providers` (provider names
and response shapes).
"""

from .codec import (
    EventError,
    Problem,
    decode,
    encode,
    loads,
    lone_surrogate_field,
    may_hold_lone_surrogate,
)
from .envelope import (
    ANOMALY_TYPE,
    GPU_SAMPLE_TYPE,
    USAGE_TYPE,
    Envelope,
    make_event,
    parse_envelope,
    parse_event,
)
from .gpu import GPUEvent, GPUSample, parse_gpu_event, parse_gpu_sample
from .providers import otel_provider_name, prices_provider_id
from .usage import (
    TOKEN_TYPES,
    UsageEvent,
    UsageRecord,
    decode_usage_event,
    parse_usage,
    parse_usage_event,
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
    "decode_usage_event",
    "encode",
    "loads",
    "lone_surrogate_field",
    "make_event",
    "may_hold_lone_surrogate",
    "otel_provider_name",
    "parse_envelope",
    "parse_event",
    "parse_gpu_event",
    "parse_gpu_sample",
    "parse_usage",
    "parse_usage_event",
    "prices_provider_id",
]
