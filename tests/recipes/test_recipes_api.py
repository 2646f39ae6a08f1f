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


def test_recipes_public_surface() -> None:
    assert sorted(agent.recipes.__all__) == sorted(SURFACE)
    for name in SURFACE:
        assert hasattr(agent.recipes, name), name
