"""Recipes: model and loading, validation, compiler (loops → flat plan), executor (state machine, safe state).

    Recipe.from_rows(...) / Recipe.from_document(...)      model.py     the step tree, as stored
    validate(recipe, register_map) → [Problem]             validate.py  every problem at once
    compile_recipe(recipe) → Plan                          compiler.py  nested loops expanded, counts exact
    await RecipeExecutor(device, plan, outputs=…).run()    executor.py  pause/resume/stop, one safe state
    safe_state_writes(register_map)                        safe_state.py  valves closed, MFC 0 (heaters kept)

Everything above the executor is pure; the executor reads the PLC through `PlcDevice` and writes only through
`RunOutputs` (outputs.py), which the safety gate implements (agent.safety).
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
from agent.recipes.outputs import RunOutputs
from agent.recipes.safe_state import SafeStateResult, safe_state_writes
from agent.recipes.states import TRANSITIONS, Progress, RunOutcome, RunStatus, State, StepRecord, StepStatus
from agent.recipes.validate import (
    DEFAULT_MAX_DEPTH,
    InvalidRecipe,
    check_structure,
    ensure_valid,
    is_pulse_valve,
    pv_key,
    validate,
    valve_key,
)

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
    "RunOutputs",
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
    "check_structure",
    "compile_recipe",
    "ensure_valid",
    "is_pulse_valve",
    "pv_key",
    "safe_state_writes",
    "validate",
    "valve_key",
]
