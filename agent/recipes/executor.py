"""Runs a compiled `Plan` against the PLC: an explicit state machine with one safe-state `finally`.

The only I/O is PLC access: reads through `PlcDevice`, writes through `RunOutputs` (the safety gate, bound to
the run's map); there is no database or network call on
the timing path — progress leaves through the hooks, which must be quick (the app appends to the spool).

Controls, all synchronous and meant to be called from the event loop that runs `run()`:
- `pause()` takes effect at the next step boundary, where every valve is closed (a valve step closes its
  valve before it ends); `resume()` continues with the next step. `resume()` before the pause took effect
  cancels the pending pause.
- `stop(reason)` aborts now: the current hold is interrupted at once, the valve closes in the step's
  `finally`, then the run's `finally` applies the safe state.
- Cancelling the task running `run()` (SIGTERM) does the same, records the outcome in `executor.outcome`,
  and re-raises `CancelledError`.

Usage::

    executor = RecipeExecutor(device, plan, outputs=gate.for_run(), on_step_end=recorder.step_ended)
    outcome = await executor.run()      # RunOutcome(status=succeeded|failed|aborted, …)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from loguru import logger

from agent.errors import AgentError, PlcConnectionError, TransitionError
from agent.plc import PlcDevice
from agent.recipes.compiler import Plan, PlanStep
from agent.recipes.outputs import RunOutputs
from agent.recipes.safe_state import SafeStateResult, safe_state_writes
from agent.recipes.states import (
    Progress,
    RunOutcome,
    RunStatus,
    State,
    StepRecord,
    StepStatus,
    check_transition,
)
from agent.recipes.steps import HANDLERS, StepContext, StepInterrupted

__all__ = ["RecipeExecutor", "StepEndHook", "StepStartHook", "TransitionHook"]

TransitionHook = Callable[[State, State], None]
"""Called after every state change with (old, new)."""
StepStartHook = Callable[[PlanStep, datetime, float], None]
"""Called when a step starts with (step, UTC wall time, monotonic time)."""
StepEndHook = Callable[[StepRecord], None]
"""Called when a step ends, however it ended."""

_MS = 1000.0
#: The last stretch of a hold is spent yielding to the loop instead of on a timer: asyncio's epoll wait rounds
#: its timeout up to the next whole millisecond, so a timer fires 0–1 ms late (plus the loop's own turn); a
#: pulse's error budget is 5 ms (docs/DESIGN.md §8). Yielding (`sleep(0)`) keeps every other task running; the cost is
#: at most this much CPU per hold. Measured in bench/commands.py (bench/RESULTS.md, issue #5).
HOLD_SPIN_S = 0.0015
_REASONS = {RunStatus.SUCCEEDED: "completed", RunStatus.FAILED: "error"}
_NOT_APPLIED = SafeStateResult((), (("*", "safe state interrupted by a second cancellation"),))


class _StepFailed(Exception):
    """A step raised; the message already names the step path."""


class RecipeExecutor:
    """Executes one plan once. See the module docstring for controls; `progress` for the app's display."""

    def __init__(
        self,
        device: PlcDevice,
        plan: Plan,
        *,
        outputs: RunOutputs,
        on_transition: TransitionHook | None = None,
        on_step_start: StepStartHook | None = None,
        on_step_end: StepEndHook | None = None,
    ) -> None:
        self.device, self.plan, self.outputs = device, plan, outputs
        self.state = State.IDLE
        self.outcome: RunOutcome | None = None
        self._on_transition, self._on_step_start, self._on_step_end = on_transition, on_step_start, on_step_end
        self._stop = asyncio.Event()
        self._alarm = asyncio.Event()  # what ends a hold early: stop() or the PLC connection lost
        self._plc_losses, self._plc_lost_reason = 0, ""
        self._step_losses = 0  # `_plc_losses` when the current step started
        self._wake = asyncio.Event()  # resume() or stop() while paused
        self._pause_requested = False
        self._stop_reason = "stop requested"
        self._started = False
        self._completed = 0
        self._current: PlanStep | None = plan.steps[0] if plan.steps else None
        self._touched: dict[str, None] = {}  # insertion-ordered set of every output the run wrote
        self._log = logger.bind(area="recipe", recipe=plan.recipe_name)

    # --- controls ------------------------------------------------------------------------------------

    @property
    def progress(self) -> Progress:
        return Progress(self.state, self._completed, self.plan.total_steps, self._current)

    def pause(self) -> None:
        """Request a pause at the next step boundary. Raises `TransitionError` unless running or paused."""
        if self.state is State.PAUSED:
            return
        check_transition(self.state, State.PAUSED)
        self._pause_requested = True
        self._log.info("pause requested: takes effect after step {}", self._current and self._current.path)

    def resume(self) -> None:
        """Continue after a pause (or cancel a pause not yet taken). Raises `TransitionError` otherwise."""
        if self.state is State.RUNNING and self._pause_requested:
            self._pause_requested = False
            self._log.info("pending pause cancelled by resume")
            return
        if self.state is not State.PAUSED:
            raise TransitionError(f"cannot resume: the recipe executor is {self.state}, not paused")
        self._transition(State.RUNNING, "resume")
        self._wake.set()

    def stop(self, reason: str = "stop requested") -> None:
        """Abort now; the run ends `aborted` with `reason`. A second stop is a no-op; after the end it raises."""
        if self.state is State.STOPPING:
            return
        self._stop_reason = reason
        self._transition(State.STOPPING, reason)
        self._stop.set()
        self._alarm.set()
        self._wake.set()

    def _plc_lost(self, reason: str) -> None:
        self._plc_losses += 1
        self._plc_lost_reason = reason
        self._alarm.set()

    # --- the run -------------------------------------------------------------------------------------

    async def run(self) -> RunOutcome:
        """Execute the plan, apply the safe state, return how it ended (also kept in `self.outcome`)."""
        if self._started:
            raise TransitionError("this recipe executor has already run; compile a new one")
        self._started = True
        if self.state is State.IDLE:
            self._transition(State.RUNNING, "run")
        status, error, cancelled = RunStatus.ABORTED, None, False
        unsubscribe = self.device.connection.on_loss(self._plc_lost)
        try:
            for step in self.plan.steps:
                self._current = step
                if not await self._boundary():
                    break
                await self._run_step(step)
                self._completed += 1
            else:
                status = RunStatus.SUCCEEDED
                self._current = None
        except StepInterrupted:
            pass  # stop(): aborted, with the stop's reason
        except _StepFailed as exc:
            status, error = RunStatus.FAILED, str(exc)
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            unsubscribe()
            reason = _REASONS.get(status) or ("cancelled" if cancelled else self._stop_reason)
            if status is not RunStatus.SUCCEEDED and self.state is not State.STOPPING:
                self._transition(State.STOPPING, reason)
            await self._finish(status, error, reason)
        assert self.outcome is not None
        return self.outcome

    async def _finish(self, status: RunStatus, error: str | None, reason: str) -> None:
        """The one safe-state path, on every exit: finish, stop, error, lost PLC, cancellation."""
        safe = _NOT_APPLIED
        try:
            safe = await self.outputs.safe_state()
        finally:
            restored = {key for key, _ in safe_state_writes(self.outputs.map)}
            left = [key for key in self._touched if key not in restored]
            if left:
                self._log.info("left as set by the recipe (not part of the safe state): {}", ", ".join(left))
            self.outcome = RunOutcome(
                status=status,
                error=error,
                completed_steps=self._completed,
                total_steps=self.plan.total_steps,
                reason=reason,
                safe_state_ok=safe.ok,
                safe_state_errors=tuple(f"{key}: {message}" for key, message in safe.errors),
                touched=tuple(self._touched),
            )
            self._transition(State.FINISHED, f"{status}: {reason}")
            log = self._log.info if status is RunStatus.SUCCEEDED else self._log.warning
            log(
                "run {} after {}/{} steps{}",
                status,
                self._completed,
                self.plan.total_steps,
                f": {error}" if error else "",
            )

    async def _boundary(self) -> bool:
        """Between steps (all valves closed): take a requested pause here. False = stop requested."""
        _raise_if_cancel_was_swallowed()
        if self._pause_requested and not self._stop.is_set():
            self._pause_requested = False
            self._transition(State.PAUSED, f"pause before step {self._current and self._current.path}")
            while self.state is State.PAUSED:
                self._wake.clear()
                await self._wake.wait()
        return not self._stop.is_set()

    async def _run_step(self, step: PlanStep) -> None:
        started_wall, started_mono = datetime.now(UTC), time.monotonic()
        self._step_losses = self._plc_losses
        self._call(self._on_step_start, step, started_wall, started_mono)
        ctx = StepContext(self.device, self.outputs, step, started_mono, started_wall, self._hold_until, self._touch)
        status = StepStatus.FAILED
        try:
            await HANDLERS[step.type](ctx)
            status = StepStatus.SUCCEEDED
        except StepInterrupted:
            status = StepStatus.ABORTED
            ctx.detail["interrupted_by"] = self._stop_reason  # e.g. the trip interlock that stopped the run
            raise
        except asyncio.CancelledError:
            status = StepStatus.ABORTED
            raise
        except Exception as exc:
            ctx.detail["error"] = str(exc)
            if not isinstance(exc, AgentError):  # a bug, not a process event: keep the traceback
                self._log.exception("step {} raised", step.path)
            raise _StepFailed(f"step {step.path} {step.name!r}: {exc}") from exc
        finally:
            elapsed = time.monotonic() - started_mono
            if step.loops:
                ctx.detail["loops"] = [{"path": x.path, "iteration": x.iteration, "count": x.count} for x in step.loops]
            record = StepRecord(
                seq=step.index,
                path=step.path,
                type=str(step.type),
                name=step.name,
                planned_ms=step.planned_ms,
                started_at=started_wall,
                ended_at=started_wall + timedelta(seconds=elapsed),
                actual_ms=elapsed * _MS,
                status=status,
                detail=ctx.detail,
            )
            self._log.debug("step {} {} {}: {:.1f} ms", step.index, step.path, status, record.actual_ms)
            self._call(self._on_step_end, record)

    async def _hold_until(self, deadline: float) -> None:
        """Wait until `deadline` (monotonic) unless a stop comes first (then raise `StepInterrupted`) or the
        PLC connection is lost during the step (then raise `PlcConnectionError`: the step fails now, and its
        `finally` tries to close what it opened)."""
        _raise_if_cancel_was_swallowed()

        def interrupted() -> bool:
            return self._stop.is_set() or self._plc_losses != self._step_losses

        self._alarm.clear()  # a stop sets `_stop` as well, so clearing loses nothing that `interrupted` checks
        remaining = deadline - time.monotonic() - HOLD_SPIN_S
        if remaining > 0 and not interrupted():
            try:
                async with asyncio.timeout(remaining):
                    await self._alarm.wait()
            except TimeoutError:
                pass
        while not interrupted() and time.monotonic() < deadline:  # noqa: ASYNC110 (the spin: HOLD_SPIN_S)
            await asyncio.sleep(0)
        if self._stop.is_set():
            raise StepInterrupted(self._stop_reason)
        if self._plc_losses != self._step_losses:
            raise PlcConnectionError(f"PLC connection lost during the step: {self._plc_lost_reason}")

    def _touch(self, key: str) -> None:
        self._touched[key] = None

    def _transition(self, new: State, reason: str) -> None:
        old = self.state
        check_transition(old, new)
        self.state = new
        self._log.info("recipe {!r}: {} → {} ({})", self.plan.recipe_name, old, new, reason)
        self._call(self._on_transition, old, new)

    def _call(self, hook: Callable[..., None] | None, *args: object) -> None:
        """Hooks report; they must never break the run or its safe state, so their errors are only logged."""
        if hook is None:
            return
        try:
            hook(*args)
        except Exception:
            self._log.exception("recipe hook {} failed", getattr(hook, "__name__", hook))


def _raise_if_cancel_was_swallowed() -> None:
    """Honour a cancellation that a library swallowed.

    Python 3.11's `asyncio.wait_for` (inside pymodbus' request path) returns the reply instead of raising
    when the task is cancelled in the same loop iteration the reply arrives, so SIGTERM could be lost and the
    recipe would run on. The task still counts the request (`cancelling()`), so check it before every hold
    and boundary. Nothing here uncancels, so a non-zero count always means "cancel requested".
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError("cancellation requested earlier (swallowed by a library)")
