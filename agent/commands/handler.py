"""What each claimed command does, and the rules that may refuse it (status `rejected`, with the reason).

- start_recipe {recipe_id}: load the recipe from Supabase, validate it against the register map (every
  problem reported), compile, start. The command stays `running` until the run ends, then `succeeded` or
  `failed` with the run's error.
- stop_recipe / pause_recipe / resume_recipe: act on the active run; refused when there is none, or (pause,
  resume) when the run is not in the state they need. A stop `succeeded` once the run has ended and the PLC
  confirmed the safe state, not when it was merely asked; `failed` (with the PLC's errors) otherwise.
- set_parameter {key, value}: the validated write path with read-back; refused while a run is active unless
  it is paused (an operator must not fight the recipe).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from loguru import logger

from agent.cloud import CloudClient
from agent.commands.model import Command, CommandType, SetParameterPayload, StartRecipePayload, parse_command
from agent.errors import CloudError, CommandError, PlcError, RecipeError, ValidationError
from agent.plc import PlcDevice
from agent.recipes import Recipe, compile_recipe, validate
from agent.runner import RunController

__all__ = ["CommandHandler", "load_recipe"]

#: A stop ends the run within ~100 ms (the executor closes the valve at once); the bound only matters when the
#: PLC stops answering mid-stop, each safe-state write then waiting for its own timeout.
STOP_CONFIRM_S = 10.0


async def load_recipe(cloud: CloudClient, recipe_id: str) -> Recipe:
    """The recipe and its steps from Supabase. Raises `CommandError` if it does not exist."""
    recipes = await cloud.select("recipes", eq={"id": recipe_id})
    if not recipes:
        raise CommandError(f"unknown recipe {recipe_id}")
    steps = await cloud.select("recipe_steps", eq={"recipe_id": recipe_id}, order="sequence")
    return Recipe.from_rows(recipes[0], steps)


class CommandHandler:
    def __init__(
        self,
        *,
        cloud: CloudClient,
        device: PlcDevice,
        runs: RunController,
        on_latency: Callable[[float], None] = lambda _s: None,
        on_claimed: Callable[[int, str], None] = lambda _id, _type: None,
    ) -> None:
        self.cloud, self.device, self.runs, self.on_latency = cloud, device, runs, on_latency
        self.on_claimed = on_claimed  # (id, type) of each claimed row: the metrics count outcomes by type

    async def __call__(self, row: dict[str, Any]) -> None:
        """Handle one claimed row; always leaves the row in a final or running state with a reason."""
        created = row.get("created_at")
        if isinstance(created, str):
            self.on_latency((datetime.now(UTC) - datetime.fromisoformat(created)).total_seconds())
        command_id = int(row["id"])
        self.on_claimed(command_id, str(row.get("type")))
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
        return "succeeded"

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
        problems = validate(recipe, self.device.map)
        if problems:
            raise RecipeError("invalid recipe:\n" + "\n".join(str(p) for p in problems))
        plan = compile_recipe(recipe)
        self.runs.finish_command(command.id, "running")
        self.runs.start(recipe, plan, command_id=command.id)

    async def _set_parameter(self, payload: SetParameterPayload) -> None:
        if self.runs.active is not None and not self.runs.paused:
            raise CommandError(
                f"a recipe is running ({self.runs.active.id}): set_parameter is only allowed while it is paused"
            )
        started = time.monotonic()
        value = await self.device.write(payload.key, payload.value)
        logger.info("set {} = {} ({:.1f} ms, verified)", payload.key, value, (time.monotonic() - started) * 1000)
