"""Recipe → flat plan: nested loops expanded, depth-first by sequence, step count exact. Pure.

The step-count rule (what `process_runs.total_steps` and the dashboard show): a loop is not a step; it
contributes `count × (steps inside it)`, recursively; every other step counts 1. Worked example, the seeded
Al2O3 recipe: 3 steps, a 100× loop of 4 steps, 2 steps → 3 + 100·4 + 2 = 405. The nanolaminate:
3 + 5·(10·4 + 10·4) + 1 = 404. (Upstream counted a loop's expansion twice.)

Planned time: valve/purge/wait count their `duration_ms`; a parameter step counts `PLANNED_WRITE_MS` — its
write — and never its wait timeout, which is an upper bound, not a plan.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from agent.recipes.model import (
    LoopConfig,
    ParameterConfig,
    PurgeConfig,
    Recipe,
    RecipeStep,
    StepType,
    ValveConfig,
    WaitConfig,
    parse_config,
)
from agent.recipes.validate import DEFAULT_MAX_DEPTH, InvalidRecipe, check_structure

__all__ = ["PLANNED_WRITE_MS", "LoopIteration", "Plan", "PlanStep", "compile_recipe"]

#: A setpoint write is one or two Modbus round trips (about a millisecond on a LAN): planned as instantaneous.
PLANNED_WRITE_MS = 0.0

ActionConfig = ValveConfig | PurgeConfig | ParameterConfig | WaitConfig


@dataclass(frozen=True, slots=True)
class LoopIteration:
    """Where a planned step sits in one enclosing loop: `iteration` is 1-based, of `count`."""

    path: str
    iteration: int
    count: int


@dataclass(frozen=True, slots=True)
class PlanStep:
    """One executable step. `index` is its 0-based position in the plan (= `run_steps.seq`); `path` names the
    recipe step it came from, so it repeats across loop iterations; `loops` lists enclosing loops, outermost
    first."""

    index: int
    path: str
    type: StepType
    name: str
    config: ActionConfig
    planned_ms: float
    loops: tuple[LoopIteration, ...] = ()

    @property
    def loop_iteration(self) -> int | None:
        """Iteration of the innermost enclosing loop (None at top level)."""
        return self.loops[-1].iteration if self.loops else None

    @property
    def loop_count(self) -> int | None:
        return self.loops[-1].count if self.loops else None

    def describe(self) -> dict[str, Any]:
        """The `process_runs.current_step` shape: {path, type, name, loop_iteration, loop_count}."""
        return {
            "path": self.path,
            "type": str(self.type),
            "name": self.name,
            "loop_iteration": self.loop_iteration,
            "loop_count": self.loop_count,
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """The executable form of a recipe: steps in execution order, with the totals the dashboard shows."""

    recipe_id: str | None
    recipe_name: str
    recipe_version: int
    steps: tuple[PlanStep, ...]

    @property
    def total_steps(self) -> int:
        return len(self.steps)

    @property
    def total_ms(self) -> float:
        return sum(step.planned_ms for step in self.steps)


def compile_recipe(recipe: Recipe, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Plan:
    """Expand `recipe` into a `Plan`. Raises `InvalidRecipe` (a `RecipeError`) listing every structural
    problem; checks against a register map are `validate`'s job and should run first. Never mutates `recipe`.
    """
    problems = check_structure(recipe, max_depth=max_depth)
    if problems:
        raise InvalidRecipe(problems, recipe=recipe.name)
    steps = tuple(
        PlanStep(index, path, kind, step.name, config, _planned_ms(config), loops)
        for index, (path, kind, step, config, loops) in enumerate(_expand(recipe.steps, "", ()))
    )
    return Plan(recipe.id, recipe.name, recipe.version, steps)


def _expand(
    steps: Sequence[RecipeStep], parent: str, loops: tuple[LoopIteration, ...]
) -> Iterator[tuple[str, StepType, RecipeStep, ActionConfig, tuple[LoopIteration, ...]]]:
    for position, step in enumerate(steps, start=1):
        path = f"{parent}/{position}" if parent else str(position)
        kind = StepType(step.type)
        config, _ = parse_config(kind, step.config)  # check_structure proved it parses
        if isinstance(config, LoopConfig):
            for iteration in range(1, config.count + 1):
                yield from _expand(step.steps, path, (*loops, LoopIteration(path, iteration, config.count)))
        else:
            assert config is not None
            yield path, kind, step, config, loops


def _planned_ms(config: ActionConfig) -> float:
    if isinstance(config, ParameterConfig):
        return PLANNED_WRITE_MS
    return config.duration_ms
