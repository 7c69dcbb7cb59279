"""Hand-built OTLP/HTTP requests (GenAI spans and token metrics) and a client that posts them."""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import os
import time
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


def value(v: Any) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    return AnyValue(string_value=str(v))


def kvs(attrs: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=value(v)) for k, v in attrs.items()]


def span(attrs: dict[str, Any], *, error: bool = False, span_id: bytes | None = None) -> Any:
    """A client span ending now with these attributes and random ids."""
    now = time.time_ns()
    result = trace_pb2.Span(
        trace_id=os.urandom(16),
        span_id=span_id or os.urandom(8),
        name=f"chat {attrs.get('gen_ai.request.model', '')}",
        kind=trace_pb2.Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=now - 1_000_000_000,
        end_time_unix_nano=now,
        attributes=kvs(attrs),
    )
    if error:
        result.status.code = trace_pb2.Status.STATUS_CODE_ERROR
    return result


def traces(
    spans: list[Any], resource: dict[str, Any] | None = None, scope: str = "test.instrumentation"
) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(kvs(resource or {"service.name": "chat"}))
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = scope
    scope_spans.spans.extend(spans)
    return request


def metrics(
    points: list[tuple[str, str, dict[str, Any], float, int, int]],
    resource: dict[str, Any],
    *,
    kind: str = "histogram",
    cumulative: bool = True,
) -> ExportMetricsServiceRequest:
    """Points as (metric name, unused, attributes, value, start ns, time ns)."""
    temporality = (
        metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
        if cumulative
        else metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
    )
    request = ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    resource_metrics.resource.attributes.extend(kvs(resource))
    scope_metrics = resource_metrics.scope_metrics.add()
    scope_metrics.scope.name = "test.instrumentation"
    for name, _, attrs, total, start, at in points:
        metric = scope_metrics.metrics.add(name=name, unit="{token}")
        if kind == "histogram":
            metric.histogram.aggregation_temporality = temporality
            metric.histogram.data_points.add(
                attributes=kvs(attrs),
                start_time_unix_nano=start,
                time_unix_nano=at,
                count=1,
                sum=total,
            )
        else:
            metric.sum.aggregation_temporality = temporality
            metric.sum.is_monotonic = True
            metric.sum.data_points.add(
                attributes=kvs(attrs),
                start_time_unix_nano=start,
                time_unix_nano=at,
                as_int=int(total),
            )
    return request


def to_json(message: Any) -> bytes:
    """The OTLP/HTTP JSON encoding: camelCase names, trace and span ids as hex."""
    obj = json_format.MessageToDict(message)

    def fix(node: Any) -> None:
        if isinstance(node, dict):
            for key, item in node.items():
                if key in ("traceId", "spanId", "parentSpanId") and isinstance(item, str):
                    node[key] = base64.b64decode(item).hex()
                else:
                    fix(item)
        elif isinstance(node, list):
            for item in node:
                fix(item)

    fix(obj)
    return json.dumps(obj).encode()


def post(
    port: int,
    path: str,
    body: bytes,
    content_type: str = PROTOBUF,
    *,
    gzipped: bool = False,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """POST a body; the status, headers (lower case) and body of the answer."""
    sent = {"Content-Type": content_type, **(headers or {})}
    if gzipped:
        body = gzip.compress(body)
        sent["Content-Encoding"] = "gzip"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", path, body=body, headers=sent)
    resp = conn.getresponse()
    payload = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload


def trace_response(payload: bytes, content_type: str = PROTOBUF) -> ExportTraceServiceResponse:
    response = ExportTraceServiceResponse()
    if content_type == JSON:
        json_format.Parse(payload, response)
    else:
        response.ParseFromString(payload)
    return response


def metrics_response(payload: bytes) -> ExportMetricsServiceResponse:
    response = ExportMetricsServiceResponse()
    response.ParseFromString(payload)
    return response
