"""Compiler: loops expanded depth-first by sequence, exact step counts and planned time, inputs untouched; the
plan is compact (computed from the tree), so its size costs nothing until a step is asked for."""

from __future__ import annotations

import tracemalloc
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
from agent.limits import MAX_PLAN_STEPS
from agent.plc import load_default_map
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


def test_given_the_machine_map_compiling_also_validates_against_it() -> None:
    """One pass for the start path (off the event loop): structure, limits and the machine, all at once."""
    with pytest.raises(RecipeError, match=r"(?s)2 problems.*1 'V9': valve 9 is not in the register map.*2 'V1'"):
        compile_recipe(recipe(valve(9, 20), valve(1, 0)), register_map=load_default_map())
    assert compile_recipe(recipe(valve(9, 20))).total_steps == 1  # without a map: structure only


def test_plans_of_the_same_recipe_are_equal() -> None:
    r = Recipe.from_rows(LAMINATE_RECIPE_ROW, LAMINATE_ROWS)
    assert compile_recipe(r) == compile_recipe(r) and hash(compile_recipe(r)) == hash(compile_recipe(r))
    assert compile_recipe(r).steps != compile_recipe(recipe(wait(1))).steps


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
    by_index = [plan.steps[i] for i in range(plan.total_steps)]
    assert by_index == list(plan.steps)  # arithmetic lookup = the walk, for every index
    assert plan.steps[-1] == by_index[-1] and plan.steps[1::3] == tuple(by_index[1::3])


# --- compact: the largest plan allowed costs what its tree costs ---------------------------------------------


def test_the_largest_plan_allowed_compiles_in_a_few_kilobytes() -> None:
    """Expanded eagerly (as before) 200,000 steps took ~2 s and 145 MB; compact, the tree is all there is."""
    cycle = [valve(1, 20), purge(1000, flow_sccm=20), valve(2, 30), purge(1000, flow_sccm=20)]
    largest = recipe(loop(MAX_PLAN_STEPS // 4, *cycle, name="cycle"))
    tracemalloc.start()
    try:
        plan = compile_recipe(largest)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100_000, peak  # bytes
    assert (plan.total_steps, plan.total_ms) == (MAX_PLAN_STEPS, MAX_PLAN_STEPS // 4 * 2050)
    last = plan.steps[MAX_PLAN_STEPS - 1]
    assert (last.index, last.path, last.loops) == (199_999, "1/4", (LoopIteration("1", 50_000, 50_000),))
    middle = plan.steps[4 * 12_345 + 2]  # iteration 12,346, third step of the cycle
    assert (middle.index, middle.path, middle.name, middle.planned_ms, middle.loops) == (
        49_382,
        "1/3",
        "V2",
        30.0,
        (LoopIteration("1", 12_346, 50_000),),
    )


@pytest.mark.parametrize("index", [3, -4, 10**9], ids=["past-the-end", "before-the-start", "far-past"])
def test_an_index_outside_the_plan_raises_index_error(index: int) -> None:
    plan = compile_recipe(recipe(wait(1), loop(2, wait(2))))
    with pytest.raises(IndexError, match="out of range"):
        plan.steps[index]
