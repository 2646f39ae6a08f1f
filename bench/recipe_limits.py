"""What a recipe at the limits of `agent.limits` costs to load, validate and compile: time and peak memory.

    .venv/bin/python -m bench.recipe_limits [--repeat 5]     # prints a markdown table (bench/RESULTS.md)

Each recipe is as large as validation allows in one dimension or both: 200,000 plan steps from a 5-row
cycle (`cycles`), 10,000 stored rows (`flat`), and both at once (`both`: a 20× loop over 9,999 rows). For
each phase — `Recipe.from_rows` (as `load_recipe` builds it from PostgREST rows), `validate` against the
default map, `compile_recipe` — time is the median of `--repeat` untraced runs and memory the tracemalloc
peak of one traced run. `walk` iterates the compiled plan once, as the executor does over a whole run (its
cost is spread over the run's hours, one step at a time); `eager` materialises every step as a tuple, which
is what compiling used to do. `refuse 10^12` validates a loop of 10^12 iterations (refused, not expanded).
Pure CPU in one process: no PLC, no database.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable
from typing import Any

from agent.limits import MAX_LOOP_COUNT, MAX_PLAN_STEPS, MAX_RECIPE_STEPS
from agent.plc import load_default_map
from agent.recipes import Plan, Recipe, compile_recipe, validate

Row = dict[str, Any]
Shape = tuple[str, dict[str, Any], list[Any]]  # (type, config, children)


def _rows(recipe_id: str, shape: list[Shape], parent: str | None = None) -> list[Row]:
    out: list[Row] = []
    for sequence, (kind, config, children) in enumerate(shape):
        step_id = str(uuid.uuid4())
        out.append(
            {
                "id": step_id,
                "recipe_id": recipe_id,
                "parent_step_id": parent,
                "sequence": sequence,
                "type": kind,
                "name": f"{kind} {sequence}",
                "config": config,
            }
        )
        out.extend(_rows(recipe_id, children, step_id))
    return out


def _cycle() -> list[Shape]:
    n2 = {"gas": "N2", "flow_sccm": 20}
    return [
        ("valve", {"valve": 1, "duration_ms": 20}, []),
        ("purge", {"duration_ms": 1000, **n2}, []),
        ("valve", {"valve": 2, "duration_ms": 30}, []),
        ("purge", {"duration_ms": 1000, **n2}, []),
    ]


def recipes() -> dict[str, tuple[Row, list[Row]]]:
    """name → (recipes row, recipe_steps rows), each at the limits."""
    wait: Shape = ("wait", {"duration_ms": 1000}, [])
    shapes = {
        "cycles": [("loop", {"count": MAX_PLAN_STEPS // 4}, _cycle())],
        "flat": [wait] * MAX_RECIPE_STEPS,
        "both": [("loop", {"count": MAX_PLAN_STEPS // (MAX_RECIPE_STEPS - 1)}, [wait] * (MAX_RECIPE_STEPS - 1))],
    }
    out = {}
    for name, shape in shapes.items():
        recipe_id = str(uuid.uuid4())
        out[name] = ({"id": recipe_id, "name": name, "version": 1}, _rows(recipe_id, shape))
    return out


def measure(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(median ms untraced, tracemalloc peak MB of one traced run)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    tracemalloc.start()
    try:
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return statistics.median(times), peak / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="untraced runs per figure, median taken (5)")
    repeat = parser.parse_args(argv).repeat
    register_map = load_default_map()
    print("| recipe | stored steps | plan steps | phase | time ms (median) | peak MB (tracemalloc) |")
    print("|---|---|---|---|---|---|")
    for name, (row, steps) in recipes().items():
        recipe = Recipe.from_rows(row, steps)
        problems = validate(recipe, register_map)
        assert not problems, problems
        plan = compile_recipe(recipe)
        phases: dict[str, Callable[[], object]] = {
            "from_rows": functools.partial(Recipe.from_rows, row, steps),
            "validate": functools.partial(validate, recipe, register_map),
            "compile": functools.partial(compile_recipe, recipe),
            "walk": functools.partial(_walk, plan),
            "eager": functools.partial(tuple, plan.steps),
        }
        for phase, fn in phases.items():
            ms, mb = measure(fn, 1 if phase in ("walk", "eager") else repeat)
            print(f"| {name} | {len(steps):,} | {plan.total_steps:,} | {phase} | {ms:,.1f} | {mb:,.2f} |")
    huge = Recipe.from_document(
        {
            "name": "refuse",
            "steps": [
                {
                    "type": "loop",
                    "config": {"count": 10**12},
                    "steps": [{"type": "loop", "config": {"count": MAX_LOOP_COUNT}, "steps": [_doc_wait()]}],
                }
            ],
        }
    )
    ms, mb = measure(lambda: validate(huge, register_map), repeat)
    print(f"| refuse 10^12 | 3 | (refused) | validate | {ms:,.2f} | {mb:,.3f} |")
    return 0


def _walk(plan: Plan) -> int:
    return sum(1 for _ in plan.steps)


def _doc_wait() -> dict[str, Any]:
    return {"type": "wait", "config": {"duration_ms": 1}}


if __name__ == "__main__":
    sys.exit(main())
