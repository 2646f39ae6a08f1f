"""Recipe validation: every problem at once, each located by step path and name. Pure.

Two layers. `check_structure` needs only the recipe: step types, config shapes, loops (count, children),
depth, plan size and what loading could not place. `validate` adds the machine: valves and parameters
must exist in the register map and setpoints must pass `agent.plc.validate_write` — the same rule the
PLC write path applies, so a recipe that validates cannot be refused mid-run for range or type.

Safety rules beyond shapes:
- a parameter step may not write a pulse valve (`valve_N.state`): only a valve step opens a valve, because
  only it guarantees the close;
- a purge with `flow_sccm` needs a writable `mfc_1.flow_sp` (silently dropping the flow is what upstream did).

The process value (PV) of a setpoint, read by a parameter step's `wait`: a key ending in `_sp` reads the key
without it when the map has one (`chamber_heater.temperature_sp` → `chamber_heater.temperature`,
`mfc_1.flow_sp` → `mfc_1.flow`); any other key is read back itself (`chamber_heater.kp`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeGuard

from agent.errors import RecipeError, ValidationError
from agent.plc import DataType, RegisterMap, WordOrder, validate_write
from agent.recipes.config import LoopConfig, StepType, integral_number, parse_config
from agent.recipes.model import Problem, Recipe, RecipeStep

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "MAX_PLAN_STEPS",
    "MFC_FLOW_KEY",
    "InvalidRecipe",
    "check_structure",
    "count_steps",
    "ensure_valid",
    "is_pulse_valve",
    "pv_key",
    "validate",
    "valve_key",
]

#: Nesting limit (path components): the seeded nanolaminate needs 3; 8 leaves room without inviting abuse.
DEFAULT_MAX_DEPTH = 8
#: Above this the plan would not fit comfortably in memory or on the dashboard; nobody runs that many steps.
MAX_PLAN_STEPS = 1_000_000
#: The carrier-gas MFC a purge's `flow_sccm` sets (docs/DESIGN.md §5 "Safe state": MFC flow 0).
MFC_FLOW_KEY = "mfc_1.flow_sp"
SETPOINT_SUFFIX = "_sp"
_TYPES = frozenset(StepType)
_PULSE_VALVE = re.compile(r"valve_(\d+)\.state")
#: Validation does not depend on word order; any order checks range and type the same way.
_CHECK_ORDER = WordOrder.LITTLE


class InvalidRecipe(RecipeError):
    """A recipe failed validation. `problems` lists every problem; the message has one per line."""

    def __init__(self, problems: Sequence[Problem], *, recipe: str = "") -> None:
        self.problems = tuple(problems)
        head = f"recipe {recipe!r} is invalid" if recipe else "recipe is invalid"
        noun = "problem" if len(self.problems) == 1 else "problems"
        super().__init__("\n".join([f"{head} ({len(self.problems)} {noun}):", *(f"  {p}" for p in self.problems)]))


def valve_key(valve: int) -> str:
    """The coil of pulse valve N in the register map."""
    return f"valve_{valve}.state"


def is_pulse_valve(key: str) -> bool:
    return _PULSE_VALVE.fullmatch(key) is not None


def pv_key(key: str, register_map: RegisterMap) -> str:
    """The key whose value shows whether setpoint `key` was reached (rule in the module docstring)."""
    if key.endswith(SETPOINT_SUFFIX):
        candidate = key.removesuffix(SETPOINT_SUFFIX)
        if candidate in register_map:
            return candidate
    return key


def check_structure(recipe: Recipe, *, max_depth: int = DEFAULT_MAX_DEPTH) -> list[Problem]:
    """Problems that need no register map: loading problems first, then by step in path order."""
    return _check(recipe, None, max_depth)


def validate(recipe: Recipe, register_map: RegisterMap, *, max_depth: int = DEFAULT_MAX_DEPTH) -> list[Problem]:
    """Every problem of `recipe` on the machine described by `register_map` (empty list = runnable)."""
    return _check(recipe, register_map, max_depth)


def _check(recipe: Recipe, register_map: RegisterMap | None, max_depth: int) -> list[Problem]:
    problems = list(recipe.load_problems)
    if not recipe.steps:
        problems.append(Problem("", "", "recipe has no steps"))
    for path, depth, step in _walk(recipe.steps):
        messages: list[str] = []
        if depth == max_depth + 1:
            messages.append(f"nested {depth} levels deep; the limit is {max_depth}")
        if step.type in _TYPES:
            messages.extend(_check_step(StepType(step.type), step, register_map))
        else:
            messages.append(f"unknown step type {step.type!r} ({', '.join(StepType)})")
        problems.extend(Problem(path, step.name, m) for m in messages)
    size = count_steps(recipe.steps)
    if size > MAX_PLAN_STEPS:
        problems.append(Problem("", "", f"expands to {size:,} steps, more than {MAX_PLAN_STEPS:,}"))
    return problems


def _check_step(kind: StepType, step: RecipeStep, register_map: RegisterMap | None) -> Iterator[str]:
    _, messages = parse_config(kind, step.config)
    yield from messages
    if kind is StepType.LOOP and not step.steps:
        yield "loop has no steps"
    if kind is not StepType.LOOP and step.steps:
        yield f"a {kind} step cannot have steps inside (only a loop can)"
    if register_map is None or not isinstance(step.config, Mapping):
        return
    # Machine checks read the fields that are well-formed even when others are not, so a valve with a bad
    # duration still learns that valve 9 does not exist.
    if kind is StepType.VALVE:
        yield from _check_valve(step.config.get("valve"), register_map)
    elif kind is StepType.PARAMETER:
        yield from _check_parameter(step.config, register_map)
    elif kind is StepType.PURGE and step.config.get("flow_sccm") is not None:
        yield from _check_flow(step.config["flow_sccm"], register_map)


def ensure_valid(recipe: Recipe, register_map: RegisterMap, *, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
    """Raise `InvalidRecipe` (a `RecipeError`) listing every problem, if there is any."""
    problems = validate(recipe, register_map, max_depth=max_depth)
    if problems:
        raise InvalidRecipe(problems, recipe=recipe.name)


def count_steps(steps: Iterable[RecipeStep]) -> int:
    """Executable steps after loop expansion (loops themselves are not steps); invalid loops count 0."""
    total = 0
    for step in steps:
        if step.type == StepType.LOOP:
            config, _ = parse_config(StepType.LOOP, step.config)
            if isinstance(config, LoopConfig):
                total += config.count * count_steps(step.steps)
        else:
            total += 1
    return total


# --- per-step machine checks ----------------------------------------------------------------------


def _check_valve(raw: object, register_map: RegisterMap) -> Iterator[str]:
    valve = integral_number(raw)
    if not _is_number(valve) or not isinstance(valve, int) or valve < 1:
        return  # already reported as a config problem
    key = valve_key(valve)
    param = register_map.get(key)
    if param is None:
        yield f"valve {valve} is not in the register map (no {key})"
    elif not param.writable or param.data_type is not DataType.BOOL:
        yield f"valve {valve}: {key} is not a writable bool"


def _check_parameter(config: Mapping[str, Any], register_map: RegisterMap) -> Iterator[str]:
    key, value = config.get("parameter"), config.get("value")
    if not isinstance(key, str) or not key:
        return
    param = register_map.get(key)
    if param is None:
        yield f"unknown parameter {key!r}"
        return
    if is_pulse_valve(key):
        yield f"{key} is a pulse valve: use a valve step, which always closes it"
        return
    if isinstance(value, bool) or _is_number(value):
        try:
            validate_write(param, value, _CHECK_ORDER)
        except ValidationError as exc:
            yield str(exc)
    wait = config.get("wait")
    if isinstance(value, bool) and isinstance(wait, Mapping) and wait.get("tolerance"):
        yield "wait.tolerance must be 0 for a true/false parameter"


def _check_flow(flow_sccm: object, register_map: RegisterMap) -> Iterator[str]:
    param = register_map.get(MFC_FLOW_KEY)
    if param is None or not param.writable:
        yield f"flow_sccm is set but the map has no writable {MFC_FLOW_KEY}"
        return
    if _is_number(flow_sccm) and flow_sccm >= 0:  # a negative flow is already a config problem
        try:
            validate_write(param, flow_sccm, _CHECK_ORDER)
        except ValidationError as exc:
            yield f"flow_sccm: {exc}"


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --- walking the tree -----------------------------------------------------------------------------


def _walk(steps: Sequence[RecipeStep], parent: str = "", depth: int = 1) -> Iterator[tuple[str, int, RecipeStep]]:
    """(path, depth, step) depth-first in order; top-level steps have depth 1."""
    for position, step in enumerate(steps, start=1):
        path = f"{parent}/{position}" if parent else str(position)
        yield path, depth, step
        yield from _walk(step.steps, path, depth + 1)
