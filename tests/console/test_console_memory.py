"""What the console remembers: bounded trends, the run journal fed by the run controller's hooks, the spool."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from console_support import AL2O3, NOW, PLAN

from agent.console import MAX_RECENT_RUNS, MAX_TIMELINE, RunJournal, SpoolGauge, TrendBuffer
from agent.recipes import Plan, Recipe, StepRecord, StepStatus
from agent.sampling import Frame


def frame(t: float, **values: object) -> Frame:
    return Frame(ts=NOW + timedelta(seconds=t), tick=int(t * 10), values=values, read_s=0.01, lateness_s=0.0)


def test_the_trend_buffer_keeps_one_row_a_second_and_only_its_window() -> None:
    trends = TrendBuffer(["a", "b"], window_s=10, resolution_s=1.0)
    for tick in range(0, 300):  # 30 s of frames at 10 Hz
        trends.observe(frame(tick / 10, a=tick, b=None))
    rows = trends.since(None)
    assert len(trends) == 11  # bounded: the window at its resolution
    assert [round(t - NOW.timestamp()) for t, _ in rows] == list(range(19, 30))
    assert rows[-1][1] == (290.0, None)
    assert trends.since(rows[-2][0]) == [rows[-1]]  # a page that has the rest gets only what is new


def test_the_trend_buffer_keeps_numbers_only() -> None:
    trends = TrendBuffer(["flag", "text", "nan"])
    trends.observe(frame(0, flag=True, text="x", nan=float("nan")))
    assert trends.since(None)[0][1] == (1.0, None, None)


def test_the_spool_gauge_answers_once_it_has_seen_half_its_window() -> None:
    gauge = SpoolGauge(window_s=30)
    t0 = NOW.timestamp()
    gauge.note(t0, 5)
    assert gauge.depth_ago(t0 + 10) is None
    for s in range(1, 40):
        gauge.note(t0 + s, 5 + s)
    assert gauge.depth_ago(t0 + 39) == 14  # the depth 30 s before


@dataclass
class Run:
    """What the journal reads of the controller's ActiveRun."""

    id: str
    recipe: Recipe = AL2O3
    plan: Plan = PLAN
    row: dict[str, Any] = field(default_factory=dict)


def record(seq: int, *, status: str = "succeeded") -> StepRecord:
    step = PLAN.steps[seq]
    at = NOW + timedelta(seconds=seq)
    return StepRecord(
        seq=seq,
        path=step.path,
        type=str(step.type),
        name=step.name,
        planned_ms=step.planned_ms,
        started_at=at,
        ended_at=at,
        actual_ms=step.planned_ms + 1.5,
        status=StepStatus(status),
    )


def test_the_journal_follows_the_run_step_by_step() -> None:
    journal = RunJournal(clock=lambda: NOW)
    run = Run("run-1", row={"status": "running", "started_at": NOW.isoformat(), "completed_steps": 0})
    assert journal.current(None) is None
    for seq in range(3):
        journal.step_started(run, PLAN.steps[seq])
        journal.step_ended(run, record(seq))
        run.row["completed_steps"] = seq + 1
    journal.step_started(run, PLAN.steps[3])
    now = journal.current(run)
    assert now is not None
    assert (now.recipe_name, now.completed_steps, now.total_steps, now.step) == (AL2O3.name, 3, 401, PLAN.steps[3])
    assert now.done_planned_ms == sum(s.planned_ms for s in PLAN.steps[:3])
    assert [e.seq for e in now.timeline] == [0, 1, 2]
    assert now.timeline[1].loops == (("ALD cycle", 1, 100),)
    assert now.timeline[1].actual_ms == PLAN.steps[1].planned_ms + 1.5


def test_the_timeline_keeps_the_newest_steps_only() -> None:
    journal = RunJournal(clock=lambda: NOW)
    run = Run("run-1", row={"status": "running", "completed_steps": 0})
    for seq in range(MAX_TIMELINE + 25):
        journal.step_started(run, PLAN.steps[seq])
        journal.step_ended(run, record(seq))
    timeline = journal.current(run).timeline  # type: ignore[union-attr]
    assert len(timeline) == MAX_TIMELINE
    assert timeline[-1].seq == MAX_TIMELINE + 24


def test_finished_runs_newest_first_and_bounded() -> None:
    journal = RunJournal(clock=lambda: NOW)
    for n in range(MAX_RECENT_RUNS + 3):
        run = Run(f"run-{n}", row={"status": "failed" if n % 2 else "succeeded", "error": None,
                                   "finished_at": NOW.isoformat(), "completed_steps": n})  # fmt: skip
        journal.step_started(run, PLAN.steps[0])
        journal.run_ended(run)
    runs = journal.finished()
    assert len(runs) == MAX_RECENT_RUNS
    assert [r.id for r in runs[:2]] == [f"run-{MAX_RECENT_RUNS + 2}", f"run-{MAX_RECENT_RUNS + 1}"]
    assert (runs[0].status, runs[1].status, runs[0].completed_steps) == ("succeeded", "failed", MAX_RECENT_RUNS + 2)


def test_a_new_run_starts_a_new_timeline() -> None:
    journal = RunJournal(clock=lambda: NOW)
    first, second = Run("run-1", row={"status": "running"}), Run("run-2", row={"status": "running"})
    journal.step_started(first, PLAN.steps[0])
    journal.step_ended(first, record(0))
    journal.step_started(second, PLAN.steps[0])
    assert journal.current(second).timeline == ()  # type: ignore[union-attr]
    assert dataclasses.replace(journal.current(second)).id == "run-2"  # type: ignore[type-var]
