"""Interlocks, the pure part: parsing rows, conditions on live values, which writes a permit guards, trips over
time, the text an operator reads, and what a recipe's own values say against the interlocks before it runs.

The seeded interlocks of the reference reactor are one fixture (`seeded`), from the rows written literally in
tests/safety/safety_support.py (what PostgREST returns for supabase/seed.sql).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytest

from agent.plc import Value, load_default_map
from agent.recipes import Problem, Recipe
from agent.safety import (
    Condition,
    Interlock,
    InterlockKind,
    InterlockSet,
    Op,
    TripAction,
    TripMonitor,
    Violation,
    parse_interlocks,
    recipe_conflicts,
)
from tests.recipes.recipe_support import AL2O3_RECIPE_ROW, AL2O3_ROWS, loop, map_without, param, purge, recipe, valve
from tests.safety.safety_support import SEED_ROWS

MAP = load_default_map()


@pytest.fixture
def seeded() -> InterlockSet:
    interlocks, problems = parse_interlocks(SEED_ROWS)
    assert problems == []
    return interlocks


def by_name(interlocks: InterlockSet, name: str) -> Interlock:
    return next(i for i in interlocks.interlocks if i.name == name)


# --- parse_interlocks ----------------------------------------------------------------------------------


def test_the_seeded_rows_parse_into_three_permits_and_two_trips(seeded: InterlockSet) -> None:
    assert [(i.name, i.kind) for i in seeded.interlocks] == [
        ("pulse-needs-vacuum", InterlockKind.PERMIT),
        ("pulse-needs-heaters-in-window", InterlockKind.PERMIT),
        ("flow-needs-n2", InterlockKind.PERMIT),
        ("chamber-overpressure", InterlockKind.TRIP),
        ("chamber-overtemperature", InterlockKind.TRIP),
    ]
    vacuum = by_name(seeded, "pulse-needs-vacuum")
    assert vacuum.targets == ("valve_*.state",)
    assert vacuum.conditions == (
        Condition("pressure_gauge_1.pressure", Op.LT, value=1000.0),
        Condition("vacuum_pump.running", Op.EQ, value=True),
    )
    assert vacuum.id == "00000000-0000-4000-8000-000000000201"
    window = by_name(seeded, "pulse-needs-heaters-in-window").conditions[0]
    assert (window.op, window.low, window.high) == (Op.BETWEEN, 0.0, 350.0)
    overpressure = by_name(seeded, "chamber-overpressure")
    assert (overpressure.hold_ms, overpressure.action, overpressure.targets) == (2000.0, TripAction.ABORT, ())


def test_a_disabled_row_is_not_in_the_set() -> None:
    rows = [SEED_ROWS[0] | {"enabled": False}, SEED_ROWS[2]]
    interlocks, problems = parse_interlocks(rows)
    assert [i.name for i in interlocks.interlocks] == ["flow-needs-n2"] and problems == []


def test_a_hold_action_and_a_missing_action_parse() -> None:
    rows = [SEED_ROWS[3] | {"action": "hold"}, SEED_ROWS[4] | {"action": None}]
    interlocks, problems = parse_interlocks(rows)
    assert [i.action for i in interlocks.interlocks] == [TripAction.HOLD, TripAction.ABORT] and problems == []


PERMIT = {"name": "bad", "kind": "permit", "targets": ["valve_1.state"]}
LT = {"key": "pressure_gauge_1.pressure", "op": "lt", "value": 1000}


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (PERMIT | {"kind": "alarm", "conditions": [LT]}, "bad: kind must be permit or trip, got 'alarm'"),
        (PERMIT | {"kind": None, "conditions": [LT]}, "bad: kind must be permit or trip, got 'None'"),
        (PERMIT, "bad: conditions must be a non-empty list"),
        (PERMIT | {"conditions": []}, "bad: conditions must be a non-empty list"),
        (PERMIT | {"conditions": {"key": "x"}}, "bad: conditions must be a non-empty list"),
        (PERMIT | {"conditions": ["pressure < 1000"]}, "bad: a condition needs a key"),
        (PERMIT | {"conditions": [LT | {"key": ""}]}, "bad: a condition needs a key"),
        (PERMIT | {"conditions": [LT | {"key": 7}]}, "bad: a condition needs a key"),
        (PERMIT | {"conditions": [LT, LT | {"op": "lte"}]}, "bad: pressure_gauge_1.pressure: unknown op 'lte'"),
        (
            PERMIT | {"conditions": [{"key": "t", "op": "between", "low": 5, "high": 1}]},
            "bad: t: between needs numbers low ≤ high",
        ),
        (
            PERMIT | {"conditions": [{"key": "t", "op": "outside", "low": 0}]},
            "bad: t: outside needs numbers low ≤ high",
        ),
        (
            PERMIT | {"conditions": [{"key": "t", "op": "between", "low": 0, "high": math.nan}]},
            "bad: t: between needs numbers low ≤ high",
        ),
        (
            PERMIT | {"conditions": [{"key": "t", "op": "between", "low": "0", "high": 9}]},
            "bad: t: between needs numbers low ≤ high",
        ),
        (
            PERMIT | {"conditions": [LT | {"value": True}]},
            "bad: pressure_gauge_1.pressure: a true/false value takes eq or ne, not lt",
        ),
        (
            PERMIT | {"conditions": [LT | {"value": "1000"}]},
            "bad: pressure_gauge_1.pressure: lt needs a finite number or a boolean value",
        ),
        (PERMIT | {"conditions": [{"key": "p", "op": "lt"}]}, "bad: p: lt needs a finite number or a boolean value"),
        (
            PERMIT | {"conditions": [LT | {"value": math.nan}]},
            "bad: pressure_gauge_1.pressure: lt needs a finite number",
        ),
        (
            PERMIT | {"conditions": [LT | {"value": math.inf}]},
            "bad: pressure_gauge_1.pressure: lt needs a finite number",
        ),
        (PERMIT | {"targets": [], "conditions": [LT]}, "bad: a permit needs at least one target"),
        (PERMIT | {"targets": None, "conditions": [LT]}, "bad: a permit needs at least one target"),
        (PERMIT | {"targets": "valve_*.state", "conditions": [LT]}, "bad: targets must be a list"),
        (PERMIT | {"targets": 5, "conditions": [LT]}, "bad: targets must be a list"),
        (PERMIT | {"targets": ["valve_1.state", ""], "conditions": [LT]}, "bad: targets must be a list"),
        (PERMIT | {"kind": "trip", "hold_ms": -1, "conditions": [LT]}, "bad: hold_ms must be a number ≥ 0, got -1"),
        (
            PERMIT | {"kind": "trip", "hold_ms": "2000", "conditions": [LT]},
            "bad: hold_ms must be a number ≥ 0, got 2000",
        ),
        (
            PERMIT | {"kind": "trip", "hold_ms": math.inf, "conditions": [LT]},
            "bad: hold_ms must be a number ≥ 0, got inf",
        ),
        (PERMIT | {"kind": "trip", "hold_ms": True, "conditions": [LT]}, "bad: hold_ms must be a number ≥ 0, got True"),
        (
            PERMIT | {"kind": "trip", "action": "halt", "conditions": [LT]},
            "bad: action must be abort or hold, got 'halt'",
        ),
    ],
    ids=[
        "unknown-kind",
        "no-kind",
        "no-conditions",
        "empty-conditions",
        "conditions-not-a-list",
        "condition-not-an-object",
        "condition-empty-key",
        "condition-key-not-text",
        "unknown-op-in-second-condition",
        "between-low-above-high",
        "outside-without-high",
        "between-nan-bound",
        "between-text-bound",
        "order-op-on-a-bool",
        "value-as-text",
        "value-missing",
        "value-nan",
        "value-inf",
        "permit-without-targets",
        "permit-targets-null",
        "targets-a-string",
        "targets-a-number",
        "targets-with-an-empty-key",
        "negative-hold",
        "hold-as-text",
        "infinite-hold",
        "hold-a-bool",
        "unknown-action",
    ],
)
def test_a_bad_row_is_reported_by_name_and_left_out(row: dict[str, Any], problem: str) -> None:
    interlocks, problems = parse_interlocks([row])
    assert len(problems) == 1 and problems[0].startswith(problem), problems
    assert len(interlocks) == 0


def test_every_bad_row_is_reported_and_the_good_ones_do_not_hide_them() -> None:
    """The caller must refuse a set with any problem (it would run with a rule missing): all are listed."""
    rows = [
        *SEED_ROWS[:2],
        PERMIT | {"name": "typo-op", "conditions": [LT | {"op": "<"}]},
        SEED_ROWS[2],
        PERMIT | {"name": "no-targets", "targets": [], "conditions": [LT]},
        *SEED_ROWS[3:],
    ]
    interlocks, problems = parse_interlocks(rows)
    assert problems == [
        "typo-op: pressure_gauge_1.pressure: unknown op '<' (lt, le, gt, ge, eq, ne, between, outside)",
        "no-targets: a permit needs at least one target",
    ]
    assert len(interlocks) == 5  # the good rows parse, but with problems the set is not to be used


@pytest.mark.parametrize(
    ("row", "named"),
    [
        ({"id": "00000000-0000-4000-8000-0000000002ff"}, "00000000-0000-4000-8000-0000000002ff"),
        ({}, "?"),
        ({"name": "x" * 500}, "x" * 80),
    ],
    ids=["by-id-without-name", "neither-name-nor-id", "long-name-truncated"],
)
def test_a_problem_names_the_row_as_best_it_can(row: dict[str, Any], named: str) -> None:
    _, problems = parse_interlocks([{"kind": "alarm", **row}])
    assert problems[0].split(": ")[0] == named


# --- Condition.holds ------------------------------------------------------------------------------------

C = Condition


@pytest.mark.parametrize(
    ("condition", "actual", "holds"),
    [
        (C("p", Op.LT, value=1000.0), 999.9, True),
        (C("p", Op.LT, value=1000.0), 1000.0, False),
        (C("p", Op.LT, value=1000.0), 5000, False),
        (C("p", Op.LE, value=1000.0), 1000, True),
        (C("p", Op.LE, value=1000.0), math.nextafter(1000.0, math.inf), False),
        (C("p", Op.GT, value=5.0), 5.5, True),
        (C("p", Op.GT, value=5.0), 5.0, False),
        (C("p", Op.GE, value=5.0), 5.0, True),
        (C("p", Op.GE, value=5.0), 4.99, False),
        (C("p", Op.EQ, value=3.0), 3, True),
        (C("p", Op.EQ, value=3.0), 3.5, False),
        (C("p", Op.NE, value=3.0), 4, True),
        (C("p", Op.NE, value=3.0), 3.0, False),
        (C("t", Op.BETWEEN, low=0.0, high=350.0), 0.0, True),
        (C("t", Op.BETWEEN, low=0.0, high=350.0), 350.0, True),
        (C("t", Op.BETWEEN, low=0.0, high=350.0), 350.1, False),
        (C("t", Op.BETWEEN, low=0.0, high=350.0), -0.1, False),
        (C("t", Op.OUTSIDE, low=0.0, high=350.0), 350.1, True),
        (C("t", Op.OUTSIDE, low=0.0, high=350.0), -0.1, True),
        (C("t", Op.OUTSIDE, low=0.0, high=350.0), 0.0, False),
        (C("t", Op.OUTSIDE, low=0.0, high=350.0), 350.0, False),
        (C("b", Op.EQ, value=True), True, True),
        (C("b", Op.EQ, value=True), False, False),
        (C("b", Op.NE, value=True), False, True),
        (C("b", Op.NE, value=True), True, False),
        (C("b", Op.EQ, value=False), False, True),
        (C("b", Op.EQ, value=False), True, False),
        (C("b", Op.EQ, value=False), 0, True),
        (C("b", Op.EQ, value=False), 1, False),
        (C("b", Op.LT, value=1.0), False, False),
    ],
    ids=[
        "lt-below",
        "lt-equal",
        "lt-above",
        "le-equal",
        "le-just-above",
        "gt-above",
        "gt-equal",
        "ge-equal",
        "ge-below",
        "eq-int-vs-float",
        "eq-differs",
        "ne-differs",
        "ne-equal",
        "between-low-border",
        "between-high-border",
        "between-above",
        "between-below",
        "outside-above",
        "outside-below",
        "outside-low-border",
        "outside-high-border",
        "bool-eq-true-true",
        "bool-eq-true-false",
        "bool-ne-true-false",
        "bool-ne-true-true",
        "bool-eq-false-false",
        "bool-eq-false-true",
        "bool-eq-false-int-0",
        "bool-eq-false-int-1",
        "order-on-a-bool-reading-fails-safe",
    ],
)
def test_a_condition_holds_on_a_live_value(condition: Condition, actual: Value, holds: bool) -> None:
    assert condition.holds(actual) is holds


EVERY_OP = [
    C("p", Op.LT, value=1000.0),
    C("p", Op.LE, value=1000.0),
    C("p", Op.GT, value=-1000.0),
    C("p", Op.GE, value=-1000.0),
    C("p", Op.EQ, value=0.0),
    C("p", Op.NE, value=0.0),
    C("p", Op.BETWEEN, low=-1e9, high=1e9),
    C("p", Op.OUTSIDE, low=1.0, high=2.0),
    C("b", Op.EQ, value=True),
    C("b", Op.NE, value=True),
    C("b", Op.EQ, value=False),
]


@pytest.mark.parametrize("actual", [None, math.nan], ids=["unreadable", "nan"])
@pytest.mark.parametrize("condition", EVERY_OP, ids=lambda c: f"{c.op}-{c.value}")
def test_an_unreadable_value_never_holds(condition: Condition, actual: Value | None) -> None:
    """Fail-safe: a dead gauge blocks what its permit guards and trips what its trip watches."""
    assert condition.holds(actual) is False


@pytest.mark.parametrize(
    ("condition", "text"),
    [
        (C("p", Op.LT, value=1000.0), "p < 1000"),
        (C("p", Op.LE, value=5000.0), "p ≤ 5000"),
        (C("p", Op.GT, value=0.5), "p > 0.5"),
        (C("p", Op.GE, value=2.0), "p ≥ 2"),
        (C("b", Op.EQ, value=True), "b = true"),
        (C("b", Op.NE, value=False), "b ≠ false"),
        (C("t", Op.BETWEEN, low=0.0, high=350.0), "t within 0..350"),
        (C("t", Op.OUTSIDE, low=-5.0, high=5.5), "t outside -5..5.5"),
    ],
    ids=["lt", "le", "gt", "ge", "eq-bool", "ne-bool", "between", "outside"],
)
def test_a_condition_describes_itself(condition: Condition, text: str) -> None:
    assert condition.describe() == text


# --- Interlock.guards, InterlockSet ----------------------------------------------------------------------


def permit(*targets: str) -> Interlock:
    return Interlock("p", InterlockKind.PERMIT, (C("x", Op.EQ, value=True),), targets)


@pytest.mark.parametrize(
    ("targets", "key", "guards"),
    [
        (("valve_*.state",), "valve_1.state", True),
        (("valve_*.state",), "valve_12.state", True),
        (("valve_*.state",), "valve_1.cycle_count", False),
        (("valve_*.state",), "exhaust_valve.state", False),
        (("valve_*.state",), "Valve_1.state", False),
        (("valve_?.state",), "valve_12.state", False),
        (("valve_[12].state",), "valve_2.state", True),
        (("valve_[12].state",), "valve_3.state", False),
        (("valve_[!1].state",), "valve_1.state", False),
        (("mfc_1.flow_sp",), "mfc_1.flow_sp", True),
        (("mfc_1.flow_sp",), "mfc_1.flow", False),
        (("mfc_1.flow_sp", "valve_3.state"), "valve_3.state", True),
    ],
    ids=[
        "star-matches-1",
        "star-matches-12",
        "star-not-another-suffix",
        "whole-key-only",
        "case-sensitive",
        "question-one-char",
        "seq-in",
        "seq-out",
        "negated-seq",
        "exact",
        "exact-not-prefix",
        "second-target",
    ],
)
def test_a_permit_guards_the_keys_its_targets_match(targets: tuple[str, ...], key: str, guards: bool) -> None:
    assert permit(*targets).guards(key) is guards


def test_a_trip_guards_no_write_even_with_targets() -> None:
    trip = Interlock("t", InterlockKind.TRIP, (C("x", Op.EQ, value=True),), ("valve_*.state",))
    assert not trip.guards("valve_1.state")


@pytest.mark.parametrize(
    ("key", "names"),
    [
        ("valve_1.state", ["pulse-needs-vacuum", "pulse-needs-heaters-in-window"]),
        ("valve_6.state", ["pulse-needs-vacuum", "pulse-needs-heaters-in-window"]),
        ("mfc_1.flow_sp", ["flow-needs-n2"]),
        ("chamber_heater.temperature_sp", []),
        ("plc.watchdog", []),
    ],
    ids=["valve-1", "valve-6", "flow", "heater-setpoint", "watchdog"],
)
def test_permits_for_a_key_are_the_permits_that_guard_it(seeded: InterlockSet, key: str, names: list[str]) -> None:
    assert [i.name for i in seeded.permits_for(key)] == names


def test_the_trips_of_a_set(seeded: InterlockSet) -> None:
    assert [i.name for i in seeded.trips] == ["chamber-overpressure", "chamber-overtemperature"]
    assert len(seeded) == 5 and len(InterlockSet()) == 0


def test_missing_keys_are_the_condition_keys_the_map_lacks(seeded: InterlockSet) -> None:
    assert seeded.missing_keys(MAP) == []
    smaller = map_without("vacuum_pump.running", "precursor_1_heater.temperature", "n2_generator.fault")
    assert seeded.missing_keys(smaller) == [
        "n2_generator.fault",
        "precursor_1_heater.temperature",
        "vacuum_pump.running",
    ]


def test_failing_lists_each_broken_condition_with_its_value(seeded: InterlockSet) -> None:
    vacuum = by_name(seeded, "pulse-needs-vacuum")
    assert vacuum.failing({"pressure_gauge_1.pressure": 12.0, "vacuum_pump.running": True}) == ()
    assert vacuum.failing({"pressure_gauge_1.pressure": 5000.0}) == (
        (vacuum.conditions[0], 5000.0),
        (vacuum.conditions[1], None),  # not in the values at all: unreadable
    )


# --- Violation.explain -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "values", "text"),
    [
        (
            "pulse-needs-vacuum",
            {"pressure_gauge_1.pressure": 5000.0, "vacuum_pump.running": True},
            "interlock 'pulse-needs-vacuum': pressure_gauge_1.pressure is 5000 (must be < 1000)",
        ),
        (
            "pulse-needs-vacuum",
            {"pressure_gauge_1.pressure": 1234.5678, "vacuum_pump.running": False},
            "interlock 'pulse-needs-vacuum': pressure_gauge_1.pressure is 1234.57 (must be < 1000); "
            "vacuum_pump.running is false (must be = true)",
        ),
        (
            "pulse-needs-heaters-in-window",
            {"chamber_heater.temperature": 360.0, "precursor_1_heater.temperature": None},
            "interlock 'pulse-needs-heaters-in-window': chamber_heater.temperature is 360 (must be within 0..350); "
            "precursor_1_heater.temperature is unreadable (must be within 0..200)",
        ),
        (
            "chamber-overpressure",
            {"pressure_gauge_1.pressure": math.nan},
            "interlock 'chamber-overpressure': pressure_gauge_1.pressure is nan (must be ≤ 5000)",
        ),
    ],
    ids=["one-condition", "two-conditions", "window-and-unreadable", "nan"],
)
def test_a_violation_explains_itself_in_an_operators_words(
    seeded: InterlockSet, name: str, values: dict[str, Value | None], text: str
) -> None:
    interlock = by_name(seeded, name)
    assert Violation(interlock, interlock.failing(values)).explain() == text


# --- TripMonitor: exact times passed in ---------------------------------------------------------------------

HIGH: dict[str, Value | None] = {"pressure_gauge_1.pressure": 6000.0, "chamber_heater.temperature": 200.0}
OK: dict[str, Value | None] = {"pressure_gauge_1.pressure": 12.0, "chamber_heater.temperature": 200.0}
HOT: dict[str, Value | None] = {"pressure_gauge_1.pressure": 12.0, "chamber_heater.temperature": 390.0}


def fired(monitor: TripMonitor, values: Mapping[str, Value | None], t: float) -> list[str]:
    return [v.interlock.name for v in monitor.observe(values, t)]


def test_a_violation_shorter_than_hold_ms_does_not_trip(seeded: InterlockSet) -> None:
    monitor = TripMonitor(seeded)
    assert fired(monitor, HIGH, 10.0) == []
    assert fired(monitor, HIGH, 11.0) == []
    assert fired(monitor, HIGH, 11.875) == []  # 1875 ms of the 2000
    assert fired(monitor, OK, 12.0) == []  # cleared: the clock restarts
    assert fired(monitor, HIGH, 12.5) == []
    assert fired(monitor, HIGH, 14.0) == []  # 1.5 s since it came back, not 4 s since it first went high


def test_a_violation_lasting_exactly_hold_ms_trips(seeded: InterlockSet) -> None:
    monitor = TripMonitor(seeded)
    assert fired(monitor, HIGH, 10.0) == []
    assert fired(monitor, HIGH, 11.5) == []
    assert fired(monitor, HIGH, 12.0) == ["chamber-overpressure"]


def test_a_trip_fires_once_per_monitor_and_a_new_monitor_re_arms_it(seeded: InterlockSet) -> None:
    monitor = TripMonitor(seeded)
    fired(monitor, HIGH, 10.0)
    assert fired(monitor, HIGH, 12.0) == ["chamber-overpressure"]
    assert fired(monitor, HIGH, 13.0) == []  # still high: not again
    assert fired(monitor, OK, 14.0) == []
    assert fired(monitor, HIGH, 15.0) == []
    assert fired(monitor, HIGH, 20.0) == []  # cleared and high again: still not within this monitor (this run)
    fresh = TripMonitor(seeded)  # the next run
    assert fired(fresh, HIGH, 30.0) == []
    assert fired(fresh, HIGH, 32.0) == ["chamber-overpressure"]


def test_a_zero_hold_trip_fires_on_the_first_violating_frame(seeded: InterlockSet) -> None:
    monitor = TripMonitor(seeded)
    assert fired(monitor, OK, 1.0) == []
    (violation,) = monitor.observe(HOT, 1.1)
    assert violation.interlock.name == "chamber-overtemperature"
    assert violation.failing == ((violation.interlock.conditions[0], 390.0),)


@pytest.mark.parametrize(
    "frame",
    [{"chamber_heater.temperature": None}, {}, {"chamber_heater.temperature": math.nan}],
    ids=["none", "absent", "nan"],
)
def test_an_unreadable_value_counts_as_a_violation(seeded: InterlockSet, frame: dict[str, Value | None]) -> None:
    monitor = TripMonitor(seeded)
    assert "chamber-overtemperature" in fired(monitor, frame, 1.0)


def test_trips_are_timed_independently(seeded: InterlockSet) -> None:
    monitor = TripMonitor(seeded)
    both = HIGH | {"chamber_heater.temperature": 390.0}
    assert fired(monitor, both, 10.0) == ["chamber-overtemperature"]
    assert fired(monitor, both, 12.0) == ["chamber-overpressure"]


def test_permits_are_not_watched_as_trips(seeded: InterlockSet) -> None:
    monitor = TripMonitor(seeded)
    pump_off = OK | {"vacuum_pump.running": False, "n2_generator.fault": True}
    assert fired(monitor, pump_off, 0.0) == [] and fired(monitor, pump_off, 100.0) == []


# --- recipe_conflicts: what a recipe's own values say against the interlocks -------------------------------


def test_a_heater_setpoint_above_an_interlock_window_is_a_problem_naming_rule_and_step(seeded: InterlockSet) -> None:
    plan = recipe(param("chamber_heater.temperature_sp", 360, name="Chamber to 360 °C"), valve(1, 20))
    assert recipe_conflicts(plan, seeded, MAP) == [
        Problem(
            "1",
            "Chamber to 360 °C",
            "sets chamber_heater.temperature_sp to 360, but interlock 'pulse-needs-heaters-in-window' "
            "requires chamber_heater.temperature within 0..350",
        )
    ]


def test_a_setpoint_past_a_trip_and_a_permit_names_both(seeded: InterlockSet) -> None:
    plan = recipe(purge(1000), loop(2, param("chamber_heater.temperature_sp", 390, name="too hot")))
    problems = recipe_conflicts(plan, seeded, MAP)
    assert [(p.path, p.name) for p in problems] == [("2/1", "too hot"), ("2/1", "too hot")]
    assert "'pulse-needs-heaters-in-window'" in problems[0].message
    assert "'chamber-overtemperature' requires chamber_heater.temperature ≤ 380" in problems[1].message


@pytest.mark.parametrize(
    "step",
    [
        param("chamber_heater.temperature_sp", 200),
        param("chamber_heater.temperature_sp", 350),
        param("precursor_1_heater.temperature_sp", 150),
        param("mfc_1.flow_sp", 20),
        param("frontline_heater.temperature_sp", 240),
    ],
    ids=["chamber-200", "chamber-at-window-edge", "tma-source-150", "flow", "unwatched-heater"],
)
def test_setpoints_inside_every_window_are_no_problem(seeded: InterlockSet, step: dict[str, Any]) -> None:
    assert recipe_conflicts(recipe(step, valve(1, 20)), seeded, MAP) == []


def test_a_valve_guarded_by_a_permit_on_an_unmapped_key_is_a_problem(seeded: InterlockSet) -> None:
    plan = recipe(loop(3, valve(1, 20, name="TMA pulse"), purge(1000), valve(2, 30, name="H2O pulse")))
    problems = recipe_conflicts(plan, seeded, map_without("vacuum_pump.running"))
    assert problems == [
        Problem(
            "1/1", "TMA pulse", "interlock 'pulse-needs-vacuum' guards valve_1.state on unmapped vacuum_pump.running"
        ),
        Problem(
            "1/3", "H2O pulse", "interlock 'pulse-needs-vacuum' guards valve_2.state on unmapped vacuum_pump.running"
        ),
    ]


def test_the_seeded_recipe_does_not_conflict_with_the_seeded_interlocks(seeded: InterlockSet) -> None:
    assert recipe_conflicts(Recipe.from_rows(AL2O3_RECIPE_ROW, AL2O3_ROWS), seeded, MAP) == []


@pytest.mark.parametrize("reading", [math.inf, -math.inf], ids=["plus-inf", "minus-inf"])
def test_an_infinite_reading_fails_every_condition_like_an_unreadable_one(reading: float) -> None:
    """A gauge past its range reads ±inf: `-inf < 1000` must not open a precursor valve."""
    assert not Condition("pressure_gauge_1.pressure", Op.LT, value=1000.0).holds(reading)
    assert not Condition("pressure_gauge_1.pressure", Op.OUTSIDE, low=0.0, high=10.0).holds(reading)


def test_a_trip_fires_on_the_frame_that_completes_its_hold_despite_float_times() -> None:
    """1.1 → 1.2 s is 99.99… ms in binary floating point: a 100 ms hold must still fire on that frame."""
    trip = Interlock("t", InterlockKind.TRIP, (Condition("x", Op.LE, value=1.0),), hold_ms=100)
    monitor = TripMonitor(InterlockSet((trip,)))
    assert monitor.observe({"x": 2.0}, 1.1) == []
    assert [v.interlock.name for v in monitor.observe({"x": 2.0}, 1.2)] == ["t"]
