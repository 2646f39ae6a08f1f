"""Validation: one table row per kind of problem, each located by path and name; every problem at once;
every limit of `agent.limits` accepted at its bound and refused one above it, without expanding anything."""

from __future__ import annotations

import dataclasses
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recipe_support import (
    AL2O3_RECIPE_ROW,
    AL2O3_ROWS,
    LAMINATE_RECIPE_ROW,
    LAMINATE_ROWS,
    agent_timed_map,
    loop,
    map_read_only,
    map_without,
    param,
    purge,
    recipe,
    step,
    valve,
    wait,
)

from agent.errors import RecipeError
from agent.limits import (
    MAX_ERROR_CHARS,
    MAX_INTEGER,
    MAX_KEY_CHARS,
    MAX_LISTED_PROBLEMS,
    MAX_LOOP_COUNT,
    MAX_NAME_CHARS,
    MAX_PLAN_STEPS,
    MAX_PURGE_MS,
    MAX_RECIPE_MS,
    MAX_RECIPE_STEPS,
    MAX_VALVE_NUMBER,
    MAX_VALVE_PULSE_MS,
    MAX_WAIT_MS,
    MAX_WAIT_TIMEOUT_MS,
    MIN_INTEGER,
)
from agent.plc import RegisterMap, load_default_map
from agent.recipes import (
    InvalidRecipe,
    Problem,
    Recipe,
    check_structure,
    compile_recipe,
    ensure_valid,
    pv_key,
    validate,
)

DEFAULT = load_default_map()
HEATER_SP = "chamber_heater.temperature_sp"


#: A PLC whose pulse timer on valve 1 accepts at most 10 ms.
PULSE_MAX_10 = RegisterMap.build(
    dataclasses.replace(p, max_value=10.0) if p.key == "valve_1.pulse_ms" else p for p in load_default_map()
)


def case(steps: list[dict], expected: list[str], *, id: str, map: RegisterMap = DEFAULT) -> object:
    """(steps, expected problem strings, register map) — the default map unless the case names another."""
    return pytest.param(steps, expected, map, id=id)


CASES = [
    # --- valve
    case([step("valve", {}, "v")], ["1 'v': valve is missing", "1 'v': duration_ms is missing"],
                 id="valve-config-missing"),
    case([valve(1, 0, "v")], ["1 'v': duration_ms must be greater than 0 (got 0)"], id="valve-zero-duration"),
    case([valve(1, -5, "v")], ["1 'v': duration_ms must be greater than 0 (got -5)"],
                 id="valve-negative-duration"),
    case([step("valve", {"valve": 1.5, "duration_ms": 20}, "v")],
                 ["1 'v': valve must be a valid integer (got 1.5)"], id="valve-number-not-integer"),
    case([step("valve", {"valve": True, "duration_ms": 20}, "v")],
                 ["1 'v': valve must be a valid integer (got True)"], id="valve-number-bool"),
    case([step("valve", {"valve": 0, "duration_ms": 20}, "v")],
                 ["1 'v': valve must be greater than or equal to 1 (got 0)"], id="valve-zero"),
    case([valve(1, 20.5, "v")],
                 ["1 'v': valve 1 is PLC-timed in whole milliseconds (valve_1.pulse_ms): 20.5 ms is not"],
                 id="plc-timed-valve-fraction-of-a-ms"),
    case([valve(1, 20.5, "v")], [], map=agent_timed_map(), id="agent-timed-valve-fraction-of-a-ms"),
    case([valve(1, 20, "v")], ["1 'v': valve 1 is PLC-timed: valve_1.pulse_ms: 20 is above the maximum 10 ms"],
                 map=PULSE_MAX_10, id="plc-timed-valve-beyond-the-plcs-range"),
    case([param("valve_2.pulse_trigger", 3, "s")],
                 ["1 's': valve_2.pulse_trigger starts a PLC-timed pulse: use a valve step, which waits for its end"],
                 id="parameter-triggers-a-pulse"),
    case([valve(7, 20, "v")], ["1 'v': valve 7 is not in the register map (no valve_7.state)"],
                 id="valve-unknown"),
    case([valve(6, 20, "v")], ["1 'v': valve 6: valve_6.state is not a writable bool"],
                 id="valve-read-only", map=map_read_only("valve_6.state")),
    case([step("valve", {"valve": 1, "duration_ms": "20"}, "v")],
                 ["1 'v': duration_ms must be a valid number (got '20')"], id="valve-duration-string"),
    case([step("valve", [1, 20], "v")], ["1 'v': config must be a JSON object, got list"],
                 id="config-not-object"),
    # --- purge
    case([purge(0, "p")], ["1 'p': duration_ms must be greater than 0 (got 0)"], id="purge-zero-duration"),
    case([purge(10, "p", flow_sccm=-1)], ["1 'p': flow_sccm must be greater than or equal to 0 (got -1)"],
                 id="purge-negative-flow"),
    case([purge(10, "p", flow=5)], ["1 'p': unknown field 'flow'"], id="purge-unknown-field"),
    case([purge(10, "p", flow_sccm=300)], ["1 'p': flow_sccm: mfc_1.flow_sp: 300 is above the maximum 200 sccm"],
                 id="purge-flow-above-max"),
    case([purge(10, "p", flow_sccm=5)], ["1 'p': flow_sccm is set but the map has no writable mfc_1.flow_sp"],
                 id="purge-flow-without-mfc", map=map_without("mfc_1.flow_sp")),
    # --- wait
    case([wait(-1, "w")], ["1 'w': duration_ms must be greater than or equal to 0 (got -1)"],
                 id="wait-negative"),
    case([step("wait", {"duration_ms": float("nan")}, "w")],
                 ["1 'w': duration_ms must be a finite number (got nan)"], id="wait-nan"),
    # --- loop
    case([step("loop", {"count": 0}, "L", [wait(1)])], ["1 'L': count must be greater than or equal to 1 (got 0)"],
                 id="loop-count-zero"),
    case([step("loop", {}, "L", [wait(1)])], ["1 'L': count is missing"], id="loop-count-missing"),
    case([step("loop", {"count": 2.5}, "L", [wait(1)])], ["1 'L': count must be a valid integer (got 2.5)"],
                 id="loop-count-fraction"),
    case([loop(3, name="L")], ["1 'L': loop has no steps"], id="loop-empty"),
    case([step("wait", {"duration_ms": 1}, "w", [wait(1)])],
                 ["1 'w': a wait step cannot have steps inside (only a loop can)"], id="non-loop-with-children"),
    case([step("valv", {}, "x")], ["1 'x': unknown step type 'valv' (valve, purge, parameter, wait, loop)"],
                 id="unknown-type"),
    # --- parameter
    case([param("chamber.nope_sp", 1, "s")], ["1 's': unknown parameter 'chamber.nope_sp'"],
                 id="parameter-unknown"),
    case([param("chamber_heater.temperature", 100, "s")], ["1 's': chamber_heater.temperature is read-only"],
                 id="parameter-read-only"),
    case([param(HEATER_SP, 401, "s")], ["1 's': chamber_heater.temperature_sp: 401 is above the maximum 400 °C"],
                 id="setpoint-above-max"),
    case([param(HEATER_SP, -1, "s")], ["1 's': chamber_heater.temperature_sp: -1 is below the minimum 0 °C"],
                 id="setpoint-below-min"),
    case([param(HEATER_SP, True, "s")], ["1 's': chamber_heater.temperature_sp: expected a number, got bool True"],
                 id="setpoint-bool-for-float"),
    case([param("vacuum_pump.power_on", 2, "s")],
         ["1 's': vacuum_pump.power_on: expected a boolean (true/false or 0/1), got 2"], id="setpoint-number-for-bool"),
    case([param("plc.watchdog", 70000, "s")], ["1 's': plc.watchdog: 70000 is above the maximum 65535"],
                 id="setpoint-beyond-uint16"),
    case([step("parameter", {"parameter": HEATER_SP, "value": "200"}, "s")],
                 ["1 's': value: must be a finite number or true/false, got '200'"], id="setpoint-string"),
    case([step("parameter", {"parameter": HEATER_SP}, "s")], ["1 's': value is missing"], id="setpoint-missing"),
    case([param("valve_1.state", True, "s")],
                 ["1 's': valve_1.state is a pulse valve: use a valve step, which always closes it"],
                 id="parameter-opens-a-pulse-valve"),
    case([param(HEATER_SP, 200, "s", tolerance=-1, timeout_ms=10)],
                 ["1 's': wait.tolerance must be greater than or equal to 0 (got -1)"], id="wait-negative-tolerance"),
    case([param(HEATER_SP, 200, "s", tolerance=1)], ["1 's': wait.timeout_ms is missing"],
                 id="wait-timeout-missing"),
    case([param("vacuum_pump.power_on", True, "s", tolerance=0.5, timeout_ms=100)],
                 ["1 's': wait.tolerance must be 0 for a true/false parameter"], id="wait-tolerance-on-bool"),
    # --- structure
    case([], ["recipe: recipe has no steps"], id="empty-recipe"),
    case([loop(1001, loop(1000, wait(1)))], ["recipe: expands to 1,001,000 steps, more than 200,000"],
                 id="plan-too-large"),
]  # fmt: skip


@pytest.mark.parametrize(("steps", "expected", "register_map"), CASES)
def test_each_problem_is_reported_with_its_path(
    steps: list[dict], expected: list[str], register_map: RegisterMap
) -> None:
    assert [str(p) for p in validate(recipe(*steps), register_map)] == expected


def _nested(depth: int) -> dict:
    inner = wait(1, "deep")
    for _ in range(depth - 1):
        inner = loop(1, inner, name="L")
    return inner


@pytest.mark.parametrize(
    ("depth", "max_depth", "expected"),
    [
        (8, 8, []),
        (9, 8, ["1/1/1/1/1/1/1/1/1 'deep': nested 9 levels deep; the limit is 8"]),
        (4, 2, ["1/1/1 'L': nested 3 levels deep; the limit is 2"]),
    ],
    ids=["at-the-limit", "one-too-deep", "custom-limit"],
)
def test_depth_limit(depth: int, max_depth: int, expected: list[str]) -> None:
    assert [str(p) for p in validate(recipe(_nested(depth)), DEFAULT, max_depth=max_depth)] == expected


def test_load_problems_come_first() -> None:
    rows = [dict(AL2O3_ROWS[0]), dict(AL2O3_ROWS[4], parent_step_id="gone")]
    problems = validate(Recipe.from_rows(AL2O3_RECIPE_ROW, rows), DEFAULT)
    assert [p.message for p in problems] == [
        f"step row {AL2O3_ROWS[4]['id']} 'TMA pulse': parent gone is not a step of this recipe"
    ]


@pytest.mark.parametrize(
    ("rows", "row_recipe"),
    [(AL2O3_ROWS, AL2O3_RECIPE_ROW), (LAMINATE_ROWS, LAMINATE_RECIPE_ROW)],
    ids=["al2o3", "laminate"],
)
def test_the_seeded_recipes_are_valid_on_the_default_map(rows: list[dict], row_recipe: dict) -> None:
    assert validate(Recipe.from_rows(row_recipe, rows), DEFAULT) == []


def test_every_problem_at_once() -> None:
    bad = recipe(
        param(HEATER_SP, 999, "too hot"),
        loop(
            2,
            valve(9, 0, "ghost pulse"),
            step("loop", {}, "no count", [wait(1)]),
            purge(10, "purge", flow_sccm=500),
            name="cycle",
        ),
        step("wait", {"duration_ms": 1}, "parent wait", [wait(1)]),
        loop(5, name="hollow"),
    )
    problems = validate(bad, DEFAULT)
    assert [str(p) for p in problems] == [
        "1 'too hot': chamber_heater.temperature_sp: 999 is above the maximum 400 °C",
        "2/1 'ghost pulse': duration_ms must be greater than 0 (got 0)",
        "2/1 'ghost pulse': valve 9 is not in the register map (no valve_9.state)",
        "2/2 'no count': count is missing",
        "2/3 'purge': flow_sccm: mfc_1.flow_sp: 500 is above the maximum 200 sccm",
        "3 'parent wait': a wait step cannot have steps inside (only a loop can)",
        "4 'hollow': loop has no steps",
    ]
    with pytest.raises(RecipeError) as caught:
        ensure_valid(bad, DEFAULT)
    assert isinstance(caught.value, InvalidRecipe) and caught.value.problems == tuple(problems)
    lines = str(caught.value).splitlines()
    assert lines[0] == "recipe 'test recipe' is invalid (7 problems):"
    assert lines[1:] == [f"  {p}" for p in problems]


def test_ensure_valid_passes_a_good_recipe() -> None:
    ensure_valid(recipe(valve(1, 20), purge(100, flow_sccm=20)), DEFAULT)


def test_problem_location_text() -> None:
    assert str(Problem("3/1", "TMA pulse", "boom")) == "3/1 'TMA pulse': boom"
    assert str(Problem("3/1", "", "boom")) == "3/1: boom"
    assert str(Problem("", "", "boom")) == "recipe: boom"


@pytest.mark.parametrize(
    ("key", "pv"),
    [
        ("chamber_heater.temperature_sp", "chamber_heater.temperature"),
        ("precursor_3_heater.temperature_sp", "precursor_3_heater.temperature"),
        ("mfc_1.flow_sp", "mfc_1.flow"),
        ("chamber_heater.kp", "chamber_heater.kp"),
        ("vacuum_pump.power_on", "vacuum_pump.power_on"),
    ],
    ids=["heater", "precursor-heater", "mfc", "no-suffix-reads-itself", "bool"],
)
def test_pv_rule(key: str, pv: str) -> None:
    assert pv_key(key, DEFAULT) == pv


def test_pv_rule_falls_back_when_the_pv_is_not_mapped() -> None:
    assert pv_key("mfc_1.flow_sp", map_without("mfc_1.flow")) == "mfc_1.flow_sp"


# --- limits (agent.limits): the bound itself passes, one more is refused, each breach a located Problem ----

HOUR_MS = 3_600_000


def limit(at_limit: list[dict], over: list[dict], expected: list[str], *, id: str) -> object:
    return pytest.param(at_limit, over, expected, id=id)


LIMITS = [
    limit([valve(1, MAX_VALVE_PULSE_MS, "v")], [valve(1, MAX_VALVE_PULSE_MS + 1, "v")],
          ["1 'v': duration_ms must be less than or equal to 10000 (got 10001)"], id="valve-pulse-10-s"),
    limit([valve(1, MAX_VALVE_PULSE_MS, "v")], [valve(1, 10**12, "v")],
          ["1 'v': duration_ms must be less than or equal to 10000 (got 1000000000000)"], id="valve-pulse-10^12-ms"),
    limit([valve(MAX_VALVE_NUMBER, 20, "v")], [valve(MAX_VALVE_NUMBER + 1, 20, "v")],
          ["1 'v': valve must be less than or equal to 1000 (got 1001)"], id="valve-number"),
    limit([purge(MAX_PURGE_MS, "p")], [purge(MAX_PURGE_MS + 1, "p")],
          ["1 'p': duration_ms must be less than or equal to 3600000 (got 3600001)"], id="purge-1-h"),
    limit([wait(MAX_WAIT_MS, "w")], [wait(MAX_WAIT_MS + 1, "w")],
          ["1 'w': duration_ms must be less than or equal to 3600000 (got 3600001)"], id="wait-1-h"),
    limit([param(HEATER_SP, 200, "s", tolerance=2, timeout_ms=MAX_WAIT_TIMEOUT_MS)],
          [param(HEATER_SP, 200, "s", tolerance=2, timeout_ms=MAX_WAIT_TIMEOUT_MS + 1)],
          ["1 's': wait.timeout_ms must be less than or equal to 3600000 (got 3600001)"], id="wait-timeout-1-h"),
    limit([loop(MAX_LOOP_COUNT, wait(0), name="L")], [loop(MAX_LOOP_COUNT + 1, wait(0), name="L")],
          ["1 'L': count must be less than or equal to 100000 (got 100001)"], id="loop-count"),
    limit([loop(MAX_LOOP_COUNT, wait(0), name="L")], [loop(10**12, wait(0), name="L")],
          ["1 'L': count must be less than or equal to 100000 (got 1000000000000)"], id="loop-count-10^12"),
    limit([loop(2, loop(MAX_PLAN_STEPS // 2, wait(0)))], [loop(2, loop(MAX_PLAN_STEPS // 2, wait(0))), wait(0)],
          ["recipe: expands to 200,001 steps, more than 200,000"], id="plan-steps"),
    limit([loop(MAX_RECIPE_MS // HOUR_MS, wait(HOUR_MS))], [loop(MAX_RECIPE_MS // HOUR_MS, wait(HOUR_MS)), wait(1)],
          ["recipe: plans 259,200,001 ms (72.0 h), more than 259,200,000 ms (72 h)"], id="recipe-time-72-h"),
    limit([param("k" * MAX_KEY_CHARS, 1, "s")], [param("k" * (MAX_KEY_CHARS + 1), 1, "s")],
          ["1 's': parameter: String should have at most 200 characters"], id="parameter-key-length"),
    limit([param(HEATER_SP, MAX_INTEGER, "s")], [param(HEATER_SP, MAX_INTEGER + 1, "s")],
          ["1 's': value: must fit in 64 bits (-2**63 … 2**64-1) as every PLC register does, "
           "got 18446744073709551616"], id="value-uint64-max"),
    limit([param(HEATER_SP, MIN_INTEGER, "s")], [param(HEATER_SP, MIN_INTEGER - 1, "s")],
          ["1 's': value: must fit in 64 bits (-2**63 … 2**64-1) as every PLC register does, "
           "got -9223372036854775809"], id="value-int64-min"),
    limit([param(HEATER_SP, 1e308, "s")], [param(HEATER_SP, float("inf"), "s")],
          ["1 's': value: must be a finite number, got inf"], id="value-1e400-parses-as-inf"),
    limit([param(HEATER_SP, 10**19, "s")], [param(HEATER_SP, 10**5000, "s")],
          ["1 's': value: must fit in 64 bits (-2**63 … 2**64-1) as every PLC register does, "
           "got an integer of about 5,001 digits"], id="value-5001-digits"),
]  # fmt: skip


@pytest.mark.parametrize(("at_limit", "over", "expected"), LIMITS)
def test_each_limit_accepts_its_bound_and_refuses_beyond_it(
    at_limit: list[dict], over: list[dict], expected: list[str]
) -> None:
    assert check_structure(recipe(*at_limit)) == []
    assert [str(p) for p in check_structure(recipe(*over))] == expected


@pytest.mark.parametrize("source", ["document", "rows"])
def test_steps_as_stored_are_counted_and_not_built_above_the_limit(source: str) -> None:
    def load(n: int) -> Recipe:
        if source == "document":
            return recipe(loop(1, *[wait(1)] * (n - 1)))  # the loop is a stored step too
        rows = [
            {"id": str(i), "parent_step_id": None, "sequence": i, "type": "wait", "config": {"duration_ms": 1}}
            for i in range(n)
        ]
        return Recipe.from_rows({"id": "r", "name": "flat"}, rows)

    at_limit = load(MAX_RECIPE_STEPS)
    assert at_limit.stored_steps == MAX_RECIPE_STEPS and check_structure(at_limit) == []
    over = load(MAX_RECIPE_STEPS + 1)
    assert [str(p) for p in check_structure(over)] == ["recipe: has more than 1,000 steps as stored (1,001 read)"]
    assert over.stored_steps == MAX_RECIPE_STEPS + 1
    if source == "rows":
        assert over.steps == ()  # counted, not built


def test_a_loop_of_10_to_the_15_steps_is_refused_by_arithmetic_without_expanding_it() -> None:
    """Three nested loops, each count allowed: 10^15 steps. Expanding them would never finish; counting
    them is a multiplication, so validation answers at once, with almost no memory."""
    huge = recipe(loop(MAX_LOOP_COUNT, loop(MAX_LOOP_COUNT, loop(MAX_LOOP_COUNT, wait(1)))))
    tracemalloc.start()
    try:
        problems = [str(p) for p in check_structure(huge)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert problems == [
        "recipe: expands to 1,000,000,000,000,000 steps, more than 200,000",
        "recipe: plans 1,000,000,000,000,000 ms (277,777,777.8 h), more than 259,200,000 ms (72 h)",
    ]
    assert peak < 1_000_000  # bytes; a list of the steps would need ~10^17
    with pytest.raises(InvalidRecipe, match="expands to 1,000,000,000,000,000 steps"):
        compile_recipe(huge)


def test_every_limit_breach_is_reported_at_once() -> None:
    bad = recipe(
        valve(1, 10**12, "stuck pulse"),
        loop(10**12, wait(2 * HOUR_MS, "long wait"), name="forever"),
        param(HEATER_SP, 10**5000, "huge"),
    )
    assert [str(p) for p in check_structure(bad)] == [
        "1 'stuck pulse': duration_ms must be less than or equal to 10000 (got 1000000000000)",
        "2 'forever': count must be less than or equal to 100000 (got 1000000000000)",
        "2/1 'long wait': duration_ms must be less than or equal to 3600000 (got 7200000)",
        "3 'huge': value: must fit in 64 bits (-2**63 … 2**64-1) as every PLC register does, "
        "got an integer of about 5,001 digits",
    ]


# --- errors quote input clipped ----------------------------------------------------------------------------

LONG = "x" * 100_000


@pytest.mark.parametrize(
    ("bad", "quoted"),
    [
        (recipe(wait(-1, LONG), name=LONG), "recipe: name is 100,000 characters, more than 200"),
        (recipe(step("wait", {LONG: 1, "duration_ms": 1}, "w")), "1 'w': unknown field 'xxxxxxxx"),
        (recipe(step(LONG, {}, "s")), "1 's': unknown step type 'xxxxxxxx"),
        (recipe(step("wait", {"duration_ms": LONG}, "w")), "1 'w': duration_ms must be a valid number (got 'xxxxxxxx"),
        (recipe(param(HEATER_SP, LONG, "s")), "1 's': value: must be a finite number or true/false, got 'xxxxxxxx"),
    ],
    ids=["recipe-and-step-name", "config-field-name", "step-type", "duration-text", "value-text"],
)
def test_a_100000_character_input_is_quoted_clipped(bad: Recipe, quoted: str) -> None:
    problems = [str(p) for p in validate(bad, DEFAULT)]
    assert problems[0].startswith(quoted) and any("more characters)" in p for p in problems)
    assert all(len(p) < 500 for p in problems), problems
    with pytest.raises(InvalidRecipe) as caught:
        ensure_valid(bad, DEFAULT)
    assert len(str(caught.value)) <= MAX_ERROR_CHARS


def test_a_100000_character_parameter_key_is_refused_by_its_length_and_quoted_clipped() -> None:
    length, unknown = map(str, validate(recipe(param(LONG, 1, "s")), DEFAULT))
    assert length == "1 's': parameter: String should have at most 200 characters"
    assert unknown.startswith("1 's': unknown parameter 'xxxx") and unknown.endswith(" more characters)")
    assert len(unknown) <= 250


def test_the_error_of_a_recipe_with_thousands_of_problems_lists_the_first_and_counts_the_rest() -> None:
    with pytest.raises(InvalidRecipe) as caught:
        ensure_valid(recipe(*[valve(9, 0, "v") for _ in range(1_000)]), DEFAULT)
    assert len(caught.value.problems) == 2_000  # the exception keeps them all (the CLI prints them)
    lines = str(caught.value).splitlines()
    assert lines[0] == "recipe 'test recipe' is invalid (2,000 problems):"
    assert lines[1:-1] == [f"  {p}" for p in caught.value.problems[:MAX_LISTED_PROBLEMS]]
    assert lines[-1] == "  … and 1,980 more"


def test_the_error_of_many_long_problems_is_clipped_to_the_row_limit() -> None:
    with pytest.raises(InvalidRecipe) as caught:
        ensure_valid(recipe(*[valve(9, 0, LONG) for _ in range(100)]), DEFAULT)
    text = str(caught.value)
    assert len(text) <= MAX_ERROR_CHARS and text.endswith(" more characters)")


@pytest.mark.parametrize(
    ("steps", "expected"),
    [(500, None), (MAX_RECIPE_STEPS, "recipe: its snapshot in the run's record is 5")],
    ids=["fits", "too-big-for-the-run-record"],
)
def test_a_recipe_must_fit_in_its_run_record(steps: int, expected: str | None) -> None:
    """The run's row carries the recipe snapshot in one request; a row too big for it would be quarantined and
    the run never shown. Many steps with the longest names and keys (and their row ids) are refused up front."""
    longest = param("k" * MAX_KEY_CHARS, 1, "n" * MAX_NAME_CHARS, tolerance=1, timeout_ms=1)
    rows = [longest | {"id": f"00000000-0000-4000-8000-{n:012d}"} for n in range(steps)]
    problems = [str(p) for p in check_structure(recipe(*rows))]
    if expected is None:
        assert problems == []
    else:
        (problem,) = problems
        assert problem.startswith(expected) and problem.endswith(" bytes, more than 524,288")


@pytest.mark.parametrize(("chars", "refused"), [(200, False), (201, True)], ids=["at-the-limit", "one-above"])
def test_step_and_recipe_names_are_at_most_200_characters(chars: int, refused: bool) -> None:
    problems = [str(p) for p in check_structure(recipe(wait(1, "n" * chars), name="r" * chars))]
    expected = [f"recipe: name is {chars} characters, more than 200", f"name is {chars} characters, more than 200"]
    assert len(problems) == (2 if refused else 0)
    if refused:
        assert problems[0] == expected[0] and problems[1].startswith("1 'nnn") and problems[1].endswith(expected[1])


# --- property: whatever a config holds, validation answers with bounded problems and never raises ----------

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**320),
    st.integers(0, 3).map(lambda k: 10 ** (4999 + k)),  # built, not written: repr refuses 5,000 digits
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=50),
    st.just("x" * 10_000),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=20), inner, max_size=3),
    max_leaves=8,
)
FIELDS = st.sampled_from(["valve", "duration_ms", "count", "parameter", "value", "wait", "flow_sccm", "gas", "x"])
CONFIGS = st.dictionaries(FIELDS, JSON_VALUES, max_size=4) | JSON_VALUES
KINDS = st.sampled_from(["valve", "purge", "parameter", "wait", "loop", "nope"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(KINDS, CONFIGS, st.text(max_size=300)), min_size=1, max_size=4))
def test_any_config_gives_bounded_problems_never_an_exception(steps: list[tuple[str, object, str]]) -> None:
    bad = recipe(*[step(kind, config, name, [wait(1)] if kind == "loop" else None) for kind, config, name in steps])
    problems = validate(bad, DEFAULT)
    assert all(len(str(p)) <= 1_200 for p in problems), max(len(str(p)) for p in problems)
    if problems:
        with pytest.raises(InvalidRecipe) as caught:
            ensure_valid(bad, DEFAULT)
        assert len(str(caught.value)) <= MAX_ERROR_CHARS
    else:
        compile_recipe(bad, register_map=DEFAULT)  # what validates compiles
