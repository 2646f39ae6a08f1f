"""Runs one recipe at a time for the machine and records it: process_runs, run_steps, machine status.

The executor (agent.recipes) knows only the PLC; this controller gives it the gate's `RunPort` (the run's
outputs, bound to the map it starts with), turns its hooks into spool records — never awaiting, so nothing
here sits on the step-timing path — and applies the rules around runs: one active run, pause/resume/stop only
when they make sense, the command that started a run finishes with it, and a run cut by a crash is marked
`interrupted` by the next holder (never resumed silently).

It is an `async with` resource entered after the PLC connection: whatever ends the agent (SIGTERM, a crashed
duty, a bug), leaving it brings a running recipe to its safe state *before* the PLC connection closes, and
leaves the run, command and machine records final.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from loguru import logger

from agent.errors import CommandError
from agent.limits import MAX_ERROR_CHARS
from agent.plc import PlcDevice
from agent.quoting import clip
from agent.recipes import (
    Plan,
    PlanStep,
    Recipe,
    RecipeExecutor,
    RunOutcome,
    RunStatus,
    State,
    StepRecord,
)
from agent.safety.gate import WriteGate
from agent.spool import SpoolWriter
from agent.tasks import cancel_and_wait

__all__ = ["ActiveRun", "RunController"]

ACTIVE_STATUSES = ("running", "paused")
#: What a progress update sends (machine_id too, so even a lone progress row is a valid insert).
PROGRESS_COLUMNS = ("id", "machine_id", "status", "error", "total_steps", "completed_steps", "current_step")


def _describe(exc: BaseException) -> str:
    """What killed the agent, in words: the leaves of a TaskGroup's exception group, not the group."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _notify(hooks: list[Callable[..., None]], *args: Any) -> None:
    for hook in hooks:
        try:
            hook(*args)
        except Exception:
            logger.exception("run observer failed")


@dataclass
class ActiveRun:
    id: str
    command_id: int | None
    recipe: Recipe
    plan: Plan
    executor: RecipeExecutor
    row: dict[str, Any]
    task: asyncio.Task[RunOutcome] | None = None


class RunController:
    def __init__(
        self,
        *,
        device: PlcDevice,
        gate: WriteGate,
        writer: SpoolWriter,
        machine_id: str,
        on_step_timing_error: Callable[[float], None] = lambda _s: None,
        exit_timeout_s: float = 10.0,
    ) -> None:
        self.device, self.gate, self.writer, self.machine_id = device, gate, writer, machine_id
        self.on_step_timing_error = on_step_timing_error
        self.exit_timeout_s = exit_timeout_s
        self.active: ActiveRun | None = None
        self.finished = asyncio.Event()  # set whenever no run is active
        self.finished.set()
        #: Called (synchronously) after every run has ended and its records were queued: a deferred map applies.
        self.on_finished: list[Callable[[], None]] = []
        #: Observers (the operator console's journal), called synchronously after the controller's own records;
        #: one that fails is logged and never disturbs the run (they sit on the step-timing path).
        self.on_step_started: list[Callable[[ActiveRun, PlanStep], None]] = []
        self.on_step_ended: list[Callable[[ActiveRun, StepRecord], None]] = []
        self.on_run_ended: list[Callable[[ActiveRun], None]] = []

    async def __aenter__(self) -> RunController:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        """Leaving with a run active (a crash, a cancelled TaskGroup): safe state now, records final."""
        if self.active is not None:
            why = f"the agent is stopping ({_describe(exc)})" if exc is not None else "the agent is stopping"
            logger.error("run {}: {}; stopping it into its safe state", self.active.id, why)
            await self.abort(why, timeout_s=self.exit_timeout_s)

    # --- queries -----------------------------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return self.active is not None and self.active.executor.state is State.PAUSED

    def current(self) -> dict[str, Any] | None:
        """The active run for /health: id, status, progress."""
        if self.active is None:
            return None
        row = self.active.row
        return {k: row[k] for k in ("id", "recipe_id", "status", "completed_steps", "total_steps", "current_step")}

    # --- commands --------------------------------------------------------------------------------------

    def start(self, recipe: Recipe, plan: Plan, *, command_id: int | None) -> str:
        if self.active is not None:
            raise CommandError(f"a run is already active ({self.active.id}, {self.active.row['status']})")
        run_id = str(uuid.uuid4())
        # the hooks close over `run`, bound on the next statement and before the executor can call them
        executor = RecipeExecutor(
            self.device,
            plan,
            outputs=self.gate.for_run(self.device.map),
            on_transition=lambda old, new: self._transitioned(run, old, new),
            on_step_start=lambda step, _wall, _mono: self._step_started(run, step),
            on_step_end=lambda record: self._step_ended(run, record),
        )
        run = ActiveRun(
            run_id,
            command_id,
            recipe,
            plan,
            executor,
            row={
                "id": run_id,
                "machine_id": self.machine_id,
                "recipe_id": recipe.id,
                "command_id": command_id,
                "recipe_snapshot": recipe.to_snapshot(),
                "status": "running",
                "started_at": _now(),
                "finished_at": None,
                "error": None,
                "total_steps": plan.total_steps,
                "completed_steps": 0,
                "current_step": None,
            },
        )
        self.active = run
        self.finished.clear()
        self._write_run(run, full=True)
        self._machine("running", run_id)
        run.task = asyncio.create_task(self._drive(run), name=f"run {run_id}")
        logger.info(
            "run {}: started '{}' ({} steps, {:.1f} s planned)",
            run_id,
            recipe.name,
            plan.total_steps,
            plan.total_ms / 1000,
        )
        return run_id

    def pause(self) -> None:
        run = self._require("pause")
        if run.executor.state is not State.RUNNING:
            raise CommandError(f"cannot pause: the run is {run.executor.state.value}")
        run.executor.pause()

    def resume(self) -> None:
        run = self._require("resume")
        if run.executor.state is not State.PAUSED:
            raise CommandError(f"cannot resume: the run is {run.executor.state.value}, not paused")
        run.executor.resume()

    def stop(self, reason: str) -> None:
        self._require("stop").executor.stop(reason)

    def hold(self, reason: str) -> None:
        """Pause at the next step boundary for a safety reason (a trip interlock with action `hold`): the reason
        shows in the run's `error` while it is held, and clears on resume."""
        run = self.active
        if run is None or run.executor.state is not State.RUNNING:
            return
        run.executor.pause()
        run.row["error"] = reason
        self._write_run(run, full=True)

    async def wait(self) -> RunOutcome | None:
        """Wait for the active run (if any) to end; its outcome."""
        run = self.active
        if run is None or run.task is None:
            return None
        return await asyncio.shield(run.task)

    async def abort(self, reason: str, *, timeout_s: float) -> None:
        """Stop the active run now and wait (shutdown, lease loss). Safe state is the executor's `finally`."""
        run = self.active
        if run is None or run.task is None:
            return
        run.executor.stop(reason)
        try:
            await asyncio.wait_for(asyncio.shield(run.task), timeout_s)
        except TimeoutError:
            await cancel_and_wait([run.task])
        except asyncio.CancelledError:
            if not run.task.done():
                await cancel_and_wait([run.task])
            raise

    def _require(self, verb: str) -> ActiveRun:
        if self.active is None:
            raise CommandError(f"cannot {verb}: no recipe is running")
        return self.active

    # --- execution and records -------------------------------------------------------------------------

    async def _drive(self, run: ActiveRun) -> RunOutcome:
        try:
            outcome = await run.executor.run()
        except asyncio.CancelledError:
            # the executor's own `finally` applied the safe state and left its outcome, unless it never started
            outcome = run.executor.outcome or self._outcome(run, "aborted", "agent shutting down", "cancelled")
            outcome = dataclasses.replace(outcome, error=outcome.error or "agent shutting down")
            self._finish(run, outcome)
            raise
        except Exception as exc:  # an executor bug must still leave a recorded, safe machine
            logger.exception("run {}: executor crashed", run.id)
            safe = await self.gate.apply_safe_state([run.executor.outputs.map])
            outcome = self._outcome(run, "failed", f"internal error: {exc}", "error", safe_state_ok=safe.ok)
        self._finish(run, outcome)
        return outcome

    @staticmethod
    def _outcome(run: ActiveRun, status: str, error: str, reason: str, *, safe_state_ok: bool = False) -> RunOutcome:
        return RunOutcome(
            status=RunStatus(status),
            error=error,
            completed_steps=run.row["completed_steps"],
            total_steps=run.plan.total_steps,
            reason=reason,
            safe_state_ok=safe_state_ok,
        )

    def _finish(self, run: ActiveRun, outcome: RunOutcome) -> None:
        error = outcome.error or (outcome.reason if outcome.status != RunStatus.SUCCEEDED else None)
        run.row.update(
            status=str(outcome.status), finished_at=_now(), error=error, completed_steps=outcome.completed_steps
        )
        self._write_run(run, full=True)
        if not outcome.safe_state_ok:
            self.gate.note_unsafe(f"run {run.id} ended without a confirmed safe state")
        self._machine("idle" if outcome.status != "failed" else "error", None)
        if run.command_id is not None:
            failed = outcome.status != RunStatus.SUCCEEDED
            self.finish_command(
                run.command_id,
                "failed" if failed else "succeeded",
                error=(f"run {outcome.status}: {error}" if failed else None),
            )
        logger.info(
            "run {}: {} ({}/{} steps){}",
            run.id,
            outcome.status,
            outcome.completed_steps,
            run.plan.total_steps,
            f": {error}" if error else "",
        )
        _notify(self.on_run_ended, run)
        self.active = None
        self.finished.set()
        for hook in self.on_finished:
            try:
                hook()
            except Exception:
                logger.exception("run-finished hook failed")

    def _step_started(self, run: ActiveRun, step: PlanStep) -> None:
        run.row["current_step"] = step.describe()
        self._write_run(run)
        _notify(self.on_step_started, run, step)

    def _step_ended(self, run: ActiveRun, record: StepRecord) -> None:
        if record.status == "succeeded":
            run.row["completed_steps"] = min(run.row["completed_steps"] + 1, run.plan.total_steps)
        self.writer.submit(
            "step",
            {
                "run_id": run.id,
                "seq": record.seq,
                "path": record.path,
                "type": record.type,
                "name": record.name,
                "planned_ms": record.planned_ms,
                "started_at": record.started_at.isoformat(),
                "ended_at": record.ended_at.isoformat() if record.ended_at else None,
                "actual_ms": record.actual_ms,
                "status": record.status,
                "detail": record.detail,
            },
        )
        if record.status == "succeeded" and record.planned_ms:
            # valves: the hold measured at the PLC's acknowledgements; other steps: actual − planned
            error_ms = record.detail.get("timing_error_ms", record.actual_ms - record.planned_ms)
            self.on_step_timing_error(error_ms / 1000)

        self._write_run(run)
        _notify(self.on_step_ended, run, record)

    def _transitioned(self, run: ActiveRun, old: State, new: State) -> None:
        if new is State.PAUSED:
            run.row["status"] = "paused"
            self._machine("paused", run.id)
        elif old is State.PAUSED and new is State.RUNNING:
            run.row["status"], run.row["error"] = "running", None
            self._machine("running", run.id)
        else:
            return
        self._write_run(run)

    def _write_run(self, run: ActiveRun, *, full: bool = False) -> None:
        """The whole row (with the recipe snapshot) at start and end; in between only the progress columns,
        so the work per step stays constant however long the recipe is (bench/RESULTS.md, issue #5)."""
        row = dict(run.row) if full else {k: run.row[k] for k in PROGRESS_COLUMNS}
        self.writer.submit("run", row)

    def _machine(self, status: str, run_id: str | None) -> None:
        self.writer.submit("machine", {"id": self.machine_id, "values": {"status": status, "current_run_id": run_id}})

    def finish_command(self, command_id: int, status: str, *, error: str | None = None) -> None:
        """The command's status (and error, clipped: it may quote whatever the dashboard sent) through the spool."""
        values: dict[str, Any] = {"status": status, "error": None if error is None else clip(error, MAX_ERROR_CHARS)}
        if status in ("succeeded", "failed", "rejected"):
            values["finished_at"] = _now()
        self.writer.submit("command", {"id": command_id, "values": values})

    # --- recovery ----------------------------------------------------------------------------------------

    def mark_interrupted(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Runs a previous holder left running/paused (crash, kill -9) become `interrupted`; the rows fixed.

        `rows` are what is known of this machine's runs, oldest first: Supabase's rows, then run records still
        waiting in the local spool (a crash can leave them unshipped), merged by id in that order; the
        interrupted records go through the spool after them, so they win. The active run (ours) is left alone.
        """
        merged: dict[str, dict[str, Any]] = {}
        for row in rows:
            merged[row["id"]] = merged.get(row["id"], {}) | row
        ours = self.active.id if self.active else None
        stale = [r for r in merged.values() if r.get("status") in ACTIVE_STATUSES and r["id"] != ours]
        for row in stale:
            # only the progress columns (and what the row says): never blank out a snapshot we do not hold
            fixed = {k: row[k] for k in PROGRESS_COLUMNS if k in row}
            fixed.update(
                status="interrupted",
                finished_at=_now(),
                error="the agent stopped during the run (crash or kill); the run was not resumed",
            )
            self.writer.submit("run", fixed)
            logger.warning("run {}: marked interrupted (left {} by a previous agent)", row["id"], row["status"])
        if stale and self.active is None:
            self._machine("idle", None)
        return stale
