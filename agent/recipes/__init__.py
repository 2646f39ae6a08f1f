"""Recipes: model and loading, validation, compiler (loops → flat plan), executor (state machine, safe state).

    Recipe.from_rows(...) / Recipe.from_document(...)      model.py     the step tree, as stored
    validate(recipe, register_map) → [Problem]             validate.py  every problem at once
    compile_recipe(recipe) → Plan                          compiler.py  nested loops expanded, counts exact
    await RecipeExecutor(device, plan, hooks…).run()       executor.py  pause/resume/stop, one safe state
    await apply_safe_state(device)                         safe_state.py  valves closed, MFC 0 (heaters kept)

Everything above the executor is pure; the executor's only I/O is the PLC, through `PlcDevice.write`.
"""

from agent.recipes.compiler import LoopIteration, Plan, PlanStep, compile_recipe
from agent.recipes.config import (
    LoopConfig,
    ParameterConfig,
    PurgeConfig,
    StepConfig,
    StepType,
    ValveConfig,
    WaitConfig,
    WaitSpec,
)
from agent.recipes.executor import RecipeExecutor
from agent.recipes.model import DOCUMENT_FORMAT, Problem, Recipe, RecipeStep
from agent.recipes.safe_state import SafeStateResult, apply_safe_state, safe_state_writes
from agent.recipes.states import TRANSITIONS, Progress, RunOutcome, RunStatus, State, StepRecord, StepStatus
from agent.recipes.validate import DEFAULT_MAX_DEPTH, InvalidRecipe, check_structure, ensure_valid, pv_key, validate

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DOCUMENT_FORMAT",
    "TRANSITIONS",
    "InvalidRecipe",
    "LoopConfig",
    "LoopIteration",
    "ParameterConfig",
    "Plan",
    "PlanStep",
    "Problem",
    "Progress",
    "PurgeConfig",
    "Recipe",
    "RecipeExecutor",
    "RecipeStep",
    "RunOutcome",
    "RunStatus",
    "SafeStateResult",
    "State",
    "StepConfig",
    "StepRecord",
    "StepStatus",
    "StepType",
    "ValveConfig",
    "WaitConfig",
    "WaitSpec",
    "apply_safe_state",
    "check_structure",
    "compile_recipe",
    "ensure_valid",
    "pv_key",
    "safe_state_writes",
    "validate",
]
