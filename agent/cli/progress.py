"""How the CLI shows a run: the progress line while it runs, the summary after, step timings. Pure: rows in,
text out; no clock (callers pass `now`), no I/O.

A run row is a `process_runs` row (DESIGN §4): status, completed_steps / total_steps, current_step {path, type,
name, loop_iteration, loop_count}, started_at / finished_at. The remaining time is the planned time of the
steps not yet done, from the run's own recipe snapshot (the plan the agent executes); setpoint steps that wait
for a value (a heat-up) are planned as instantaneous, so "remaining" is a lower bound, shown with "≥".
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.errors import RecipeError
from agent.recipes import Plan, Recipe, compile_recipe

__all__ = [
    "BAR_WIDTH",
    "FINAL_RUN_STATUSES",
    "RunTimes",
    "StepTimings",
    "duration",
    "parse_ts",
    "progress_line",
    "remaining_ms",
    "run_plan",
    "run_times",
    "step_timings",
    "summary_line",
]

BAR_WIDTH = 24
FINAL_RUN_STATUSES = frozenset({"succeeded", "failed", "aborted", "interrupted"})


def duration(seconds: float) -> str:
    """H:MM:SS, rounded to the second (negative or NaN shows as 0:00:00)."""
    total = 0 if not math.isfinite(seconds) or seconds < 0 else round(seconds)
    return f"{total // 3600}:{total // 60 % 60:02d}:{total % 60:02d}"


def parse_ts(value: Any) -> datetime | None:
    """A timestamptz as PostgREST returns it (ISO 8601), or None."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def run_plan(run: Mapping[str, Any]) -> Plan | None:
    """The plan of a run, compiled from its recipe snapshot; None when the snapshot is not a usable recipe."""
    snapshot = run.get("recipe_snapshot")
    if not isinstance(snapshot, Mapping) or not snapshot:
        return None
    try:
        return compile_recipe(Recipe.from_document(snapshot))
    except (RecipeError, ValueError, KeyError, TypeError):
        return None


def remaining_ms(plan: Plan | None, completed_steps: int) -> float | None:
    """Planned time of the steps after the first `completed_steps` (a lower bound: see the module docstring)."""
    if plan is None:
        return None
    return sum(step.planned_ms for step in plan.steps[max(0, completed_steps) :])


def _bar(done: int, total: int) -> str:
    filled = 0 if total <= 0 else min(BAR_WIDTH, done * BAR_WIDTH // total)
    return "[" + "#" * filled + "-" * (BAR_WIDTH - filled) + "]"


def _step(current: Any) -> str:
    if not isinstance(current, Mapping):
        return ""
    text = f"step {current.get('path', '?')} {current.get('name') or current.get('type') or ''}".rstrip()
    if current.get("loop_count"):
        text += f" (cycle {current.get('loop_iteration')}/{current['loop_count']})"
    return text


@dataclass(frozen=True, slots=True)
class RunTimes:
    elapsed_s: float
    remaining_s: float | None


def run_times(run: Mapping[str, Any], *, now: datetime, plan: Plan | None) -> RunTimes:
    started = parse_ts(run.get("started_at"))
    finished = parse_ts(run.get("finished_at"))
    elapsed = 0.0 if started is None else ((finished or now) - started).total_seconds()
    left = remaining_ms(plan, int(run.get("completed_steps") or 0))
    return RunTimes(elapsed, None if left is None else left / 1000)


def progress_line(run: Mapping[str, Any], *, now: datetime, plan: Plan | None) -> str:
    """One line: `run 1a2b3c4d running [#####---] 12/403 (3%) step 1.3 TMA pulse (cycle 4/100) · elapsed
    0:00:41 · remaining ≥ 0:05:12`."""
    done, total = int(run.get("completed_steps") or 0), int(run.get("total_steps") or 0)
    percent = 0 if total <= 0 else done * 100 // total
    times = run_times(run, now=now, plan=plan)
    head = f"run {str(run.get('id', ''))[:8]} {run.get('status', '?')}"
    parts = [f"{head} {_bar(done, total)} {done}/{total} ({percent}%)"]
    step = _step(run.get("current_step"))
    if step and run.get("status") not in FINAL_RUN_STATUSES:
        parts[0] += f" {step}"
    parts.append(f"elapsed {duration(times.elapsed_s)}")
    if times.remaining_s is not None and run.get("status") not in FINAL_RUN_STATUSES:
        parts.append(f"remaining ≥ {duration(times.remaining_s)}")
    return " · ".join(parts)


def summary_line(run: Mapping[str, Any], *, now: datetime) -> str:
    """The final word on a run: `run <id> succeeded: 403/403 steps in 0:06:02` (+ `: <error>`)."""
    times = run_times(run, now=now, plan=None)
    text = (
        f"run {run.get('id')} {run.get('status')}: {run.get('completed_steps')}/{run.get('total_steps')} steps"
        f" in {duration(times.elapsed_s)}"
    )
    return text + (f": {run['error']}" if run.get("error") else "")


@dataclass(frozen=True, slots=True)
class StepTimings:
    """Timing of one step type over a run's executed steps (milliseconds; deviation = actual − planned)."""

    type: str
    steps: int
    planned_ms: float
    actual_ms: float
    mean_deviation_ms: float | None
    max_deviation_ms: float | None


def step_timings(steps: Sequence[Mapping[str, Any]]) -> list[StepTimings]:
    """Per step type, in first-seen order, over the steps that have an actual duration. Valve steps report the
    deviation measured at the PLC (`detail.timing_error_ms`) when the agent recorded one."""
    by_type: dict[str, list[Mapping[str, Any]]] = {}
    for step in steps:
        if step.get("actual_ms") is not None:
            by_type.setdefault(str(step.get("type")), []).append(step)
    result: list[StepTimings] = []
    for kind, rows in by_type.items():
        deviations = [_deviation(r) for r in rows]
        known = [d for d in deviations if d is not None]
        result.append(
            StepTimings(
                type=kind,
                steps=len(rows),
                planned_ms=sum(float(r.get("planned_ms") or 0) for r in rows),
                actual_ms=sum(float(r["actual_ms"]) for r in rows),
                mean_deviation_ms=statistics.fmean(known) if known else None,
                max_deviation_ms=max(known, key=abs) if known else None,
            )
        )
    return result


def _deviation(step: Mapping[str, Any]) -> float | None:
    detail = step.get("detail")
    if isinstance(detail, Mapping) and isinstance(detail.get("timing_error_ms"), int | float):
        return float(detail["timing_error_ms"])
    if step.get("planned_ms") is None or step.get("actual_ms") is None:
        return None
    return float(step["actual_ms"]) - float(step["planned_ms"])
