"""The gpu sample event's `data`: every problem named by field, exact decimals, JSON round trip."""

from __future__ import annotations

from decimal import Decimal

import pytest

from aifinops.exporters.events import (
    GPU_SAMPLE_TYPE,
    EventError,
    GPUSample,
    decode,
    encode,
    make_event,
    parse_envelope,
    parse_gpu_sample,
)

GOOD = {
    "node": "gpu-node-1",
    "gpu": 3,
    "uuid": "GPU-5fd4a2b1-0c1e-7d36-2a0b-1f6c0e9a8b7d",
    "model": "NVIDIA H100 80GB HBM3",
    "utilization_ratio": 0.25,
    "memory_used_bytes": 1 << 30,
    "memory_total_bytes": 80 << 30,
    "power_watts": 312.5,
    "hourly_cost_usd": 2.1,
    "interval_seconds": 1.000234,
    "namespace": "ml",
    "pod": "train-0",
    "container": "trainer",
    "team": "research",
}


def test_a_valid_sample_parses_with_exact_decimals():
    s = parse_gpu_sample(GOOD)
    assert s.hourly_cost_usd == Decimal("2.1")
    assert s.interval_seconds == Decimal("1.000234")
    assert s.key == "gpu-node-1/GPU-5fd4a2b1-0c1e-7d36-2a0b-1f6c0e9a8b7d"
    assert s.held and s.holders == 1


def test_to_data_round_trips_through_a_cloudevent_exactly():
    sample = parse_gpu_sample(GOOD)
    event = make_event(
        GPU_SAMPLE_TYPE, "aifinops-gpu-exporter/default/gpu-node-1", sample.to_data()
    )
    env = parse_envelope(decode(encode(event)), types=frozenset({GPU_SAMPLE_TYPE}))
    assert parse_gpu_sample(env.data) == sample


def test_an_unallocated_unpriced_sample_omits_holder_fields():
    data = {k: v for k, v in GOOD.items() if k not in ("namespace", "pod", "container", "team")}
    data["hourly_cost_usd"] = None
    data["power_watts"] = None
    s = parse_gpu_sample(data)
    assert (s.namespace, s.pod, s.container, s.team) == ("", "", "", "")
    assert s.hourly_cost_usd is None and s.power_watts is None
    assert s.to_data() == data
    assert isinstance(s, GPUSample)


def test_every_problem_is_listed_with_its_field():
    bad = {
        "gpu": -1,
        "uuid": "",
        "model": 7,
        "utilization_ratio": 1.5,
        "memory_used_bytes": 10,
        "memory_total_bytes": 5,
        "power_watts": "high",
        "interval_seconds": 0,
        "pod": "p",
        "holders": 0,
        "hourly_cost": 2,
    }
    with pytest.raises(EventError) as err:
        parse_gpu_sample(bad)
    got = {p.field: p.reason for p in err.value.problems}
    assert set(got) == {
        "data.hourly_cost",
        "data.node",
        "data.uuid",
        "data.model",
        "data.gpu",
        "data.utilization_ratio",
        "data.memory_used_bytes",
        "data.power_watts",
        "data.hourly_cost_usd",
        "data.interval_seconds",
        "data.namespace",
        "data.holders",
    }
    assert got["data.hourly_cost"] == "unknown field"
    assert got["data.node"] == "required"
    assert got["data.hourly_cost_usd"] == "required (null when unknown)"
    assert got["data.interval_seconds"] == "must be positive (got 0)"
    assert got["data.memory_used_bytes"] == "more than memory_total_bytes (10 > 5)"
    assert got["data.namespace"] == "namespace and pod come together"


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("interval_seconds", 3601, "must be at most 3600"),
        ("hourly_cost_usd", -1, "must be at least 0"),
        ("hourly_cost_usd", 1.0000000001, "more than 9 decimal places"),
        ("hourly_cost_usd", "NaN", "must be a finite number"),
        ("utilization_ratio", float("nan"), "must be a finite number"),
        ("gpu", True, "must be an integer"),
        ("holders", 2000, "at most 1024"),
        ("node", "x" * 300, "longer than 256"),
    ],
)
def test_out_of_range_values_are_refused(field, value, reason):
    with pytest.raises(EventError) as err:
        parse_gpu_sample({**GOOD, field: value})
    assert [p.field for p in err.value.problems] == [f"data.{field}"]
    assert reason in err.value.problems[0].reason


def test_container_and_team_need_a_pod_and_data_must_be_an_object():
    data = {k: v for k, v in GOOD.items() if k not in ("namespace", "pod")}
    with pytest.raises(EventError) as err:
        parse_gpu_sample(data)
    assert {p.field for p in err.value.problems} == {"data.container", "data.team"}
    with pytest.raises(EventError, match="data: must be a JSON object"):
        parse_gpu_sample([1, 2])
