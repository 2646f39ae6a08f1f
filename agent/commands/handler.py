"""What each claimed command does, and the rules that may refuse it (status `rejected`, with the reason).

- start_recipe {recipe_id}: load the recipe from Supabase, validate it against the register map (every
  problem reported), compile, start. The command stays `running` until the run ends, then `succeeded` or
  `failed` with the run's error.
- stop_recipe / pause_recipe / resume_recipe: act on the active run; refused when there is none, or (pause,
  resume) when the run is not in the state they need. A stop `succeeded` once the run has ended and the PLC
  confirmed the safe state, not when it was merely asked; `failed` (with the PLC's errors) otherwise.
- ack_alarm {alarm_id: <uuid> | "all"}: acknowledge one open alarm, or every unacknowledged one
  (agent.alarms.AlarmBook); who acknowledged is the command's `requested_by`. An id that is not an open alarm
  of this machine is refused with that reason. Allowed at any time, run or not.
- set_parameter {key, value}: through the safety gate (agent.safety.WriteGate: writable, range, whole numbers,
  never a pulse valve opened, never the watchdog register, permit interlocks) with read-back; refused while a
  run is active unless it is paused (an operator must not fight the recipe).

Whatever happens, a claimed command ends with a status: an unexpected error (a bug) fails it with the reason
instead of leaving it `claimed`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from loguru import logger

from agent.alarms import AlarmBook
from agent.cloud import CloudClient
from agent.commands.model import (
    AckAlarmPayload,
    Command,
    CommandType,
    SetParameterPayload,
    StartRecipePayload,
    parse_command,
)
from agent.errors import CloudError, CommandError, PlcError, RecipeError, ValidationError
from agent.limits import MAX_RECIPE_STEPS
from agent.recipes import InvalidRecipe, Recipe, compile_recipe
from agent.safety import RunController, WriteGate, WritePurpose, recipe_conflicts

__all__ = ["CommandHandler", "load_recipe"]

#: Rows asked for per page of `recipe_steps` (Supabase's default `max_rows`; a server allowing fewer is
#: paged just the same, by what it returned).
RECIPE_PAGE_ROWS = 1_000
#: A stop ends the run within ~100 ms (the executor closes the valve at once); the bound only matters when the
#: PLC stops answering mid-stop, each safe-state write then waiting for its own timeout.
STOP_CONFIRM_S = 10.0


async def load_recipe(cloud: CloudClient, recipe_id: str) -> Recipe:
    """The recipe and all its steps from Supabase. Raises `CommandError` if it does not exist.

    PostgREST answers at most `max_rows` rows a request (1,000 on Supabase): one select would silently drop
    the rest of a larger recipe, so steps are read in pages (by `id`, unique, so no row is read twice or
    skipped) until an empty page — or until there are more than `MAX_RECIPE_STEPS`, which is refused anyway.
    """
    recipes = await cloud.select("recipes", eq={"id": recipe_id})
    if not recipes:
        raise CommandError(f"unknown recipe {recipe_id}")
    steps: list[dict[str, Any]] = []
    while len(steps) <= MAX_RECIPE_STEPS:
        page = await cloud.select(
            "recipe_steps", eq={"recipe_id": recipe_id}, order="id", limit=RECIPE_PAGE_ROWS, offset=len(steps)
        )
        if not page:
            break
        steps += page
    # Up to MAX_RECIPE_STEPS rows: ~50 ms of CPU at the limit (bench/RESULTS.md, "Recipe limits"): off the loop.
    return await asyncio.to_thread(Recipe.from_rows, recipes[0], steps)


class CommandHandler:
    def __init__(
        self,
        *,
        cloud: CloudClient,
        gate: WriteGate,
        runs: RunController,
        alarms: AlarmBook | None = None,
        on_latency: Callable[[float], None] = lambda _s: None,
        on_claimed: Callable[[int, str], None] = lambda _id, _type: None,
    ) -> None:
        self.cloud, self.gate, self.runs, self.on_latency = cloud, gate, runs, on_latency
        self.alarms = alarms
        #: Commands being handled now (a take-over must not settle them as a dead holder's leftovers).
        self.in_flight: set[int] = set()
        self.on_claimed = on_claimed  # (id, type) of each claimed row: the metrics count outcomes by type

    async def __call__(self, row: dict[str, Any]) -> None:
        """Handle one claimed row; always leaves the row in a final or running state with a reason."""
        created = row.get("created_at")
        if isinstance(created, str):
            self.on_latency((datetime.now(UTC) - datetime.fromisoformat(created)).total_seconds())
        command_id = int(row["id"])
        self.on_claimed(command_id, str(row.get("type")))
        self.in_flight.add(command_id)
        try:
            await self._handle(command_id, row)
        finally:
            self.in_flight.discard(command_id)

    async def _handle(self, command_id: int, row: dict[str, Any]) -> None:
        try:
            command = parse_command(row)
            logger.info("command {}: {} {}", command.id, command.type, command.payload.model_dump(mode="json"))
            final = await self._dispatch(command)
        except (CommandError, ValidationError, RecipeError) as exc:
            logger.warning("command {}: rejected: {}", command_id, exc)
            self.runs.finish_command(command_id, "rejected", error=str(exc))
            return
        except (PlcError, CloudError) as exc:
            logger.error("command {}: failed: {}", command_id, exc)
            self.runs.finish_command(command_id, "failed", error=str(exc))
            return
        except Exception as exc:  # a bug must not leave the command claimed forever
            logger.exception("command {}: internal error", command_id)
            self.runs.finish_command(command_id, "failed", error=f"internal error: {type(exc).__name__}: {exc}")
            return
        if final is not None:
            self.runs.finish_command(command_id, final)

    async def _dispatch(self, command: Command) -> str | None:
        """Returns the final status, or None when the command stays `running` (start_recipe)."""
        match command.type:
            case CommandType.START_RECIPE:
                await self._start(command)
                return None
            case CommandType.STOP_RECIPE:
                await self._stop(command)
            case CommandType.PAUSE_RECIPE:
                self.runs.pause()
            case CommandType.RESUME_RECIPE:
                self.runs.resume()
            case CommandType.SET_PARAMETER:
                await self._set_parameter(command.payload)
            case CommandType.ACK_ALARM:
                self._ack_alarm(command)
        return "succeeded"

    def _ack_alarm(self, command: Command) -> None:
        payload: AckAlarmPayload = command.payload
        if self.alarms is None:
            raise CommandError("ack_alarm: this agent keeps no alarms")
        by = command.requested_by or f"command {command.id}"
        acked = self.alarms.acknowledge(payload.alarm_id, by=by)
        logger.info("command {}: {} alarm(s) acknowledged by {}", command.id, len(acked), by)

    async def _stop(self, command: Command) -> None:
        self.runs.stop(f"stop requested by command {command.id}")
        try:
            outcome = await asyncio.wait_for(self.runs.wait(), STOP_CONFIRM_S)
        except TimeoutError:
            raise PlcError(f"the run did not end within {STOP_CONFIRM_S:.0f} s of the stop") from None
        if outcome is not None and not outcome.safe_state_ok:
            errors = "; ".join(outcome.safe_state_errors) or "not confirmed"
            raise PlcError(f"the run stopped, but the PLC did not confirm the safe state: {errors}")

    async def _start(self, command: Command) -> None:
        payload: StartRecipePayload = command.payload
        if self.runs.active is not None:
            raise CommandError(f"a run is already active ({self.runs.active.id})")
        recipe = await load_recipe(self.cloud, str(payload.recipe_id))
        conflicts = recipe_conflicts(recipe, self.gate.interlocks, self.gate.map)  # the tree only: cheap
        if conflicts:
            raise InvalidRecipe(conflicts, recipe=recipe.name)
        # Validated against this machine's map and compiled in one pass, in a thread: at the limits
        # (agent.limits) that is ~40 ms of CPU (bench/RESULTS.md, "Recipe limits") the sampler and the PLC
        # watchdog need meanwhile. Raises InvalidRecipe: every problem, limits included, the message bounded.
        plan = await asyncio.to_thread(compile_recipe, recipe, register_map=self.gate.map)
        self.runs.finish_command(command.id, "running")
        self.runs.start(recipe, plan, command_id=command.id)

    async def _set_parameter(self, payload: SetParameterPayload) -> None:
        if self.runs.active is not None and not self.runs.paused:
            raise CommandError(
                f"a recipe is running ({self.runs.active.id}): set_parameter is only allowed while it is paused"
            )
        started = time.monotonic()
        value = await self.gate.write(payload.key, payload.value, purpose=WritePurpose.OPERATOR)
        logger.info("set {} = {} ({:.1f} ms, verified)", payload.key, value, (time.monotonic() - started) * 1000)
