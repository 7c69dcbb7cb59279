"""The demo's part of the savings tier: the simulated fleet's `light` and `office` GPUs, the savings
steps the demo's recorded history writes for each GPU (what the shipped rules would have recorded),
and the live view's list of recommendations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aifinops.cli.demo.history import gpu_step_records, openmetrics, simulate_gpu_steps
from aifinops.cli.demo.liveview import LiveView, read_spend
from aifinops.exporters.gpu.simulated import SimulatedSource, office_hours

REPO = Path(__file__).resolve().parents[4]
RULES = sorted((REPO / "rules").glob("aifinops-*.yaml"))
# Monday 5 January 2026, 09:00 UTC: working hours.
MONDAY_9 = datetime(2026, 1, 5, 9, tzinfo=UTC)


def test_the_history_knows_every_per_gpu_step_of_the_shipped_savings_group():
    steps, interval = gpu_step_records(RULES)
    assert interval == 300
    assert [(s.record, s.kind) for s in steps] == [
        ("gpu:aifinops_gpu_utilization_ratio:avg5m", "avg"),
        ("gpu:aifinops_gpu_utilization_ratio:max5m", "max"),
        ("gpu:aifinops_gpu_memory_used_bytes:max5m", "max"),
        ("gpu:aifinops_gpu_busy:bool5m", "busy"),
        ("gpu:aifinops_gpu_off_hours:bool5m", "off_hours"),
        ("gpu:aifinops_gpu_off_hours_busy:bool5m", "product"),
    ]
    off = steps[4]
    assert (off.start_hour, off.end_hour, off.days) == (8, 20, (1, 2, 3, 4, 5))
    assert steps[3].threshold == 0.05 and steps[0].window_seconds == 300


def test_history_steps_are_what_the_rules_record_from_the_fleet():
    steps, interval = gpu_step_records(RULES)
    fleet = SimulatedSource(
        nodes=1, gpus_per_node=2, patterns=("steady", "idle"), utilization=0.25,
        wall_clock=lambda: MONDAY_9.timestamp(),
    )  # fmt: skip
    values = simulate_gpu_steps(
        steps, fleet, start=MONDAY_9 - timedelta(hours=2), end=MONDAY_9, step_seconds=interval
    )
    steady = ("sim-node-0", "0", fleet.fetch().gpus[0].uuid)
    idle = ("sim-node-0", "1", fleet.fetch().gpus[1].uuid)

    def series(record: str, gpu: tuple[str, ...]) -> dict[str, float]:
        return {
            datetime.fromtimestamp(t, UTC).strftime("%H:%M"): v
            for t, v in values[f"gpu:aifinops_gpu_{record}"][gpu]
        }

    assert len(series("utilization_ratio:avg5m", steady)) == 25  # 07:00 to 09:00
    assert set(series("utilization_ratio:avg5m", steady).values()) == {0.25}
    assert set(series("busy:bool5m", steady).values()) == {1.0}
    assert set(series("busy:bool5m", idle).values()) == {0.0}  # 0-2 %
    # Off hours until 07:55 on a Monday; working hours from 08:00.
    off = series("off_hours:bool5m", steady)
    assert (off["07:55"], off["08:00"], off["09:00"]) == (1.0, 0.0, 0.0)
    busy_off = series("off_hours_busy:bool5m", steady)
    assert (busy_off["07:55"], busy_off["08:00"]) == (1.0, 0.0)
    assert set(series("off_hours_busy:bool5m", idle).values()) == {0.0}
    memory = series("memory_used_bytes:max5m", steady)["09:00"]
    assert memory == fleet.fetch().gpus[0].memory_total_bytes * 0.5
    text = openmetrics(steps, values)
    assert text.count("# TYPE gpu:") == 6 and text.endswith("# EOF\n")


def test_light_and_office_gpus_give_the_savings_tier_its_share_and_schedule():
    def at(when: datetime) -> Any:
        fleet = SimulatedSource(
            nodes=1, gpus_per_node=2, patterns=("light", "office"),
            wall_clock=lambda: when.timestamp(),
        )  # fmt: skip
        return fleet.reading_at(when.timestamp()).gpus

    light, office = at(MONDAY_9)
    assert 0.08 <= light.utilization_ratio <= 0.16
    assert light.memory_used_bytes <= 0.08 * light.memory_total_bytes
    assert office.utilization_ratio >= 0.6
    _, office_evening = at(MONDAY_9 + timedelta(hours=11))  # 20:00
    _, office_saturday = at(MONDAY_9 + timedelta(days=5))
    assert office_evening.utilization_ratio == office_saturday.utilization_ratio == 0.0
    assert office_hours(MONDAY_9.timestamp()) and not office_hours(
        (MONDAY_9 - timedelta(hours=2)).timestamp()
    )


class _Prometheus:
    def __init__(self, savings: list[dict[str, Any]]) -> None:
        self.savings = savings

    def query(self, expr: str) -> list[dict[str, Any]]:
        if "aifinops_savings_usd_per_month" in expr:
            return self.savings
        raise RuntimeError("no data")


def _saving(value: float, **labels: str) -> dict[str, Any]:
    return {"metric": labels, "value": [0, str(value)]}


def test_the_live_view_lists_the_gpu_recommendations_largest_first():
    prometheus = _Prometheus(
        [
            _saving(1825.0, action="share", profile="2g.20gb", namespace="ml", pod="infer-0",
                    node="n1", gpu="1"),
            _saving(2555.0, action="release", namespace="research", pod="nb-0", node="n1", gpu="0"),
        ]
    )  # fmt: skip
    spend = read_spend(prometheus)
    assert [row[0] for row in spend.savings] == ["release", "share"]

    class Out:
        text = ""

        def write(self, s: str) -> None:
            self.text += s

        def flush(self) -> None:
            pass

    out = Out()
    LiveView(prometheus, list, list, [], out=out, tty=True).refresh("status")  # type: ignore[arg-type]
    lines = out.text.split("GPU savings available: $4,380/month")[1].splitlines()
    assert "release" in lines[1] and "research/nb-0" in lines[1] and "$     2,555/month" in lines[1]
    assert "share to 2g.20gb" in lines[2] and "ml/infer-0" in lines[2]
    empty = Out()
    LiveView(_Prometheus([]), list, list, [], out=empty, tty=True).refresh("s")  # type: ignore[arg-type]
    assert "GPU savings available: none yet" in empty.text
