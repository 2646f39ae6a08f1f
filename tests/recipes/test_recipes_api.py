"""The public surface of agent.recipes is pinned: changing it is a decision, not an accident."""

from __future__ import annotations

import agent.recipes

SURFACE = [
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


def test_recipes_public_surface() -> None:
    assert sorted(agent.recipes.__all__) == sorted(SURFACE)
    for name in SURFACE:
        assert hasattr(agent.recipes, name), name
