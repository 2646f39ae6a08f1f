"""The executor's states, its legal moves and the records it reports. Pure: data and one check.

    IDLE ──run()──▶ RUNNING ──pause() at the next step boundary──▶ PAUSED
                    │  ▲                                              │
                    │  └──────────────────resume()────────────────────┤
                    │                                                 │
                    ├──stop(), step error, cancellation──▶ STOPPING ◀─┘ stop(), cancellation
                    │                                         │ safe state applied
                    └──last step done, safe state applied──▶ FINISHED ◀┘

`IDLE → STOPPING` is legal too: a stop that arrives before `run()` starts ends the run as aborted without
running a step. FINISHED is final: an executor runs one plan once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from agent.errors import TransitionError
from agent.recipes.compiler import PlanStep

__all__ = [
    "TRANSITIONS",
    "Progress",
    "RunOutcome",
    "RunStatus",
    "State",
    "StepRecord",
    "StepStatus",
    "check_transition",
]


class State(StrEnum):
    IDLE = "idle"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"
    FINISHED = "finished"


TRANSITIONS: dict[State, frozenset[State]] = {
    State.IDLE: frozenset({State.RUNNING, State.STOPPING}),
    State.RUNNING: frozenset({State.PAUSED, State.STOPPING, State.FINISHED}),
    State.PAUSED: frozenset({State.RUNNING, State.STOPPING}),
    State.STOPPING: frozenset({State.FINISHED}),
    State.FINISHED: frozenset(),
}


def check_transition(old: State, new: State) -> None:
    """Raise `TransitionError` unless `old → new` is in `TRANSITIONS`."""
    if new not in TRANSITIONS[old]:
        allowed = ", ".join(sorted(TRANSITIONS[old])) or "nothing (final)"
        raise TransitionError(f"recipe executor cannot go {old} → {new} (from {old}: {allowed})")


class RunStatus(StrEnum):
    """How a run ended; the same words as `process_runs.status`."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTED = "aborted"


class StepStatus(StrEnum):
    """How one step ended; the same words as `run_steps.status`."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTED = "aborted"


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One executed step, shaped like a `run_steps` row (without run_id). Times: UTC wall clock, derived from
    the monotonic clock within the step so a clock jump cannot distort `actual_ms`."""

    seq: int
    path: str
    type: str
    name: str
    planned_ms: float
    started_at: datetime
    ended_at: datetime
    actual_ms: float
    status: StepStatus
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a run ended. `error` names the step path on failure; `safe_state_ok` is False when the safe state
    could not be confirmed (PLC gone): the app must re-apply it with `apply_safe_state` on reconnect."""

    status: RunStatus
    error: str | None
    completed_steps: int
    total_steps: int
    reason: str
    safe_state_ok: bool
    safe_state_errors: tuple[str, ...] = ()
    touched: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Progress:
    """A snapshot for the app: `current` is the step running, or the next one at a boundary or while paused."""

    state: State
    completed: int
    total: int
    current: PlanStep | None

    @property
    def loop_iteration(self) -> int | None:
        return None if self.current is None else self.current.loop_iteration

    @property
    def loop_count(self) -> int | None:
        return None if self.current is None else self.current.loop_count
