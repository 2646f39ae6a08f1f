"""Recipe → plan: nested loops flattened, depth-first by sequence, step count exact. Pure.

The step-count rule (what `process_runs.total_steps` and the dashboard show): a loop is not a step; it
contributes `count × (steps inside it)`, recursively; every other step counts 1. Worked example, the seeded
Al2O3 recipe: 3 steps, a 100× loop of 4 steps, 2 steps → 3 + 100·4 + 2 = 405. The nanolaminate:
3 + 5·(10·4 + 10·4) + 1 = 404. (Upstream counted a loop's expansion twice.)

Planned time: valve/purge/wait count their `duration_ms`; a parameter step counts `PLANNED_WRITE_MS` — its
write — and never its wait timeout, which is an upper bound, not a plan.

The plan is compact: `Plan.steps` is a sequence computed from the compiled tree, not a list of every step.
Step *i* is found by arithmetic (at each level, which child holds offset *i* and, in a loop, which
iteration: `divmod(offset, body size)`), iteration walks the tree, so compiling costs time and memory in the
size of the tree, never in the number of steps (a 200,000-step plan: ~1 ms, a few kB; expanded eagerly it
took 2 s and 145 MB). Worked example, `loop(3, [A, B])` then `C`: step 4 is in the loop (offsets 0–5),
iteration 4 // 2 + 1 = 3, child 4 % 2 = 1 → B of iteration 3; step 6 is C.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

from agent.plc import RegisterMap
from agent.recipes.model import (
    LoopConfig,
    ParameterConfig,
    PurgeConfig,
    Recipe,
    RecipeStep,
    StepConfig,
    StepType,
    ValveConfig,
    WaitConfig,
)
from agent.recipes.validate import (
    DEFAULT_MAX_DEPTH,
    PLANNED_WRITE_MS,
    InvalidRecipe,
    check_and_parse,
    step_planned_ms,
)

__all__ = ["PLANNED_WRITE_MS", "LoopIteration", "Plan", "PlanStep", "PlanSteps", "compile_recipe"]

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
class _Node:
    """A compiled recipe step: an action (`config`) or a loop (`count` passes over `children`, whose first
    plan offsets within one pass are `starts`). `size` and `total_ms` cover every pass."""

    path: str
    kind: StepType
    name: str
    config: ActionConfig | None
    count: int
    children: tuple[_Node, ...]
    starts: tuple[int, ...]
    size: int
    total_ms: float


class PlanSteps(Sequence[PlanStep]):
    """The plan's steps in execution order, computed on demand from the compiled tree (module docstring):
    `len`, indexing (`steps[i]`, `steps[a:b]` → tuple) and iteration, in time and memory independent of
    the number of steps. Equal `PlanStep`s come back for the same index every time."""

    __slots__ = ("_nodes", "_size", "_starts")

    def __init__(self, nodes: tuple[_Node, ...]) -> None:
        self._nodes = nodes
        self._starts = _starts(nodes)
        self._size = sum(node.size for node in nodes)

    def __len__(self) -> int:
        return self._size

    @overload
    def __getitem__(self, index: int) -> PlanStep: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[PlanStep, ...]: ...
    def __getitem__(self, index: int | slice) -> PlanStep | tuple[PlanStep, ...]:
        if isinstance(index, slice):
            return tuple(self._at(i) for i in range(*index.indices(self._size)))
        position = index + self._size if index < 0 else index
        if not 0 <= position < self._size:
            raise IndexError(f"plan step {index} out of range (the plan has {self._size} steps)")
        return self._at(position)

    def __iter__(self) -> Iterator[PlanStep]:
        counter = itertools.count()
        for path, node, loops in _walk(self._nodes, ()):
            assert node.config is not None
            yield PlanStep(next(counter), path, node.kind, node.name, node.config, step_planned_ms(node.config), loops)

    def __repr__(self) -> str:
        return f"PlanSteps({self._size} steps)"

    def __eq__(self, other: object) -> bool:  # the same tree is the same steps (as the tuple it replaced)
        return isinstance(other, PlanSteps) and self._nodes == other._nodes

    def __hash__(self) -> int:
        return hash(self._nodes)

    def _at(self, index: int) -> PlanStep:
        nodes, starts, offset = self._nodes, self._starts, index
        loops: tuple[LoopIteration, ...] = ()
        while True:
            child = bisect.bisect_right(starts, offset) - 1
            node, offset = nodes[child], offset - starts[child]
            if node.config is not None:
                return PlanStep(
                    index, node.path, node.kind, node.name, node.config, step_planned_ms(node.config), loops
                )
            iteration, offset = divmod(offset, node.size // node.count)
            loops = (*loops, LoopIteration(node.path, iteration + 1, node.count))
            nodes, starts = node.children, node.starts

    @property
    def total_ms(self) -> float:
        return sum(node.total_ms for node in self._nodes)


@dataclass(frozen=True, slots=True)
class Plan:
    """The executable form of a recipe: steps in execution order (compact, `PlanSteps`), with the totals the
    dashboard shows."""

    recipe_id: str | None
    recipe_name: str
    recipe_version: int
    steps: PlanSteps

    @property
    def total_steps(self) -> int:
        return len(self.steps)

    @property
    def total_ms(self) -> float:
        return self.steps.total_ms


def compile_recipe(
    recipe: Recipe, *, register_map: RegisterMap | None = None, max_depth: int = DEFAULT_MAX_DEPTH
) -> Plan:
    """Compile `recipe` into a `Plan`. Raises `InvalidRecipe` (a `RecipeError`) listing every problem: the
    structural ones, limits included (`agent.limits`), and — given the machine's `register_map` — every one
    `validate` finds, in the same pass. Never mutates `recipe`; costs time and memory in the size of its
    tree, not of its plan.
    """
    problems, parsed = check_and_parse(recipe, register_map, max_depth=max_depth)
    if problems:
        raise InvalidRecipe(problems, recipe=recipe.name)
    return Plan(recipe.id, recipe.name, recipe.version, PlanSteps(_compile(recipe.steps, "", parsed)))


def _compile(steps: Sequence[RecipeStep], parent: str, parsed: Mapping[int, StepConfig]) -> tuple[_Node, ...]:
    nodes = []
    for position, step in enumerate(steps, start=1):
        path = f"{parent}/{position}" if parent else str(position)
        kind = StepType(step.type)
        config = parsed[id(step)]  # checking proved it parses
        if isinstance(config, LoopConfig):
            children = _compile(step.steps, path, parsed)
            body_size = sum(child.size for child in children)
            body_ms = sum(child.total_ms for child in children)
            nodes.append(
                _Node(
                    path,
                    kind,
                    step.name,
                    None,
                    config.count,
                    children,
                    _starts(children),
                    config.count * body_size,
                    config.count * body_ms,
                )
            )
        else:
            nodes.append(_Node(path, kind, step.name, config, 1, (), (), 1, step_planned_ms(config)))
    return tuple(nodes)


def _starts(nodes: Sequence[_Node]) -> tuple[int, ...]:
    """Each node's first offset: 0, size₀, size₀ + size₁, …"""
    return tuple(itertools.accumulate((node.size for node in nodes[:-1]), initial=0)) if nodes else ()


def _walk(
    nodes: Sequence[_Node], loops: tuple[LoopIteration, ...]
) -> Iterator[tuple[str, _Node, tuple[LoopIteration, ...]]]:
    """(path, action node, enclosing loops) in execution order."""
    for node in nodes:
        if node.config is not None:
            yield node.path, node, loops
            continue
        for iteration in range(1, node.count + 1):
            yield from _walk(node.children, (*loops, LoopIteration(node.path, iteration, node.count)))
