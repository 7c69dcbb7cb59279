"""A real `openai` SDK app with `opentelemetry-instrumentation-openai-v2` and the OTLP/HTTP span exporter, priced by the real token exporter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from aifinops.exporters.events import USAGE_TYPE, make_event
from support.token_daemon import TokenDaemon

pytestmark = pytest.mark.integration

CALLS = 3
USAGE = {
    "prompt_tokens": 12_000,
    "completion_tokens": 700,
    "total_tokens": 12_700,
    "prompt_tokens_details": {"cached_tokens": 8_000},
    "completion_tokens_details": {"reasoning_tokens": 0},
}

APP = """
import os
import openai
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

# Endpoint, service name and resource attributes come from the OTEL_* variables.
provider = TracerProvider(resource=Resource.create())
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(provider)
OpenAIInstrumentor().instrument()
client = openai.OpenAI(base_url=os.environ["LLM_BASE_URL"], api_key="test")
for i in range(int(os.environ["CALLS"])):
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
provider.shutdown()
"""


class _OpenAICompatible(BaseHTTPRequestHandler):
    """Answers chat completions like OpenAI does, usage with cached tokens included."""

    served = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        type(self).served += 1
        body = json.dumps(
            {
                "id": f"chatcmpl-it-{type(self).served}",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": "gpt-4o-2024-08-06",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "hello"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": USAGE,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def llm() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OpenAICompatible)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    server.server_close()


def test_instrumented_openai_app_costs_what_its_usage_costs_through_v1_events(
    tmp_path: Path, llm: str, request: pytest.FixtureRequest
):
    daemon = TokenDaemon(tmp_path / "exporter")
    daemon.start()
    request.addfinalizer(daemon.stop)
    script = tmp_path / "app.py"
    script.write_text(APP)
    env = {
        **os.environ,
        "LLM_BASE_URL": llm,
        "CALLS": str(CALLS),
        "OTEL_EXPORTER_OTLP_ENDPOINT": daemon.url,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_SERVICE_NAME": "support-bot",
        "OTEL_RESOURCE_ATTRIBUTES": "aifinops.team=ml,deployment.environment.name=test",
    }
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert _OpenAICompatible.served == CALLS

    assert daemon.sample("aifinops_llm_requests_total", team="ml", app="support-bot") == CALLS
    assert (
        daemon.sample("aifinops_ingest_events_total", source="otlp_traces", outcome="accepted")
        == CALLS
    )
    # openai-v2 (2.4b0) reports chat completions' prompt_tokens as input tokens, all of them,
    # but not prompt_tokens_details.cached_tokens: its spans carry no cache split to price.
    reported = {
        "provider": "openai",
        "model": "gpt-4o-2024-08-06",
        "input_tokens": USAGE["prompt_tokens"],
        "output_tokens": USAGE["completion_tokens"],
        "team": "via-events",
        "app": "support-bot",
    }
    events = [make_event(USAGE_TYPE, "it", reported) for _ in range(CALLS)]
    assert daemon.post(events)[0] == 202
    for family in ("aifinops_llm_cost_usd_total", "aifinops_llm_tokens_total"):
        for token_type in ("input", "cache_read", "output"):
            via_otlp = daemon.sample(family, team="ml", token_type=token_type)
            assert via_otlp == daemon.sample(family, team="via-events", token_type=token_type)
    assert daemon.sample("aifinops_llm_tokens_total", team="ml", token_type="input") == 36_000
    assert daemon.sample("aifinops_llm_cost_usd_total", team="ml") > 0
