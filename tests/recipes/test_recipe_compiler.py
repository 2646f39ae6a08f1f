"""Compiler: loops expanded depth-first by sequence, exact step counts and planned time, inputs untouched."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from recipe_support import (
    AL2O3_RECIPE_ROW,
    AL2O3_ROWS,
    LAMINATE_RECIPE_ROW,
    LAMINATE_ROWS,
    loop,
    param,
    purge,
    recipe,
    valve,
    wait,
)

from agent.errors import RecipeError
from agent.recipes import LoopIteration, Plan, Recipe, StepType, compile_recipe

AL2O3_MS = 10000 + 100 * (20 + 3000 + 30 + 4000) + 15000 + 1000
LAMINATE_MS = 10000 + 5 * (10 * (20 + 3000 + 30 + 4000) + 10 * (25 + 4000 + 30 + 5000)) + 15000


@pytest.mark.parametrize(
    ("rows", "row_recipe", "total_steps", "total_ms"),
    [
        (AL2O3_ROWS, AL2O3_RECIPE_ROW, 3 + 100 * 4 + 2, AL2O3_MS),
        (LAMINATE_ROWS, LAMINATE_RECIPE_ROW, 3 + 5 * (10 * 4 + 10 * 4) + 1, LAMINATE_MS),
    ],
    ids=["al2o3-405", "laminate-404"],
)
def test_seeded_recipes_compile_to_the_dashboard_counts(
    rows: list[dict], row_recipe: dict, total_steps: int, total_ms: float
) -> None:
    plan = compile_recipe(Recipe.from_rows(row_recipe, rows))
    assert (plan.total_steps, plan.total_ms) == (total_steps, total_ms)
    assert [s.index for s in plan.steps] == list(range(total_steps))
    assert all(s.type is not StepType.LOOP for s in plan.steps)


def test_al2o3_plan_shape() -> None:
    plan = compile_recipe(Recipe.from_rows(AL2O3_RECIPE_ROW, AL2O3_ROWS))
    assert [(s.path, s.loop_iteration, s.loop_count) for s in plan.steps[:8]] == [
        ("1", None, None),
        ("2", None, None),
        ("3", None, None),
        ("4/1", 1, 100),
        ("4/2", 1, 100),
        ("4/3", 1, 100),
        ("4/4", 1, 100),
        ("4/1", 2, 100),
    ]
    last_cycle = plan.steps[402]
    assert (last_cycle.index, last_cycle.path, last_cycle.loops) == (402, "4/4", (LoopIteration("4", 100, 100),))
    assert [s.path for s in plan.steps[403:]] == ["5", "6"]
    assert plan.steps[3].describe() == {
        "path": "4/1",
        "type": "valve",
        "name": "TMA pulse",
        "loop_iteration": 1,
        "loop_count": 100,
    }


def test_nested_loops_expand_depth_first_with_every_enclosing_iteration() -> None:
    plan = compile_recipe(recipe(valve(1, 10), loop(2, wait(1, "a"), loop(2, wait(2, "b")), name="outer")))
    assert [(s.path, s.name, tuple((x.path, x.iteration, x.count) for x in s.loops)) for s in plan.steps] == [
        ("1", "V1", ()),
        ("2/1", "a", (("2", 1, 2),)),
        ("2/2/1", "b", (("2", 1, 2), ("2/2", 1, 2))),
        ("2/2/1", "b", (("2", 1, 2), ("2/2", 2, 2))),
        ("2/1", "a", (("2", 2, 2),)),
        ("2/2/1", "b", (("2", 2, 2), ("2/2", 1, 2))),
        ("2/2/1", "b", (("2", 2, 2), ("2/2", 2, 2))),
    ]
    assert plan.total_ms == 10 + 2 * (1 + 2 * 2)


@pytest.mark.parametrize(
    ("step", "planned_ms"),
    [
        (valve(1, 25), 25),
        (purge(3000, flow_sccm=20), 3000),
        (wait(0), 0),
        (param("chamber_heater.temperature_sp", 200), 0),
        (param("chamber_heater.temperature_sp", 200, tolerance=2, timeout_ms=1_800_000), 0),
    ],
    ids=["valve", "purge", "wait-zero", "parameter", "parameter-wait-counts-no-timeout"],
)
def test_planned_ms_per_type(step: dict, planned_ms: float) -> None:
    assert compile_recipe(recipe(step)).steps[0].planned_ms == planned_ms


def test_an_invalid_recipe_does_not_compile() -> None:
    with pytest.raises(RecipeError, match=r"(?s)2 problems.*1 'L': count is missing.*2 'V1': duration_ms"):
        compile_recipe(recipe({"type": "loop", "name": "L", "config": {}, "steps": [wait(1)]}, valve(1, 0)))


def test_compiling_does_not_mutate_the_recipe() -> None:
    r = Recipe.from_rows(LAMINATE_RECIPE_ROW, LAMINATE_ROWS)
    before = r.to_snapshot()
    compile_recipe(r)
    assert r.to_snapshot() == before


# --- property: random trees --------------------------------------------------------------------------

LEAVES = st.one_of(
    st.builds(valve, st.integers(1, 6), st.integers(1, 500)),
    st.builds(purge, st.integers(1, 500)),
    st.builds(wait, st.integers(0, 500)),
    st.builds(param, st.just("chamber_heater.temperature_sp"), st.integers(0, 400)),
)
TREES = st.recursive(
    LEAVES,
    lambda inner: st.builds(lambda n, kids: loop(n, *kids), st.integers(1, 4), st.lists(inner, min_size=1, max_size=3)),
    max_leaves=12,
)


def _expected(steps: list[dict[str, Any]], parent: str = "") -> list[str]:
    """Reference expansion: the formula (loops multiply, others count 1), as a list of paths."""
    out: list[str] = []
    for n, step in enumerate(steps, start=1):
        path = f"{parent}/{n}" if parent else str(n)
        if step["type"] == "loop":
            out += step["config"]["count"] * _expected(step["steps"], path)
        else:
            out.append(path)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TREES, min_size=1, max_size=4))
def test_plan_matches_the_expansion_formula(steps: list[dict[str, Any]]) -> None:
    expected = _expected(steps)
    assume(len(expected) <= 5000)
    plan: Plan = compile_recipe(recipe(*steps), max_depth=64)
    assert plan.total_steps == len(expected)
    assert [s.path for s in plan.steps] == expected  # depth-first by sequence
    assert [s.index for s in plan.steps] == list(range(len(expected)))
    keys = [(s.path, tuple(x.iteration for x in s.loops)) for s in plan.steps]
    assert len(set(keys)) == len(keys)  # a step runs once per combination of enclosing iterations
    for s in plan.steps:
        assert [x.path for x in s.loops] == [s.path.rsplit("/", k)[0] for k in range(len(s.loops), 0, -1)]
        assert all(1 <= x.iteration <= x.count for x in s.loops)
    assert plan.total_ms == sum(s.planned_ms for s in plan.steps)
