"""Interlocks: declarative conditions on live values that guard writes (permits) and running recipes (trips). Pure.

A row of the `interlocks` table (docs/CONTRACT.md) becomes an `Interlock`. Its `conditions` say what MUST be
true, all of them (AND):

- a **permit** guards writes to its `targets` (keys or fnmatch patterns such as `valve_*.state`): a write that
  moves a target away from its safe value (a valve opening, a non-zero setpoint) is refused unless every
  condition holds on values read from the PLC just before. Writes toward the safe state are never refused.
- a **trip** is watched on every frame while a recipe runs: once its conditions have been false for `hold_ms`
  the run is aborted into its safe state (`action` abort) or held at the next step boundary (`hold`).

Fail-safe by construction: a condition on a value that could not be read (None, NaN) is false, so a broken
sensor blocks what it guards instead of letting it through. A set with an invalid row is refused whole
(`parse_interlocks` reports every problem); the caller keeps the last good set.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeGuard

from agent.plc import RegisterMap, Value
from agent.recipes import Problem, Recipe, RecipeStep, StepType, pv_key, valve_key

__all__ = [
    "Condition",
    "Interlock",
    "InterlockKind",
    "InterlockSet",
    "Op",
    "TripAction",
    "TripMonitor",
    "Violation",
    "parse_interlocks",
    "recipe_conflicts",
]

_SLACK_MS = 1e-3
_SYMBOLS = {"lt": "<", "le": "≤", "gt": ">", "ge": "≥", "eq": "=", "ne": "≠"}


class Op(StrEnum):
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"
    EQ = "eq"
    NE = "ne"
    BETWEEN = "between"  # low ≤ value ≤ high
    OUTSIDE = "outside"  # value < low or value > high


class InterlockKind(StrEnum):
    PERMIT = "permit"
    TRIP = "trip"


class TripAction(StrEnum):
    ABORT = "abort"
    HOLD = "hold"


@dataclass(frozen=True, slots=True)
class Condition:
    """`key op value` (or `key between/outside low..high`), true or false for one live value."""

    key: str
    op: Op
    value: float | bool | None = None
    low: float | None = None
    high: float | None = None

    def holds(self, actual: Value | None) -> bool:
        """False for an unreadable value (None, NaN, ±inf: a sensor out of its range): an interlock fails safe."""
        if actual is None or (isinstance(actual, float) and not math.isfinite(actual)):
            return False
        if self.op in (Op.BETWEEN, Op.OUTSIDE):
            assert self.low is not None and self.high is not None
            inside = self.low <= float(actual) <= self.high
            return inside if self.op is Op.BETWEEN else not inside
        assert self.value is not None
        if isinstance(self.value, bool) or isinstance(actual, bool):
            same = bool(actual) == bool(self.value)
            if self.op in (Op.EQ, Op.NE):
                return same if self.op is Op.EQ else not same
            return False  # an order comparison on a bool is refused at parse time
        a, v = float(actual), float(self.value)
        return {
            Op.LT: a < v,
            Op.LE: a <= v,
            Op.GT: a > v,
            Op.GE: a >= v,
            Op.EQ: a == v,
            Op.NE: a != v,
        }[self.op]

    def describe(self) -> str:
        if self.op is Op.BETWEEN:
            return f"{self.key} within {self.low:g}..{self.high:g}"
        if self.op is Op.OUTSIDE:
            return f"{self.key} outside {self.low:g}..{self.high:g}"
        shown = str(self.value).lower() if isinstance(self.value, bool) else f"{self.value:g}"
        return f"{self.key} {_SYMBOLS[self.op]} {shown}"


@dataclass(frozen=True, slots=True)
class Interlock:
    name: str
    kind: InterlockKind
    conditions: tuple[Condition, ...]
    targets: tuple[str, ...] = ()
    hold_ms: float = 0.0
    action: TripAction = TripAction.ABORT
    id: str | None = None

    def guards(self, key: str) -> bool:
        return self.kind is InterlockKind.PERMIT and any(fnmatch.fnmatchcase(key, t) for t in self.targets)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.key for c in self.conditions))

    def failing(self, values: Mapping[str, Value | None]) -> tuple[tuple[Condition, Value | None], ...]:
        return tuple((c, values.get(c.key)) for c in self.conditions if not c.holds(values.get(c.key)))


@dataclass(frozen=True, slots=True)
class Violation:
    """An interlock whose conditions do not hold, with the values that broke them."""

    interlock: Interlock
    failing: tuple[tuple[Condition, Value | None], ...]

    def explain(self) -> str:
        parts = [f"{c.key} is {_shown(v)} (must be {c.describe().removeprefix(c.key + ' ')})" for c, v in self.failing]
        return f"interlock '{self.interlock.name}': " + "; ".join(parts)


def _shown(value: Value | None) -> str:
    if value is None:
        return "unreadable"
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:.6g}"


@dataclass(frozen=True, slots=True)
class InterlockSet:
    """The machine's interlocks, as loaded. Empty = no interlocks configured (not 'unknown')."""

    interlocks: tuple[Interlock, ...] = ()

    def permits_for(self, key: str) -> tuple[Interlock, ...]:
        return tuple(i for i in self.interlocks if i.guards(key))

    @property
    def trips(self) -> tuple[Interlock, ...]:
        return tuple(i for i in self.interlocks if i.kind is InterlockKind.TRIP)

    def __len__(self) -> int:
        return len(self.interlocks)

    def missing_keys(self, register_map: RegisterMap) -> list[str]:
        """Condition keys the map does not have: such a permit can never pass, such a trip always fires."""
        return sorted({k for i in self.interlocks for k in i.keys if k not in register_map})


# --- parsing rows ---------------------------------------------------------------------------------


def parse_interlocks(rows: Iterable[Mapping[str, Any]]) -> tuple[InterlockSet, list[str]]:
    """Rows of `interlocks` → the enabled set, and every problem found ("name: what is wrong").

    With any problem the caller must not use the set (it would run with a rule missing)."""
    interlocks: list[Interlock] = []
    problems: list[str] = []
    for row in rows:
        if row.get("enabled", True) is False:
            continue
        name = str(row.get("name") or row.get("id") or "?")[:80]
        try:
            interlocks.append(_parse_row(row, name))
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    return InterlockSet(tuple(interlocks)), problems


def _parse_row(row: Mapping[str, Any], name: str) -> Interlock:
    try:
        kind = InterlockKind(str(row.get("kind")))
    except ValueError:
        raise ValueError(f"kind must be permit or trip, got {str(row.get('kind'))[:40]!r}") from None
    raw_conditions = row.get("conditions")
    if not isinstance(raw_conditions, list) or not raw_conditions:
        raise ValueError("conditions must be a non-empty list")
    conditions = tuple(_parse_condition(c) for c in raw_conditions)
    raw_targets = row.get("targets") or []
    # a text would iterate as one-character patterns ('*' guarding every key); a number would raise
    if not isinstance(raw_targets, list | tuple) or not all(isinstance(t, str) and t for t in raw_targets):
        raise ValueError(f"targets must be a list of parameter keys or patterns, got {str(raw_targets)[:80]}")
    targets = tuple(raw_targets)
    if kind is InterlockKind.PERMIT and not targets:
        raise ValueError("a permit needs at least one target")
    hold_ms: object = row.get("hold_ms") or 0
    if not _number(hold_ms) or hold_ms < 0:
        raise ValueError(f"hold_ms must be a number ≥ 0, got {str(hold_ms)[:40]}")
    try:
        action = TripAction(str(row.get("action") or "abort"))
    except ValueError:
        raise ValueError(f"action must be abort or hold, got {str(row.get('action'))[:40]!r}") from None
    identifier = row.get("id")
    identifier = None if identifier is None else str(identifier)
    return Interlock(name, kind, conditions, targets, float(hold_ms), action, identifier)


def _parse_condition(raw: object) -> Condition:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("key"), str) or not raw["key"]:
        raise ValueError(f"a condition needs a key, got {str(raw)[:80]}")
    key = raw["key"]
    try:
        op = Op(str(raw.get("op")))
    except ValueError:
        raise ValueError(f"{key}: unknown op {str(raw.get('op'))[:20]!r} ({', '.join(Op)})") from None
    if op in (Op.BETWEEN, Op.OUTSIDE):
        low, high = raw.get("low"), raw.get("high")
        if not (_number(low) and _number(high)) or low > high:
            raise ValueError(f"{key}: {op} needs numbers low ≤ high")
        return Condition(key, op, low=float(low), high=float(high))
    value = raw.get("value")
    if isinstance(value, bool):
        if op not in (Op.EQ, Op.NE):
            raise ValueError(f"{key}: a true/false value takes eq or ne, not {op}")
        return Condition(key, op, value=value)
    if not _number(value):
        raise ValueError(f"{key}: {op} needs a finite number or a boolean value")
    return Condition(key, op, value=float(value))


def _number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --- trips -----------------------------------------------------------------------------------------


@dataclass
class TripMonitor:
    """Feeds frames to the trips; says which have been violated for their `hold_ms`. Each trips once per run.

    Time is passed in (monotonic seconds of each frame), so the monitor is pure and its tests exact."""

    interlocks: InterlockSet
    _since: dict[str, float] = field(default_factory=dict)
    _fired: set[str] = field(default_factory=set)

    def observe(self, values: Mapping[str, Value | None], now_s: float) -> list[Violation]:
        due: list[Violation] = []
        for trip in self.interlocks.trips:
            failing = trip.failing(values)
            if not failing:
                self._since.pop(trip.name, None)
                continue
            since = self._since.setdefault(trip.name, now_s)
            # a microsecond of slack: frame times are floats (1.1 → 1.2 s is 99.99… ms)
            if (now_s - since) * 1000 >= trip.hold_ms - _SLACK_MS and trip.name not in self._fired:
                self._fired.add(trip.name)
                due.append(Violation(trip, failing))
        return due


# --- recipes against interlocks, up front ---------------------------------------------------------


def recipe_conflicts(recipe: Recipe, interlocks: InterlockSet, register_map: RegisterMap) -> list[Problem]:
    """What can be known before a run: a setpoint whose own value breaks an interlock condition on it (or on
    its process value), and a valve whose permit can never pass because its condition keys are not mapped."""
    missing = set(interlocks.missing_keys(register_map))
    problems: list[Problem] = []
    for path, step in _walk(recipe.steps):
        config = step.config if isinstance(step.config, Mapping) else {}
        if step.type == StepType.PARAMETER:
            key, value = config.get("parameter"), config.get("value")
            if isinstance(key, str) and isinstance(value, bool | int | float):
                problems.extend(_setpoint_conflicts(path, step, key, value, interlocks, register_map))
        elif step.type == StepType.VALVE and isinstance(config.get("valve"), int):
            key = valve_key(config["valve"])
            for permit in interlocks.permits_for(key):
                unmapped = [k for k in permit.keys if k in missing]
                if unmapped:
                    why = f"interlock '{permit.name}' guards {key} on unmapped {', '.join(unmapped)}"
                    problems.append(Problem(path, step.name, why))
    return problems


def _setpoint_conflicts(
    path: str, step: RecipeStep, key: str, value: Value, interlocks: InterlockSet, register_map: RegisterMap
) -> Iterator[Problem]:
    watched = {key, pv_key(key, register_map)} if key in register_map else {key}
    for interlock in interlocks.interlocks:
        for condition in interlock.conditions:
            if condition.key in watched and not condition.holds(value):
                yield Problem(
                    path,
                    step.name,
                    f"sets {key} to {_shown(value)}, but interlock '{interlock.name}' requires {condition.describe()}",
                )


def _walk(steps: Sequence[RecipeStep], parent: str = "") -> Iterator[tuple[str, RecipeStep]]:
    for position, step in enumerate(steps, start=1):
        path = f"{parent}/{position}" if parent else str(position)
        yield path, step
        yield from _walk(step.steps, path)
