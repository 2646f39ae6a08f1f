"""Recipe validation: every problem at once, each located by step path and name. Pure.

Two layers. `check_structure` needs only the recipe: step types, config shapes (with their bounds: pulse,
purge, wait and timeout durations, loop counts, numbers), loops (children), depth, what loading could not
place, and the size of the whole: steps as stored, plan steps and planned time. The size is arithmetic over
the tree (a loop multiplies its body), never an expansion, so a loop of 10^12 iterations is refused as
quickly as any other problem; the limits and how they were chosen are in `agent.limits`.

`validate` adds the machine: valves and parameters must exist in the register map and setpoints must pass
`agent.plc.validate_write` — the same rule the PLC write path applies, so a recipe that validates cannot be
refused mid-run for range or type.

Safety rules beyond shapes:
- a parameter step may not write a pulse valve (`valve_N.state`) or a pulse trigger (`valve_N.pulse_trigger`):
  only a valve step opens a valve, because only it guarantees the close;
- a valve the PLC times (its map declares the pulse registers, agent.plc.pulses) takes whole milliseconds
  within its `pulse_ms` range;
- a purge with `flow_sccm` needs a writable `mfc_1.flow_sp` (silently dropping the flow is what upstream did).

The process value (PV) of a setpoint, read by a parameter step's `wait`: a key ending in `_sp` reads the key
without it when the map has one (`chamber_heater.temperature_sp` → `chamber_heater.temperature`,
`mfc_1.flow_sp` → `mfc_1.flow`); any other key is read back itself (`chamber_heater.kp`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from agent.errors import RecipeError, ValidationError
from agent.limits import (
    MAX_DEPTH,
    MAX_ERROR_CHARS,
    MAX_LISTED_PROBLEMS,
    MAX_NAME_CHARS,
    MAX_PLAN_STEPS,
    MAX_RECIPE_MS,
    MAX_RECIPE_STEPS,
    MAX_SNAPSHOT_BYTES,
    MAX_VALVE_NUMBER,
)
from agent.numbers import is_number
from agent.plc import DataType, RegisterMap, WordOrder, is_pulse_trigger, pulse_registers, validate_write
from agent.quoting import clip, quote
from agent.recipes.config import (
    LoopConfig,
    ParameterConfig,
    PurgeConfig,
    StepConfig,
    StepType,
    ValveConfig,
    WaitConfig,
    integral_number,
    parse_config,
)
from agent.recipes.model import Problem, Recipe, RecipeStep

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "MAX_PLAN_STEPS",
    "MFC_FLOW_KEY",
    "PLANNED_WRITE_MS",
    "InvalidRecipe",
    "check_and_parse",
    "check_structure",
    "count_steps",
    "ensure_valid",
    "is_pulse_valve",
    "planned_ms",
    "pulse_valve",
    "pv_key",
    "step_planned_ms",
    "validate",
    "valve_key",
]

#: Nesting limit (path components); `agent.limits.MAX_DEPTH`.
DEFAULT_MAX_DEPTH = MAX_DEPTH
#: A setpoint write is one or two Modbus round trips (about a millisecond on a LAN): planned as instantaneous.
PLANNED_WRITE_MS = 0.0
_HOUR_MS = 3_600_000
#: The carrier-gas MFC a purge's `flow_sccm` sets (docs/DESIGN.md §5 "Safe state": MFC flow 0).
MFC_FLOW_KEY = "mfc_1.flow_sp"
SETPOINT_SUFFIX = "_sp"
_TYPES = frozenset(StepType)
_PULSE_VALVE = re.compile(r"valve_(\d+)\.state")
#: Validation does not depend on word order; any order checks range and type the same way.
_CHECK_ORDER = WordOrder.LITTLE


class InvalidRecipe(RecipeError):
    """A recipe failed validation. `problems` lists every problem; the message has one per line, the first
    `MAX_LISTED_PROBLEMS` of them and how many more, clipped to `MAX_ERROR_CHARS` (it becomes a row's error)."""

    def __init__(self, problems: Sequence[Problem], *, recipe: str = "") -> None:
        self.problems = tuple(problems)
        head = f"recipe {quote(recipe)} is invalid" if recipe else "recipe is invalid"
        noun = "problem" if len(self.problems) == 1 else "problems"
        lines = [f"{head} ({len(self.problems):,} {noun}):", *(f"  {p}" for p in self.problems[:MAX_LISTED_PROBLEMS])]
        if len(self.problems) > MAX_LISTED_PROBLEMS:
            lines.append(f"  … and {len(self.problems) - MAX_LISTED_PROBLEMS:,} more")
        super().__init__(clip("\n".join(lines), MAX_ERROR_CHARS))


def valve_key(valve: int) -> str:
    """The coil of pulse valve N in the register map."""
    return f"valve_{valve}.state"


def pulse_valve(key: str) -> int | None:
    """`valve_N.state` → N; None for any other key."""
    match = _PULSE_VALVE.fullmatch(key)
    return None if match is None else int(match.group(1))


def is_pulse_valve(key: str) -> bool:
    return pulse_valve(key) is not None


def pv_key(key: str, register_map: RegisterMap) -> str:
    """The key whose value shows whether setpoint `key` was reached (rule in the module docstring)."""
    if key.endswith(SETPOINT_SUFFIX):
        candidate = key.removesuffix(SETPOINT_SUFFIX)
        if candidate in register_map:
            return candidate
    return key


def check_structure(recipe: Recipe, *, max_depth: int = DEFAULT_MAX_DEPTH) -> list[Problem]:
    """Problems that need no register map: loading problems first, then by step in path order."""
    return check_and_parse(recipe, None, max_depth=max_depth)[0]


def validate(recipe: Recipe, register_map: RegisterMap, *, max_depth: int = DEFAULT_MAX_DEPTH) -> list[Problem]:
    """Every problem of `recipe` on the machine described by `register_map` (empty list = runnable and
    recordable: its snapshot fits in the run's row, `MAX_SNAPSHOT_BYTES`)."""
    return check_and_parse(recipe, register_map, max_depth=max_depth)[0]


def check_and_parse(
    recipe: Recipe, register_map: RegisterMap | None, *, max_depth: int = DEFAULT_MAX_DEPTH
) -> tuple[list[Problem], dict[int, StepConfig]]:
    """`check_structure` (no map) or `validate` (a map), and the typed config of every step that parsed, by
    `id(step)`: the compiler reuses them instead of parsing each config a second time."""
    parsed: dict[int, StepConfig] = {}
    problems = _check(recipe, register_map, max_depth, parsed)
    if not problems:  # last, on a recipe otherwise runnable: its steps and names are bounded by now
        size = len(json.dumps(recipe.to_snapshot()))  # as the run's row sends it: ASCII, non-ASCII escaped
        if size > MAX_SNAPSHOT_BYTES:
            message = f"its snapshot in the run's record is {size:,} bytes, more than {MAX_SNAPSHOT_BYTES:,}"
            problems.append(Problem("", "", message))
    return problems, parsed


def _check(
    recipe: Recipe, register_map: RegisterMap | None, max_depth: int, parsed: dict[int, StepConfig]
) -> list[Problem]:
    problems = list(recipe.load_problems)
    stored = recipe.stored_steps
    if stored is not None and stored > MAX_RECIPE_STEPS:
        # `stored` may be a lower bound: `load_recipe` stops reading pages once past the limit
        problems.append(Problem("", "", f"has more than {MAX_RECIPE_STEPS:,} steps as stored ({stored:,} read)"))
        return problems  # not loaded (`Recipe.from_rows`): nothing else to check
    if len(recipe.name) > MAX_NAME_CHARS:
        problems.append(Problem("", "", f"name is {len(recipe.name):,} characters, more than {MAX_NAME_CHARS}"))
    if not recipe.steps:
        problems.append(Problem("", "", "recipe has no steps"))
    size, total_ms = _check_steps(recipe.steps, "", 1, register_map, max_depth, problems, parsed)
    if size > MAX_PLAN_STEPS:
        problems.append(Problem("", "", f"expands to {size:,} steps, more than {MAX_PLAN_STEPS:,}"))
    if total_ms > MAX_RECIPE_MS:
        limit = f"{MAX_RECIPE_MS:,} ms ({MAX_RECIPE_MS / _HOUR_MS:g} h)"
        problems.append(Problem("", "", f"plans {_duration(total_ms)}, more than {limit}"))
    return problems


def _check_steps(
    steps: Sequence[RecipeStep],
    parent: str,
    depth: int,
    register_map: RegisterMap | None,
    max_depth: int,
    problems: list[Problem],
    parsed: dict[int, StepConfig],
) -> tuple[int, float]:
    """Append the problems of `steps` and their children (depth-first, in order) and return their size: plan
    steps and planned ms, by the compiler's rule (a loop multiplies its body; an invalid loop counts 0, any
    other step 1, with its duration when its config parses)."""
    size, total_ms = 0, 0.0
    for position, step in enumerate(steps, start=1):
        path = f"{parent}/{position}" if parent else str(position)
        messages: list[str] = []
        if depth == max_depth + 1:
            messages.append(f"nested {depth} levels deep; the limit is {max_depth}")
        if len(step.name) > MAX_NAME_CHARS:
            messages.append(f"name is {len(step.name):,} characters, more than {MAX_NAME_CHARS}")
        config: StepConfig | None = None
        if step.type in _TYPES:
            kind = StepType(step.type)
            config, parse_messages = parse_config(kind, step.config)
            messages.extend(parse_messages)
            if config is not None:
                parsed[id(step)] = config
            messages.extend(_check_step(kind, step, register_map))
        else:
            messages.append(f"unknown step type {quote(step.type)} ({', '.join(StepType)})")
        problems.extend(Problem(path, step.name, m) for m in messages)
        inner_size, inner_ms = _check_steps(step.steps, path, depth + 1, register_map, max_depth, problems, parsed)
        if isinstance(config, LoopConfig):
            size += config.count * inner_size
            total_ms += config.count * inner_ms
        elif step.type != StepType.LOOP:
            size += 1
            total_ms += step_planned_ms(config) if config is not None else 0.0
    return size, total_ms


def _duration(ms: float) -> str:
    return f"{ms:,.0f} ms ({ms / _HOUR_MS:,.1f} h)" if math.isfinite(ms) else "more time than a float holds"


def step_planned_ms(config: StepConfig) -> float:
    """Planned time of one executable step: its `duration_ms`; a parameter step counts `PLANNED_WRITE_MS` —
    its write — and never its wait timeout, which is an upper bound, not a plan."""
    if isinstance(config, ValveConfig | PurgeConfig | WaitConfig):
        return config.duration_ms
    assert isinstance(config, ParameterConfig), config
    return PLANNED_WRITE_MS


def _check_step(kind: StepType, step: RecipeStep, register_map: RegisterMap | None) -> Iterator[str]:
    if kind is StepType.LOOP and not step.steps:
        yield "loop has no steps"
    if kind is not StepType.LOOP and step.steps:
        yield f"a {kind} step cannot have steps inside (only a loop can)"
    if register_map is None or not isinstance(step.config, Mapping):
        return
    # Machine checks read the fields that are well-formed even when others are not, so a valve with a bad
    # duration still learns that valve 9 does not exist.
    if kind is StepType.VALVE:
        yield from _check_valve(step.config.get("valve"), step.config.get("duration_ms"), register_map)
    elif kind is StepType.PARAMETER:
        yield from _check_parameter(step.config, register_map)
    elif kind is StepType.PURGE and step.config.get("flow_sccm") is not None:
        yield from _check_flow(step.config["flow_sccm"], register_map)


def ensure_valid(recipe: Recipe, register_map: RegisterMap, *, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
    """Raise `InvalidRecipe` (a `RecipeError`) listing every problem, if there is any."""
    problems = validate(recipe, register_map, max_depth=max_depth)
    if problems:
        raise InvalidRecipe(problems, recipe=recipe.name)


def count_steps(steps: Sequence[RecipeStep]) -> int:
    """Executable steps after loop expansion (loops themselves are not steps); invalid loops count 0.
    Arithmetic over the tree: linear in its size, whatever the loop counts."""
    return _check_steps(steps, "", 1, None, MAX_DEPTH, [], {})[0]


def planned_ms(steps: Sequence[RecipeStep]) -> float:
    """Planned time after loop expansion (the rule of `step_planned_ms`), by the same arithmetic."""
    return _check_steps(steps, "", 1, None, MAX_DEPTH, [], {})[1]


# --- per-step machine checks ----------------------------------------------------------------------


def _check_valve(raw: object, duration_ms: object, register_map: RegisterMap) -> Iterator[str]:
    valve = integral_number(raw)
    if not is_number(valve) or not isinstance(valve, int) or not 1 <= valve <= MAX_VALVE_NUMBER:
        return  # already reported as a config problem
    key = valve_key(valve)
    param = register_map.get(key)
    if param is None:
        yield f"valve {valve} is not in the register map (no {key})"
    elif not param.writable or param.data_type is not DataType.BOOL:
        yield f"valve {valve}: {key} is not a writable bool"
    pulse = pulse_registers(valve, register_map)
    if pulse is not None and is_number(duration_ms) and duration_ms > 0:  # a bad duration: a config problem
        if not float(duration_ms).is_integer():
            yield f"valve {valve} is PLC-timed in whole milliseconds ({pulse.duration}): {duration_ms:g} ms is not"
            return
        try:
            validate_write(register_map[pulse.duration], int(duration_ms), _CHECK_ORDER)
        except ValidationError as exc:
            yield f"valve {valve} is PLC-timed: {exc}"


def _check_parameter(config: Mapping[str, Any], register_map: RegisterMap) -> Iterator[str]:
    key, value = config.get("parameter"), config.get("value")
    if not isinstance(key, str) or not key:
        return
    param = register_map.get(key)
    if param is None:
        yield f"unknown parameter {quote(key)}"
        return
    if is_pulse_valve(key):
        yield f"{key} is a pulse valve: use a valve step, which always closes it"
        return
    if is_pulse_trigger(key):
        yield f"{key} starts a PLC-timed pulse: use a valve step, which waits for its end"
        return
    if isinstance(value, bool) or is_number(value):
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
    if is_number(flow_sccm) and flow_sccm >= 0:  # a negative flow: already a config problem
        try:
            validate_write(param, flow_sccm, _CHECK_ORDER)
        except ValidationError as exc:
            yield f"flow_sccm: {exc}"
