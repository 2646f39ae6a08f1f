"""The run display (agent/cli/progress.py), pure: durations, the progress line, the summary, step timings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agent.cli.progress import duration, progress_line, remaining_ms, run_plan, step_timings, summary_line
from agent.recipes import Recipe

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SNAPSHOT = Recipe.from_document({
    "format": "ald-recipe/1", "name": "r", "version": 1,
    "steps": [{"type": "wait", "name": "heat", "config": {"duration_ms": 60_000}},
              {"type": "loop", "name": "cycle", "config": {"count": 2}, "steps": [
                  {"type": "valve", "name": "TMA pulse", "config": {"valve": 1, "duration_ms": 500}}]}],
}).to_snapshot()  # fmt: skip


def run_row(**overrides: Any) -> dict[str, Any]:
    return {"id": "1a2b3c4d-0000-4000-8000-000000000000", "status": "running", "completed_steps": 0, "total_steps": 3,
            "current_step": {"path": "1", "type": "wait", "name": "heat", "loop_iteration": None, "loop_count": None},
            "started_at": T0.isoformat(), "finished_at": None, "error": None,
            "recipe_snapshot": SNAPSHOT} | overrides  # fmt: skip


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0:00:00"), (59.6, "0:01:00"), (3725, "1:02:05"), (-3, "0:00:00"), (float("nan"), "0:00:00")],
    ids=["zero", "rounds", "hours", "negative", "nan"],
)
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_the_heat_up_line_shows_the_step_elapsed_and_remaining() -> None:
    line = progress_line(run_row(), now=T0 + timedelta(seconds=41), plan=run_plan(run_row()))
    assert line == ("run 1a2b3c4d running [------------------------] 0/3 (0%) step 1 heat · elapsed 0:00:41"
                    " · remaining ≥ 0:01:01")  # fmt: skip


def test_a_step_in_a_loop_shows_its_cycle() -> None:
    current = {"path": "2/1", "type": "valve", "name": "TMA pulse", "loop_iteration": 2, "loop_count": 2}
    row = run_row(completed_steps=2, current_step=current)
    line = progress_line(row, now=T0 + timedelta(seconds=61), plan=run_plan(row))
    assert "[################--------] 2/3 (66%) step 2/1 TMA pulse (cycle 2/2)" in line
    assert line.endswith("remaining ≥ 0:00:00")  # 0.5 s left, rounded


@pytest.mark.parametrize(
    ("row", "plan_ms"),
    [({"recipe_snapshot": {}}, None), ({"recipe_snapshot": {"steps": "nope"}}, None), ({}, 61_000.0)],
    ids=["no-snapshot", "unusable-snapshot", "snapshot"],
)
def test_remaining_needs_a_usable_snapshot(row: dict[str, Any], plan_ms: float | None) -> None:
    assert remaining_ms(run_plan(run_row(**row)), 0) == plan_ms


def test_a_finished_run_shows_no_step_and_no_remaining() -> None:
    row = run_row(status="aborted", completed_steps=1, finished_at=(T0 + timedelta(seconds=70)).isoformat(),
                  error="stop requested by command 7")  # fmt: skip
    assert progress_line(row, now=T0 + timedelta(hours=5), plan=run_plan(row)).endswith(
        "1/3 (33%) · elapsed 0:01:10")  # fmt: skip
    assert summary_line(row, now=T0 + timedelta(hours=5)) == (
        "run 1a2b3c4d-0000-4000-8000-000000000000 aborted: 1/3 steps in 0:01:10: stop requested by command 7"
    )


def test_step_timings_per_type_prefer_the_plc_measured_deviation() -> None:
    steps = [
        {"type": "wait", "planned_ms": 100, "actual_ms": 103, "detail": {}},
        {"type": "valve", "planned_ms": 500, "actual_ms": 520, "detail": {"timing_error_ms": 1.5}},
        {"type": "valve", "planned_ms": 500, "actual_ms": 498, "detail": {"timing_error_ms": -2.5}},
        {"type": "wait", "planned_ms": 100, "actual_ms": None, "detail": {}},  # still running: not counted
    ]
    (wait, valve) = step_timings(steps)
    assert (wait.type, wait.steps, wait.planned_ms, wait.actual_ms, wait.max_deviation_ms) == ("wait", 1, 100, 103, 3)
    assert (valve.steps, valve.mean_deviation_ms, valve.max_deviation_ms) == (2, -0.5, -2.5)
