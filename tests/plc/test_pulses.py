"""Which valves the PLC times (`pulse_registers`), the trigger counter and the trigger's key rules, as tables."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agent.plc import (
    DataType,
    PulseRegisters,
    RegisterKind,
    RegisterMap,
    is_pulse_trigger,
    load_default_map,
    next_trigger,
    pulse_registers,
    valve_of_trigger,
)

MAP = load_default_map()


def edited(key: str, **changes: object) -> RegisterMap:
    return RegisterMap.build(replace(p, **changes) if p.key == key else p for p in MAP)  # type: ignore[arg-type]


def without(key: str) -> RegisterMap:
    return RegisterMap.build(p for p in MAP if p.key != key)


def test_the_reference_map_declares_a_pulse_timer_for_each_of_its_six_valves() -> None:
    assert pulse_registers(3, MAP) == PulseRegisters(
        valve=3,
        duration="valve_3.pulse_ms",
        trigger="valve_3.pulse_trigger",
        done="valve_3.pulse_done",
        status="valve_3.pulse_status",
        measured="valve_3.pulse_measured_us",
    )
    assert [pulse_registers(n, MAP) is not None for n in range(1, 8)] == [True] * 6 + [False]


def test_one_valves_feedback_is_contiguous_so_it_reads_in_one_request() -> None:
    regs = pulse_registers(1, MAP)
    assert regs is not None
    addresses = [MAP[k].address for k in regs.feedback]
    assert addresses == [addresses[0], addresses[0] + 1, addresses[0] + 2]


@pytest.mark.parametrize(
    "register_map",
    [
        without("valve_1.pulse_ms"),
        without("valve_1.pulse_trigger"),
        without("valve_1.pulse_done"),
        without("valve_1.pulse_status"),
        without("valve_1.pulse_measured_us"),
        edited("valve_1.pulse_trigger", writable=False, write_address=None),
        edited("valve_1.pulse_ms", writable=False, write_address=None),
        edited("valve_1.pulse_done", register=RegisterKind.HOLDING, address=2600),
        edited("valve_1.pulse_trigger", data_type=DataType.INT16),
        edited("valve_1.pulse_measured_us", data_type=DataType.FLOAT32),
    ],
    ids=[
        "no-duration",
        "no-trigger",
        "no-done",
        "no-status",
        "no-measured",
        "read-only-trigger",
        "read-only-duration",
        "done-in-holding",
        "signed-trigger",
        "float-measured",
    ],
)
def test_a_half_declared_timer_is_no_timer(register_map: RegisterMap) -> None:
    """The valve falls back to agent-timed pulses; the other valves keep theirs."""
    assert pulse_registers(1, register_map) is None
    assert pulse_registers(2, register_map) is not None


@pytest.mark.parametrize(
    ("current", "done", "expected"),
    [
        (0, 0, 1),
        (1, 1, 2),
        (41, 41, 42),
        (65534, 65534, 65535),
        (65535, 65535, 1),
        (0, 1, 2),
        (0, 65535, 1),
        (65535, 1, 2),
        (7, 3, 8),
    ],
    ids=[
        "first",
        "after-a-done-pulse",
        "any",
        "to-max",
        "wraps-past-zero",
        "after-a-cancel-the-stale-ack-is-skipped",
        "after-a-cancel-at-max",
        "wraps-onto-the-stale-ack",
        "an-older-ack",
    ],
)
def test_the_next_trigger_is_new_to_the_plc_and_never_zero(current: int, done: int, expected: int) -> None:
    assert next_trigger(current, done) == expected
    assert expected not in (0, current, done)


@pytest.mark.parametrize(
    ("key", "valve"),
    [
        ("valve_1.pulse_trigger", "valve_1.state"),
        ("valve_12.pulse_trigger", "valve_12.state"),
        ("valve_1.pulse_ms", None),
        ("valve_1.state", None),
        ("exhaust_valve.pulse_trigger", None),
        ("valve_x.pulse_trigger", None),
    ],
    ids=["valve-1", "valve-12", "duration", "coil", "not-a-pulse-valve", "not-a-number"],
)
def test_a_trigger_names_the_valve_it_opens(key: str, valve: str | None) -> None:
    assert valve_of_trigger(key) == valve
    assert is_pulse_trigger(key) is (valve is not None)
