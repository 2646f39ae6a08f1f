"""The machine's static write rules (`check_write`, `is_safe_value`), as tables over the default register map.

Each table is one rule of the safety kernel: the watchdog register is the watchdog duty's alone; a pulse valve
is opened only by a valve step (anyone may close it); integers are whole numbers of their register's steps;
numbers are finite and of a sane size; types match; ranges hold at their borders; read-only stays read-only.
Every refusal is an `agent.errors.ValidationError` — never an OverflowError or ValueError escaping to the caller.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from agent.errors import ValidationError
from agent.plc import DataType, Parameter, RegisterKind, WordOrder, load_default_map
from agent.safety import OWNER_KEY, WATCHDOG_KEY, WritePurpose, check_write, is_safe_value

MAP = load_default_map()
ORDER = WordOrder.LITTLE
P = WritePurpose
ALL_PURPOSES = list(WritePurpose)
NOT_WATCHDOG = [p for p in WritePurpose if p is not P.WATCHDOG]
#: Purposes that may write ordinary outputs: everything but the two reserved registers' own duties.
ORDINARY = [p for p in WritePurpose if p not in (P.WATCHDOG, P.OWNERSHIP)]
#: A writable integer register in engineering units of 0.1 (the default map has none writable: built here).
SCALED = Parameter(
    key="chamber_heater.ramp_sp",
    component="chamber_heater",
    data_type=DataType.INT16,
    register=RegisterKind.HOLDING,
    address=2400,
    write_address=2400,
    scale=0.1,
    min_value=-100.0,
    max_value=100.0,
    writable=True,
)
HUGE = 10**5000  # 5,001 digits: float() of it raises OverflowError, str() of it raises ValueError (3.11)


def allowed(key: str, value: object, purpose: WritePurpose) -> list[int] | bool:
    return check_write(MAP[key], value, purpose=purpose, order=ORDER)


def refused(key: str, value: object, purpose: WritePurpose, param: Parameter | None = None) -> ValidationError:
    with pytest.raises(ValidationError) as caught:  # any other exception type escapes and fails the test
        check_write(param or MAP[key], value, purpose=purpose, order=ORDER)
    return caught.value


# --- the watchdog register is the watchdog duty's alone ---------------------------------------------


@pytest.mark.parametrize("value", [0, 1, 7], ids=["zero", "one", "seven"])
@pytest.mark.parametrize("purpose", NOT_WATCHDOG, ids=str)
def test_the_watchdog_register_is_refused_for_every_purpose_but_the_watchdog(purpose: WritePurpose, value: int) -> None:
    error = refused(WATCHDOG_KEY, value, purpose)
    assert WATCHDOG_KEY in str(error)


def test_the_watchdog_duty_writes_its_register() -> None:
    assert allowed(WATCHDOG_KEY, 7, P.WATCHDOG) == [7]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("valve_1.state", False),
        ("valve_1.state", True),
        ("mfc_1.flow_sp", 0.0),
        ("chamber_heater.pid_period", 100),
        ("vacuum_pump.power_on", True),
    ],
    ids=["close-valve", "open-valve", "flow-zero", "integer-param", "pump-on"],
)
def test_the_watchdog_duty_writes_nothing_but_its_register(key: str, value: object) -> None:
    error = refused(key, value, P.WATCHDOG)
    assert f"only {WATCHDOG_KEY}" in str(error)


# --- the ownership register is written only to claim or release the machine ----------------------


@pytest.mark.parametrize("purpose", [p for p in WritePurpose if p is not P.OWNERSHIP], ids=str)
def test_the_ownership_register_is_refused_for_every_purpose_but_ownership(purpose: WritePurpose) -> None:
    assert OWNER_KEY in str(refused(OWNER_KEY, 12345, purpose))


@pytest.mark.parametrize("value", [0, 12345], ids=["release", "claim"])
def test_claiming_and_releasing_write_the_ownership_register(value: int) -> None:
    assert allowed(OWNER_KEY, value, P.OWNERSHIP)


@pytest.mark.parametrize("key", ["valve_1.state", "mfc_1.flow_sp", "chamber_heater.pid_period"], ids=str)
def test_a_claim_writes_nothing_but_the_ownership_register(key: str) -> None:
    assert f"only {OWNER_KEY}" in str(refused(key, 0, P.OWNERSHIP))


# --- pulse valves: opened only by a valve step, closed by anyone ------------------------------------


@pytest.mark.parametrize("value", [True, 1, 1.0], ids=["true", "int-1", "float-1"])
@pytest.mark.parametrize("key", ["valve_1.state", "valve_6.state"], ids=["valve-1", "valve-6"])
@pytest.mark.parametrize("purpose", [P.OPERATOR, P.RECIPE, P.SAFE_STATE], ids=str)
def test_opening_a_pulse_valve_is_refused_except_for_a_valve_step(
    purpose: WritePurpose, key: str, value: object
) -> None:
    error = refused(key, value, purpose)
    assert "pulse valve" in str(error) and key in str(error)


@pytest.mark.parametrize("value", [True, 1, 1.0], ids=["true", "int-1", "float-1"])
def test_a_valve_step_opens_its_pulse_valve(value: object) -> None:
    assert allowed("valve_1.state", value, P.VALVE_STEP) is True


@pytest.mark.parametrize("value", [False, 0, 0.0], ids=["false", "int-0", "float-0"])
@pytest.mark.parametrize("purpose", ORDINARY, ids=str)
def test_closing_a_pulse_valve_is_allowed_for_every_purpose(purpose: WritePurpose, value: object) -> None:
    assert allowed("valve_3.state", value, purpose) is False


# --- PLC-timed pulses: a trigger counts as opening its valve ------------------------------------------


@pytest.mark.parametrize("value", [1, 2, 65535], ids=["one", "two", "max"])
@pytest.mark.parametrize("key", ["valve_1.pulse_trigger", "valve_6.pulse_trigger"], ids=["valve-1", "valve-6"])
@pytest.mark.parametrize("purpose", [P.OPERATOR, P.RECIPE, P.SAFE_STATE], ids=str)
def test_a_pulse_trigger_is_refused_except_for_a_valve_step(purpose: WritePurpose, key: str, value: int) -> None:
    """`set_parameter`, `plc write` and a parameter step cannot start a PLC-timed pulse."""
    error = refused(key, value, purpose)
    assert "PLC-timed pulse" in str(error) and key in str(error)


@pytest.mark.parametrize("value", [1, 40000], ids=["one", "large"])
def test_a_valve_step_triggers_its_pulse(value: int) -> None:
    assert allowed("valve_2.pulse_trigger", value, P.VALVE_STEP) == [value]


@pytest.mark.parametrize("purpose", ORDINARY, ids=str)
def test_cancelling_a_pulse_is_allowed_for_every_purpose(purpose: WritePurpose) -> None:
    """Trigger 0 cancels: a write toward the safe state, never refused by the rules."""
    assert allowed("valve_4.pulse_trigger", 0, purpose) == [0]
    assert is_safe_value(MAP["valve_4.pulse_trigger"], 0) and not is_safe_value(MAP["valve_4.pulse_trigger"], 3)


@pytest.mark.parametrize(("value", "error"), [(0, "below the minimum"), (10001, "above the maximum")], ids=str)
def test_a_pulse_length_outside_the_maps_range_is_refused(value: int, error: str) -> None:
    assert error in str(refused("valve_1.pulse_ms", value, P.RECIPE))


@pytest.mark.parametrize("key", ["exhaust_valve.state", "vacuum_pump.power_on", "chamber_heater.power_on"], ids=str)
def test_other_coils_are_not_pulse_valves(key: str) -> None:
    """The pulse-valve rule is for `valve_N.state` only: an operator may open the exhaust or start the pump."""
    assert allowed(key, True, P.OPERATOR) is True


# --- integers: whole numbers of the register's steps, never rounded ---------------------------------


@pytest.mark.parametrize("purpose", [P.OPERATOR, P.RECIPE], ids=str)
@pytest.mark.parametrize(
    "value", [100.5, 100.25, 10.000_1, 4999.9], ids=["100.5", "100.25", "just-above-a-whole", "4999.9"]
)
def test_an_integer_parameter_refuses_a_fraction(purpose: WritePurpose, value: float) -> None:
    error = refused("chamber_heater.pid_period", value, purpose)
    assert "not a whole value" in str(error)


@pytest.mark.parametrize(("value", "raw"), [(100, 100), (100.0, 100), (10, 10)], ids=["int", "whole-float", "min"])
def test_an_integer_parameter_accepts_a_whole_number(value: float, raw: int) -> None:
    words = allowed("chamber_heater.pid_period", value, P.OPERATOR)
    assert words == [raw, 0]  # int32, low word first


@pytest.mark.parametrize(
    ("value", "raw"), [(12.3, 123), (-0.1, -1 & 0xFFFF), (100.0, 1000)], ids=["12.3", "-0.1", "max"]
)
def test_a_scaled_integer_parameter_accepts_values_on_its_step_grid(value: float, raw: int) -> None:
    assert check_write(SCALED, value, purpose=P.OPERATOR, order=ORDER) == [raw]


@pytest.mark.parametrize("value", [12.34, 0.05, -99.99], ids=["12.34", "half-step", "-99.99"])
def test_a_scaled_integer_parameter_refuses_values_between_its_steps(value: float) -> None:
    error = refused(SCALED.key, value, P.OPERATOR, param=SCALED)
    assert "in steps of 0.1" in str(error)


# --- numbers: finite and of a sane size ---------------------------------------------------------------

NON_FINITE = [float("1e400"), math.inf, -math.inf, math.nan]
NON_FINITE_IDS = ["1e400", "inf", "-inf", "nan"]


@pytest.mark.parametrize("value", NON_FINITE, ids=NON_FINITE_IDS)
@pytest.mark.parametrize(
    ("key", "purpose"),
    [
        ("mfc_1.flow_sp", P.OPERATOR),
        ("mfc_1.flow_sp", P.SAFE_STATE),
        ("chamber_heater.pid_period", P.RECIPE),
        ("chamber_heater.temperature_sp", P.OPERATOR),
        ("valve_1.state", P.VALVE_STEP),
        (WATCHDOG_KEY, P.WATCHDOG),
    ],
    ids=["float-operator", "float-safe-state", "int32-recipe", "setpoint", "valve-step", "watchdog"],
)
def test_non_finite_numbers_are_refused(key: str, purpose: WritePurpose, value: float) -> None:
    refused(key, value, purpose)


@pytest.mark.parametrize(
    "value", [HUGE, -HUGE, 2**1024, 10**20, 1e16], ids=["5001-digits", "-5001-digits", "2^1024", "1e20-int", "1e16"]
)
@pytest.mark.parametrize(
    ("key", "purpose"),
    [
        ("mfc_1.flow_sp", P.OPERATOR),
        ("chamber_heater.pid_period", P.RECIPE),
        ("valve_1.state", P.VALVE_STEP),
        (WATCHDOG_KEY, P.WATCHDOG),
    ],
    ids=["float32", "int32", "valve", "watchdog"],
)
def test_huge_numbers_are_refused_as_validation_errors(key: str, purpose: WritePurpose, value: float) -> None:
    error = refused(key, value, purpose)
    assert len(str(error)) < 200  # the message never quotes a 5,001-digit number


@pytest.mark.parametrize("value", [1e16, -1e16, 10**16], ids=["1e16", "-1e16", "int-1e16"])
def test_a_number_no_register_holds_is_refused_even_without_a_range(value: float) -> None:
    """A float32 without min/max would take 1e16; no register of a real tool holds it (MAX_ABS_VALUE)."""
    unranged = replace(MAP["mfc_1.flow_sp"], min_value=None, max_value=None)
    assert "too large for any register" in str(refused(unranged.key, value, P.OPERATOR, param=unranged))


def test_an_unranged_float_takes_a_large_but_sane_number() -> None:
    unranged = replace(MAP["mfc_1.flow_sp"], min_value=None, max_value=None)
    check_write(unranged, 1e15, purpose=P.OPERATOR, order=ORDER)


# --- types: bools for numbers, numbers for bools, and everything else --------------------------------


@pytest.mark.parametrize("value", [True, False], ids=["true", "false"])
@pytest.mark.parametrize(
    "key", ["mfc_1.flow_sp", "chamber_heater.pid_period", "chamber_heater.temperature_sp"], ids=str
)
def test_a_number_parameter_refuses_a_bool(key: str, value: bool) -> None:
    error = refused(key, value, P.OPERATOR)
    assert "expected a number" in str(error)


@pytest.mark.parametrize("value", [0.5, 2, -1, 1e-9], ids=["0.5", "2", "-1", "tiny"])
@pytest.mark.parametrize(
    ("key", "purpose"),
    [("valve_2.state", P.VALVE_STEP), ("vacuum_pump.power_on", P.OPERATOR)],
    ids=["pulse-valve", "pump"],
)
def test_a_bool_parameter_refuses_numbers_other_than_0_and_1(key: str, purpose: WritePurpose, value: float) -> None:
    error = refused(key, value, purpose)
    assert "expected a boolean" in str(error)


@pytest.mark.parametrize("value", ["1", "true", None, [1], {"v": 1}], ids=["str-1", "str-true", "none", "list", "dict"])
@pytest.mark.parametrize(
    ("key", "purpose"),
    [("mfc_1.flow_sp", P.OPERATOR), ("valve_1.state", P.VALVE_STEP), (WATCHDOG_KEY, P.WATCHDOG)],
    ids=["number", "bool", "watchdog"],
)
def test_values_that_are_neither_numbers_nor_bools_are_refused(key: str, purpose: WritePurpose, value: object) -> None:
    refused(key, value, purpose)


# --- ranges: the borders are in, one step past is out -------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "purpose"),
    [
        ("mfc_1.flow_sp", 0.0, P.RECIPE),
        ("mfc_1.flow_sp", 200.0, P.RECIPE),
        ("chamber_heater.temperature_sp", 400.0, P.OPERATOR),
        ("frontline_heater.temperature_sp", 250.0, P.OPERATOR),
        ("chamber_heater.pid_period", 10, P.OPERATOR),
        ("chamber_heater.pid_period", 5000, P.OPERATOR),
        (WATCHDOG_KEY, 0, P.WATCHDOG),
        (WATCHDOG_KEY, 65535, P.WATCHDOG),
    ],
    ids=["flow-min", "flow-max", "chamber-sp-max", "frontline-sp-max", "pid-min", "pid-max", "wd-0", "wd-65535"],
)
def test_a_value_at_the_border_of_its_range_is_accepted(key: str, value: float, purpose: WritePurpose) -> None:
    allowed(key, value, purpose)


@pytest.mark.parametrize(
    ("key", "value", "purpose", "why"),
    [
        ("mfc_1.flow_sp", -5e-324, P.RECIPE, "below the minimum"),
        ("mfc_1.flow_sp", math.nextafter(200.0, math.inf), P.RECIPE, "above the maximum"),
        ("chamber_heater.temperature_sp", 400.001, P.OPERATOR, "above the maximum"),
        ("frontline_heater.temperature_sp", 250.5, P.OPERATOR, "above the maximum"),
        ("chamber_heater.pid_period", 9, P.OPERATOR, "below the minimum"),
        ("chamber_heater.pid_period", 5001, P.OPERATOR, "above the maximum"),
        (WATCHDOG_KEY, -1, P.WATCHDOG, "below the minimum"),
        (WATCHDOG_KEY, 65536, P.WATCHDOG, "above the maximum"),
    ],
    ids=["flow-below-0", "flow-past-max", "chamber-sp", "frontline-sp", "pid-9", "pid-5001", "wd--1", "wd-65536"],
)
def test_a_value_just_past_its_range_is_refused(key: str, value: float, purpose: WritePurpose, why: str) -> None:
    assert why in str(refused(key, value, purpose))


# --- read-only keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 1, False], ids=["zero", "one", "false"])
@pytest.mark.parametrize(
    "key",
    [
        "pressure_gauge_1.pressure",
        "vacuum_pump.running",
        "valve_1.cycle_count",
        "chamber_heater.temperature",
        "plc.watchdog_tripped",
    ],
    ids=str,
)
@pytest.mark.parametrize("purpose", [P.OPERATOR, P.RECIPE, P.SAFE_STATE], ids=str)
def test_a_read_only_key_is_refused_even_a_safe_value(purpose: WritePurpose, key: str, value: object) -> None:
    assert "read-only" in str(refused(key, value, purpose))


@pytest.mark.parametrize(
    "param",
    [replace(MAP["mfc_1.flow_sp"], write_address=None), replace(MAP["mfc_1.flow_sp"], writable=False)],
    ids=["writable-without-write-address", "write-address-but-not-writable"],
)
def test_either_half_of_writability_missing_is_read_only(param: Parameter) -> None:
    assert "read-only" in str(refused(param.key, 10.0, P.OPERATOR, param=param))


# --- is_safe_value: what a permit never blocks --------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "safe"),
    [
        ("valve_1.state", False, True),
        ("valve_1.state", 0, True),
        ("valve_1.state", 0.0, True),
        ("valve_1.state", True, False),
        ("valve_1.state", 1, False),
        ("mfc_1.flow_sp", 0.0, True),
        ("mfc_1.flow_sp", 0, True),
        ("mfc_1.flow_sp", -0.0, True),
        ("mfc_1.flow_sp", 5e-324, False),
        ("mfc_1.flow_sp", 50.0, False),
        ("mfc_1.flow_sp", math.nan, False),
        ("chamber_heater.temperature_sp", 0.0, True),
        ("chamber_heater.temperature_sp", 150.0, False),
        ("vacuum_pump.power_on", True, False),
        ("mfc_1.flow_sp", "0", False),
        ("valve_1.state", None, False),
    ],
    ids=[
        "valve-false",
        "valve-int-0",
        "valve-float-0",
        "valve-true",
        "valve-int-1",
        "flow-0.0",
        "flow-int-0",
        "flow-minus-0",
        "flow-tiny",
        "flow-50",
        "flow-nan",
        "heater-sp-0",
        "heater-sp-150",
        "pump-on",
        "string-zero",
        "none",
    ],
)
def test_is_safe_value_means_toward_the_safe_state(key: str, value: object, safe: bool) -> None:
    assert is_safe_value(MAP[key], value) is safe
