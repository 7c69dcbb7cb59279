"""Writes tests/rules/anomaly.test.yaml: the anomaly tier's promtool test, whose input (days of
noisy spend with daily and weekly cycles) promtool's expanding notation cannot express.

Run `python tests/rules/anomaly_input.py` after changing it; tests/unit/mixin/test_rules.py fails when
the committed file differs from what this script writes. The noise is seeded, so the file is
deterministic.
"""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "anomaly.test.yaml"
STEP = 300  # 5 minutes: the anomaly group's interval
PER_DAY = 86400 // STEP
HOUR = 3600


def daily_cycle(t: int) -> float:
    """$/h of a team with a working-hours peak: $20/h at 03:00 UTC, $60/h at 15:00 UTC."""
    h = (t % 86400) / 3600
    return 40 + 20 * math.sin(2 * math.pi * (h - 9) / 24)


def weekday(t: int) -> int:
    """0 = Monday; the test clock starts on Thursday 1970-01-01."""
    return (t // 86400 + 3) % 7


def series(team: str, dollars_per_hour: list[float | None]) -> dict[str, str]:
    """An input series of the recorded spend ($/s, 5-minute average) of `team`."""
    values = ["_" if v is None else f"{v / HOUR:.9g}" for v in dollars_per_hour]
    return {
        "series": f'team:aifinops_spend_usd_per_second:avg5m{{team="{team}"}}',
        "values": " ".join(values),
    }


def firing(team_regex: str, eval_time: int, teams: list[str]) -> dict:
    """Which teams have a firing AIFinOpsSpendAnomaly at `eval_time`."""
    return {
        "expr": (
            'count by (team) (ALERTS{alertname="AIFinOpsSpendAnomaly",alertstate="firing",'
            f'team=~"{team_regex}"}})'
        ),
        "eval_time": f"{eval_time}s",
        "exp_samples": [{"labels": f'{{team="{t}"}}', "value": 1} for t in teams],
    }


def noisy_group() -> dict:
    """Nine days of noisy traffic: a 5x spike on day 8, and teams that must stay quiet."""
    rng = random.Random(20261128)
    days = 9
    n = days * PER_DAY
    onset = 8 * 86400 + 14 * HOUR  # Friday, day 8, 14:00 UTC
    end = onset + 2 * HOUR

    def noisy(t: int) -> float:
        return daily_cycle(t) * rng.uniform(0.9, 1.1)

    times = [i * STEP for i in range(n)]
    cycle = [noisy(t) for t in times]
    # Weekends at 30 % of the weekday level: a Monday must not look anomalous after Sunday.
    weekly = [noisy(t) * (0.3 if weekday(t) >= 5 else 1.0) for t in times]
    spike = [noisy(t) * (5 if onset <= t < end else 1) for t in times]
    # The same shape at 1/100 of the money: a 10x spike to a few dollars an hour.
    tiny = [noisy(t) / 100 * (10 if onset <= t < end else 1) for t in times]
    # No history: spend starts on day 8 at 10:00 (the fast tier's job, not this one's).
    new = [200.0 if t >= 8 * 86400 + 10 * HOUR else None for t in times]
    inputs = [
        series("cycle", cycle),
        series("weekly", weekly),
        series("spike", spike),
        series("tiny", tiny),
        series("new", new),
    ]
    quiet = "cycle|weekly|tiny|new"
    return {
        "name": "nine days of noisy daily and weekly cycles, one 5x spike",
        "interval": f"{STEP}s",
        "input_series": inputs,
        "promql_expr_test": [
            # Nothing fired before the spike: a normal daily cycle, weekends, noise.
            {
                "expr": 'count_over_time(ALERTS{alertname="AIFinOpsSpendAnomaly",alertstate="firing"}[9d])',
                "eval_time": f"{onset - STEP}s",
                "exp_samples": [],
            },
            # for: 15m: pending at the onset, firing 15 minutes later.
            firing(".*", onset + 10 * 60, []),
            firing(".*", onset + 15 * 60, ["spike"]),
            firing(".*", onset + 90 * 60, ["spike"]),
            # Over the whole run: no anomaly for the quiet teams (the tiny spike is below the
            # dollar floor; the new team has no history).
            {
                "expr": (
                    'count_over_time(ALERTS{alertname="AIFinOpsSpendAnomaly",'
                    f'team=~"{quiet}"}}[9d])'
                ),
                "eval_time": f"{n * STEP - STEP}s",
                "exp_samples": [],
            },
        ],
    }


def flat_group() -> dict:
    """Two days of flat spend (GPU-like: MAD 0), then a 1.3x step and a 2.5x jump."""
    n = 2 * PER_DAY
    onset = 86400 + 14 * HOUR
    times = [i * STEP for i in range(n)]
    flat = [130.0 if t >= onset else 100.0 for t in times]
    jump = [250.0 if t >= onset else 100.0 for t in times]
    description = (
        "Team flatjump is spending $250.00/h (LLM and GPU). At this time of day it spent at "
        "most $100.00/h on any of the last 7 days; anything above $181.54/h is more than 5 "
        "robust standard deviations off."
    )
    return {
        "name": "flat spend: the MAD floor keeps the band finite, small steps stay quiet",
        "interval": f"{STEP}s",
        "input_series": [series("flat", flat), series("flatjump", jump)],
        "promql_expr_test": [
            # MAD 0 on a flat series: the band is the floored one, $100 + 5 x 1.4826 x $11.
            {
                "expr": "round(team:aifinops_spend_usd_per_second:upper_band * 3600, 0.01)",
                "eval_time": f"{onset - STEP}s",
                "exp_samples": [
                    {"labels": '{team="flat"}', "value": 181.54},
                    {"labels": '{team="flatjump"}', "value": 181.54},
                ],
            },
            {
                "expr": "team:aifinops_spend_usd_per_second:mad1w",
                "eval_time": f"{onset - STEP}s",
                "exp_samples": [
                    {"labels": 'team:aifinops_spend_usd_per_second:mad1w{team="flat"}', "value": 0},
                    {
                        "labels": 'team:aifinops_spend_usd_per_second:mad1w{team="flatjump"}',
                        "value": 0,
                    },
                ],
            },
            # No prediction (and so no alert) during the first day.
            {
                "expr": "team:aifinops_spend_usd_per_second:prediction",
                "eval_time": f"{20 * HOUR}s",
                "exp_samples": [],
            },
            firing(".*", onset + 10 * 60, []),
        ],
        "alert_rule_test": [
            {
                "eval_time": f"{onset + 15 * 60}s",
                "alertname": "AIFinOpsSpendAnomaly",
                "exp_alerts": [
                    {
                        "exp_labels": {
                            "severity": "warning",
                            "aifinops_tier": "anomaly",
                            "aifinops_source": "all",
                            "team": "flatjump",
                        },
                        "exp_annotations": {
                            "summary": "A team is spending far more than usual for this time of day and week.",
                            "description": description,
                            "runbook_url": "https://github.com/aifinops/aifinops/blob/main/docs/runbooks.md#aifinopsspendanomaly",
                            "dashboard_url": "http://localhost:3000/d/aifinops-overview?var-team=flatjump",
                        },
                    }
                ],
            }
        ],
    }


def render() -> str:
    """The test file's text."""
    doc = {
        "rule_files": ["../../rules/aifinops-anomaly.yaml"],
        "evaluation_interval": f"{STEP}s",
        "tests": [flat_group(), noisy_group()],
    }
    header = (
        "# Generated by tests/rules/anomaly_input.py; do not edit (run it after changing it).\n"
        "# promtool test rules tests/rules/anomaly.test.yaml  (Prometheus 2.42 and 3.x)\n"
        "# The anomaly tier at its 5-minute cadence, fed the recorded spend series directly.\n"
    )
    return header + yaml.safe_dump(doc, sort_keys=False, width=100)


def main() -> int:
    """Write the test file."""
    OUTPUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
