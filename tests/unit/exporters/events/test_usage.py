"""Usage event validation: token fields, provider response shapes, provider names, every problem listed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from aifinops.exporters.events import (
    USAGE_TYPE,
    EventError,
    make_event,
    otel_provider_name,
    parse_usage,
    parse_usage_event,
    prices_provider_id,
)


def usage(**data):
    base = {"provider": "openai", "model": "gpt-4o", "team": "ml", "app": "chat"}
    base.update(input_tokens=100, output_tokens=20)
    base.update(data)
    return {k: v for k, v in base.items() if v is not None}


def problems(data) -> dict[str, str]:
    with pytest.raises(EventError) as info:
        parse_usage(data)
    return {p.field: p.reason for p in info.value.problems}


def test_token_fields_give_the_disjoint_split():
    record = parse_usage(
        usage(input_tokens=1000, cache_read_tokens=600, cache_write_tokens=100, output_tokens=50)
    )
    assert record.token_split == (300, 600, 100, 50)
    assert sum(record.token_split) == 1050
    assert record.status == "ok"
    assert record.cost_usd is None
    assert record.usage["input_tokens"] == 1000
    assert record.usage["cache_read_tokens"] == 600


def test_optional_fields_default_and_team_app_may_be_empty():
    record = parse_usage(
        {"provider": "anthropic", "model": "m", "input_tokens": 1, "output_tokens": 0}
    )
    assert (record.team, record.app, record.cache_read_tokens, record.reasoning_tokens) == (
        "",
        "",
        0,
        0,
    )


def test_every_problem_is_listed_with_its_field():
    found = problems(
        {
            "provider": "Open AI",
            "model": "",
            "team": "a team",
            "input_tokens": -1,
            "output_tokens": 1.5,
            "cache_read_tokens": "3",
            "status": "failed",
            "cost_usd": "lots",
        }
    )
    assert set(found) == {
        "data.provider",
        "data.model",
        "data.team",
        "data.input_tokens",
        "data.output_tokens",
        "data.cache_read_tokens",
        "data.status",
        "data.cost_usd",
    }
    assert "non-negative integer" in found["data.input_tokens"]
    assert "[A-Za-z0-9._:/@-]" in found["data.team"]


def test_required_fields():
    found = problems({"team": "ml"})
    assert found == {
        "data.provider": "required",
        "data.input_tokens": "required",
        "data.output_tokens": "required",
        "data.model": "required (or a response that names its model)",
    }


def test_cache_tokens_cannot_exceed_input_and_reasoning_cannot_exceed_output():
    found = problems(usage(input_tokens=10, cache_read_tokens=8, cache_write_tokens=3))
    assert "exceed input_tokens (10)" in found["data.cache_read_tokens"]
    found = problems(usage(output_tokens=10, reasoning_tokens=11))
    assert "exceed output_tokens (10)" in found["data.reasoning_tokens"]


def test_absurd_values_and_reserved_label_values_are_refused():
    found = problems(usage(input_tokens=10**13, app="__other__", model="x" * 201))
    assert "at most" in found["data.input_tokens"]
    assert "reserved" in found["data.app"]
    assert "1-200 characters" in found["data.model"]
    assert "data.cost_usd" in problems(usage(cost_usd=-1))
    assert "data.cost_usd" in problems(usage(cost_usd=float("nan")))
    assert "data.input_tokens" in problems(usage(input_tokens=True))


def test_a_near_miss_of_a_field_is_a_typo_but_other_extra_fields_are_allowed():
    assert problems(usage(inptu_tokens=5)) == {
        "data.inptu_tokens": "unknown field (did you mean input_tokens?)"
    }
    assert parse_usage(usage(request_region="eu-west-1")).model == "gpt-4o"


def test_cost_usd_keeps_its_decimal_value():
    assert parse_usage(usage(cost_usd=0.1)).cost_usd == Decimal("0.1")
    assert parse_usage(usage(cost_usd=3)).cost_usd == Decimal(3)


@pytest.mark.parametrize(
    ("given", "label", "prices_id"),
    [
        ("openai", "openai", "openai"),
        ("gcp.gemini", "gcp.gemini", "google"),
        ("google", "gcp.gemini", "google"),
        ("aws.bedrock", "aws.bedrock", "aws"),
        ("aws", "aws.bedrock", "aws"),
        ("azure.ai.openai", "azure.ai.openai", "azure"),
        ("azure", "azure.ai.openai", "azure"),
        ("mistral_ai", "mistral_ai", "mistral"),
        ("mistral", "mistral_ai", "mistral"),
        ("x_ai", "x_ai", "x-ai"),
        ("x-ai", "x_ai", "x-ai"),
        ("Anthropic", "anthropic", "anthropic"),
        ("fireworks", "fireworks", "fireworks"),
        ("ibm.watsonx.ai", "ibm.watsonx.ai", None),
    ],
)
def test_provider_names_map_both_ways(given, label, prices_id):
    assert otel_provider_name(given) == label
    assert prices_provider_id(label) == prices_id
    assert parse_usage(usage(provider=given)).provider == label


def response_usage(provider, response, **data):
    return {
        "provider": provider,
        "team": "ml",
        "app": "chat",
        "response": response,
        **data,
    }


OPENAI_CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-4o-2024-08-06",
    "usage": {
        "prompt_tokens": 1200,
        "completion_tokens": 300,
        "total_tokens": 1500,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    },
}
OPENAI_RESPONSES = {
    "id": "resp_1",
    "object": "response",
    "model": "o3-2025-04-16",
    "usage": {
        "input_tokens": 5000,
        "input_tokens_details": {"cached_tokens": 4096},
        "output_tokens": 2000,
        "output_tokens_details": {"reasoning_tokens": 1500},
        "total_tokens": 7000,
    },
}
ANTHROPIC = {
    "id": "msg_1",
    "type": "message",
    "model": "claude-sonnet-4-5-20250929",
    "usage": {
        "input_tokens": 100,
        "cache_creation_input_tokens": 2000,
        "cache_read_input_tokens": 30000,
        "cache_creation": {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 1500},
        "output_tokens": 500,
    },
}
GEMINI = {
    "modelVersion": "gemini-2.5-pro",
    "usageMetadata": {
        "promptTokenCount": 250000,
        "cachedContentTokenCount": 200000,
        "candidatesTokenCount": 1000,
        "thoughtsTokenCount": 3000,
        "totalTokenCount": 254000,
    },
}
BEDROCK_CONVERSE = {
    "output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}},
    "stopReason": "end_turn",
    "usage": {
        "inputTokens": 500,
        "outputTokens": 200,
        "totalTokens": 2000,
        "cacheReadInputTokens": 1000,
        "cacheWriteInputTokens": 300,
    },
    "metrics": {"latencyMs": 812},
}


@pytest.mark.parametrize(
    ("data", "model", "split", "reasoning"),
    [
        # OpenAI counts cached tokens inside prompt_tokens.
        (
            response_usage("openai", OPENAI_CHAT, api_flavor="chat"),
            "gpt-4o-2024-08-06",
            (176, 1024, 0, 300),
            0,
        ),
        (
            response_usage("openai", OPENAI_RESPONSES, api_flavor="responses"),
            "o3-2025-04-16",
            (904, 4096, 0, 2000),
            1500,
        ),
        # Anthropic's input_tokens exclude cache reads and writes: they are added back.
        (
            response_usage("anthropic", ANTHROPIC),
            "claude-sonnet-4-5-20250929",
            (100, 30000, 2000, 500),
            0,
        ),
        # Gemini's candidates exclude thoughts: output is both.
        (response_usage("gcp.gemini", GEMINI), "gemini-2.5-pro", (50000, 200000, 0, 4000), 3000),
        # Bedrock Converse has no model in the body: the event names it.
        (
            response_usage(
                "aws.bedrock", BEDROCK_CONVERSE, model="anthropic.claude-3-5-sonnet-20240620-v1:0"
            ),
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            (500, 1000, 300, 200),
            0,
        ),
    ],
    ids=["openai-chat", "openai-responses", "anthropic", "gemini", "bedrock-converse"],
)
def test_provider_response_shapes_come_out_with_the_right_split(data, model, split, reasoning):
    record = parse_usage(data)
    assert record.model == model
    assert record.token_split == split
    assert record.reasoning_tokens == reasoning


def test_anthropic_ttl_detail_is_kept_for_pricing():
    record = parse_usage(response_usage("anthropic", ANTHROPIC))
    assert record.usage["cache_write_1h_tokens"] == 1500
    assert record.usage["cache_write_5m_tokens"] == 500


def test_just_the_usage_part_of_a_response_is_enough():
    record = parse_usage(
        response_usage("openai", OPENAI_CHAT["usage"], api_flavor="chat", model="gpt-4o")
    )
    assert (record.model, record.token_split) == ("gpt-4o", (176, 1024, 0, 300))
    record = parse_usage(response_usage("google", GEMINI["usageMetadata"], model="gemini-2.5-pro"))
    assert record.token_split == (50000, 200000, 0, 4000)


def test_response_problems_name_the_field():
    found = problems(response_usage("openai", {"prompt_tokens": 1}, model="gpt-4o"))
    assert "required for provider openai" in found["data.api_flavor"]
    found = problems(response_usage("openai", {"prompt_tokens": 1}, api_flavor="chat", model="m"))
    assert "completion_tokens" in found["data.response"]
    found = problems(response_usage("openai", OPENAI_CHAT, api_flavor="nope"))
    assert "chat" in found["data.api_flavor"]
    found = problems(response_usage("openai", OPENAI_CHAT, api_flavor="chat", input_tokens=3))
    assert "not both" in found["data.response"]
    found = problems(response_usage("ibm.watsonx.ai", {"usage": {}}, model="granite"))
    assert "send the token fields" in found["data.response"]
    found = problems(response_usage("openai", [1, 2], api_flavor="chat", model="m"))
    assert "JSON object" in found["data.response"]


def test_unknown_model_in_a_response_still_counts_its_tokens():
    body = {**OPENAI_CHAT, "model": "in-house-finetune-7"}
    record = parse_usage(response_usage("openai", body, api_flavor="chat"))
    assert record.model == "in-house-finetune-7"
    assert record.token_split == (176, 1024, 0, 300)


def test_event_envelope_and_data_problems_come_together():
    now = datetime(2025, 9, 1, tzinfo=UTC)
    event = make_event(USAGE_TYPE, "gw", usage(input_tokens=-5), time=now + timedelta(hours=1))
    del event["id"]
    with pytest.raises(EventError) as info:
        parse_usage_event(event, now=now)
    assert {p.field for p in info.value.problems} == {"id", "time", "data.input_tokens"}
    wrong_type = make_event("io.aifinops.gpu.sample.v1", "gw", usage())
    with pytest.raises(EventError) as info:
        parse_usage_event(wrong_type)
    assert [p.field for p in info.value.problems] == ["type"]


def test_team_override_and_the_published_form():
    now = datetime(2025, 9, 1, 12, tzinfo=UTC)
    raw = make_event(USAGE_TYPE, "gw", usage(team="claimed"), event_id="e1")
    del raw["time"]
    event = parse_usage_event(raw, now=now).with_team("billing")
    assert event.usage.team == "billing"
    assert event.key == "billing/chat"
    out = event.to_cloudevent()
    assert out["data"]["team"] == "billing"
    assert out["time"] == "2025-09-01T12:00:00Z"
    assert out["id"] == "e1"
    # The published event validates to the same record.
    assert parse_usage_event(out, now=now).usage == event.usage


def test_a_response_event_checks_its_model_and_status_as_the_token_form_does():
    body = {**OPENAI_CHAT, "model": None}
    found = problems(response_usage("openai", body, api_flavor="chat", model="bad model"))
    assert "1-200 characters" in found["data.model"]
    found = problems(response_usage("openai", body, api_flavor="chat", model="__other__"))
    assert "1-200 characters" in found["data.model"]
    found = problems(response_usage("openai", OPENAI_CHAT, api_flavor="chat", app="__other__"))
    assert found == {"data.app": "__other__ is reserved for folded label values"}
    null_status = {**usage(), "status": None}
    assert problems(null_status) == {"data.status": "must be one of ok, error (got None)"}
    assert problems(response_usage("openai", "text", model="m", input_tokens=3)) == {
        "data.response": "give either response or the token fields, not both (input_tokens)"
    }
