"""What the console remembers between frames: a trend ring buffer, the run journal and the spool's depth.

Everything here is bounded (`deque(maxlen=…)`), fed synchronously by hooks that already run on the event loop
(the sampler's frame sink, the run controller's step and run hooks) and read by the view builder. No I/O, no
database: "the last runs" are the runs this agent drove since it started, which is what the operator at the
tool needs first (the full history is the dashboard's).

Sizes (named below): trends keep `TREND_WINDOW_S` at `TREND_RESOLUTION_S` (600 rows of a few floats), the
timeline `MAX_TIMELINE` steps, the journal `MAX_RECENT_RUNS` runs.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from agent.recipes import Plan, PlanStep, Recipe, RecipeStep, StepRecord, StepType
from agent.sampling import Frame

__all__ = [
    "MAX_RECENT_RUNS",
    "MAX_TIMELINE",
    "TREND_RESOLUTION_S",
    "TREND_WINDOW_S",
    "CurrentRun",
    "FinishedRun",
    "RunJournal",
    "RunLike",
    "SpoolGauge",
    "TimelineEntry",
    "TrendBuffer",
]

TREND_WINDOW_S = 600.0  # "the last minutes": ten of them
TREND_RESOLUTION_S = 1.0  # one row a second at most, whatever PARAMETER_LOGGING_INTERVAL is
MAX_TIMELINE = 60  # the steps shown so far (the newest): a 200,000-step run must not grow the page
MAX_RECENT_RUNS = 10
SPOOL_WINDOW_S = 30.0  # "growing" compares the depth now with the depth this long ago


def _epoch(ts: datetime) -> float:
    return ts.timestamp()


class TrendBuffer:
    """The last `window_s` of `keys`, one row per `resolution_s`: (epoch seconds, value per key or None)."""

    def __init__(
        self, keys: Sequence[str], *, window_s: float = TREND_WINDOW_S, resolution_s: float = TREND_RESOLUTION_S
    ) -> None:
        self.keys = tuple(keys)
        self.resolution_s = resolution_s
        self._rows: deque[tuple[float, tuple[float | None, ...]]] = deque(maxlen=int(window_s / resolution_s) + 1)

    def observe(self, frame: Frame) -> None:
        t = _epoch(frame.ts)
        if self._rows and t - self._rows[-1][0] < self.resolution_s:
            return
        self._rows.append((t, tuple(_number(frame.values.get(key)) for key in self.keys)))

    def since(self, t: float | None) -> list[tuple[float, tuple[float | None, ...]]]:
        """Rows newer than `t` (all of them for None): a client gets the history once, then what is new."""
        if t is None:
            return list(self._rows)
        return [row for row in self._rows if row[0] > t]

    def __len__(self) -> int:
        return len(self._rows)


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


class SpoolGauge:
    """The spool's depth over the last `SPOOL_WINDOW_S`, sampled when the console asks (about once a second)."""

    def __init__(self, *, window_s: float = SPOOL_WINDOW_S) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, int]] = deque(maxlen=int(window_s) * 4 + 8)

    def note(self, t: float, depth: int) -> None:
        if self._samples and t - self._samples[-1][0] < TREND_RESOLUTION_S:
            return
        self._samples.append((t, depth))

    def depth_ago(self, t: float) -> int | None:
        """The oldest depth within the window (None until the window has samples older than half of it)."""
        inside = [(ts, d) for ts, d in self._samples if t - ts <= self.window_s]
        if not inside or t - inside[0][0] < self.window_s / 2:
            return None
        return inside[0][1]


class RunLike(Protocol):
    """What the journal reads of the run controller's active run."""

    @property
    def id(self) -> str: ...
    @property
    def recipe(self) -> Recipe: ...
    @property
    def plan(self) -> Plan: ...
    @property
    def row(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    seq: int
    path: str
    name: str
    type: str
    loops: tuple[tuple[str, int, int], ...]  # (loop name, iteration, count), outermost first
    planned_ms: float
    actual_ms: float
    status: str
    started_at: datetime


@dataclass(frozen=True, slots=True)
class CurrentRun:
    """The active run as the view needs it; `row` fields are copied when the view is taken."""

    id: str
    recipe_name: str
    status: str
    error: str | None
    started_at: datetime
    completed_steps: int
    total_steps: int
    total_ms: float
    done_planned_ms: float  # planned time of the steps that finished
    step: PlanStep | None
    step_started_at: datetime | None
    loop_names: Mapping[str, str]  # loop path → its name
    timeline: tuple[TimelineEntry, ...]  # oldest first


@dataclass(frozen=True, slots=True)
class FinishedRun:
    id: str
    recipe_name: str
    status: str
    error: str | None
    started_at: datetime
    finished_at: datetime
    completed_steps: int
    total_steps: int


def loop_names(steps: Iterable[RecipeStep], parent: str = "") -> dict[str, str]:
    """Path → name of every loop in a recipe tree (paths as the compiler numbers them: 1-based, "/"-joined)."""
    names: dict[str, str] = {}
    for position, step in enumerate(steps, start=1):
        path = f"{parent}/{position}" if parent else str(position)
        if step.type == StepType.LOOP:
            names[path] = step.name
            names.update(loop_names(step.steps, path))
    return names


def _parse_time(value: object, fallback: datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return fallback
    return fallback


class _Tracked:
    """The journal's live state for one run."""

    def __init__(self, run: RunLike, now: datetime) -> None:
        self.run = run
        self.started_at = _parse_time(run.row.get("started_at"), now)
        self.loop_names = loop_names(run.recipe.steps)
        self.done_planned_ms = 0.0
        self.step: PlanStep | None = None
        self.step_started_at: datetime | None = None
        self.timeline: deque[TimelineEntry] = deque(maxlen=MAX_TIMELINE)


class RunJournal:
    """The current run's step timeline and the last finished runs, fed by the run controller's hooks."""

    def __init__(self, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock
        self._current: _Tracked | None = None
        self._finished: deque[FinishedRun] = deque(maxlen=MAX_RECENT_RUNS)

    def _track(self, run: RunLike) -> _Tracked:
        if self._current is None or self._current.run.id != run.id:
            self._current = _Tracked(run, self._clock())
        return self._current

    def step_started(self, run: RunLike, step: PlanStep) -> None:
        tracked = self._track(run)
        tracked.step, tracked.step_started_at = step, self._clock()

    def step_ended(self, run: RunLike, record: StepRecord) -> None:
        tracked = self._track(run)
        if record.status == "succeeded":
            tracked.done_planned_ms += record.planned_ms
        step = tracked.step if tracked.step is not None and tracked.step.index == record.seq else None
        loops = (
            tuple((tracked.loop_names.get(lp.path, "Loop"), lp.iteration, lp.count) for lp in step.loops)
            if step
            else ()
        )
        tracked.timeline.append(
            TimelineEntry(
                seq=record.seq,
                path=record.path,
                name=record.name,
                type=record.type,
                loops=loops,
                planned_ms=record.planned_ms,
                actual_ms=record.actual_ms,
                status=str(record.status),
                started_at=record.started_at,
            )
        )

    def run_ended(self, run: RunLike) -> None:
        tracked = self._track(run)
        row, now = run.row, self._clock()
        self._finished.appendleft(
            FinishedRun(
                id=run.id,
                recipe_name=run.recipe.name,
                status=str(row.get("status")),
                error=row.get("error"),
                started_at=tracked.started_at,
                finished_at=_parse_time(row.get("finished_at"), now),
                completed_steps=int(row.get("completed_steps") or 0),
                total_steps=run.plan.total_steps,
            )
        )
        self._current = None

    def current(self, active: RunLike | None) -> CurrentRun | None:
        """The active run (as the controller has it now), with what the journal saw of its steps."""
        if active is None:
            return None
        tracked = self._track(active)
        row = active.row
        return CurrentRun(
            id=active.id,
            recipe_name=active.recipe.name,
            status=str(row.get("status")),
            error=row.get("error"),
            started_at=tracked.started_at,
            completed_steps=int(row.get("completed_steps") or 0),
            total_steps=active.plan.total_steps,
            total_ms=active.plan.total_ms,
            done_planned_ms=tracked.done_planned_ms,
            step=tracked.step,
            step_started_at=tracked.step_started_at,
            loop_names=tracked.loop_names,
            timeline=tuple(tracked.timeline),
        )

    def finished(self) -> tuple[FinishedRun, ...]:
        """The last finished runs, newest first."""
        return tuple(self._finished)
