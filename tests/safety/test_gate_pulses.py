"""The write gate and a PLC-timed pulse's trigger, against the simulator over real Modbus TCP: the trigger counts
as opening its valve — its valve's permits are checked on live values, only the owner triggers, nothing is
written while fenced, and no purpose but a valve step triggers (an operator's `set_parameter` cannot) — while the
cancel (trigger 0) and the coil's close pass whatever the permits say, and a failed cancel hands the machine to
the PLC's watchdog.

What the PLC holds is read from the simulator's own memory (`sim.image`), not through the code under test.
"""

from __future__ import annotations

from typing import Any

import pytest

from agent.errors import InterlockError, PlcError, ValidationError
from agent.plc import PlcDevice, PulseRegisters, RegisterKind, Value, pulse_registers
from agent.plc.sim import AddressFault, Simulator
from agent.safety import InterlockSet, WriteGate, WritePurpose, parse_interlocks
from tests.support.poll import eventually

P = WritePurpose
PRESSURE = "pressure_gauge_1.pressure"
TRIGGER = "valve_1.pulse_trigger"


def at_plc(sim: Simulator, key: str) -> Value:
    return sim.image.get(sim.register_map[key])


def permit(*targets: str) -> InterlockSet:
    rows: list[dict[str, Any]] = [
        {
            "name": "pulse-needs-vacuum",
            "kind": "permit",
            "targets": list(targets),
            "conditions": [{"key": PRESSURE, "op": "lt", "value": 1000}],
        }
    ]
    parsed, problems = parse_interlocks(rows)
    assert problems == []
    return parsed


def valve_1(device: PlcDevice) -> PulseRegisters:
    regs = pulse_registers(1, device.map)
    assert regs is not None
    return regs


@pytest.mark.parametrize("targets", [("valve_*.state",), ("valve_1.pulse_trigger",)], ids=["valve-permit", "own"])
async def test_a_permit_of_the_valve_or_of_the_trigger_refuses_the_trigger(
    simulator: Simulator, device: PlcDevice, targets: tuple[str, ...]
) -> None:
    gate = WriteGate(device, interlocks=permit(*targets))
    await device.write("valve_1.pulse_ms", 50)
    simulator.force(PRESSURE, 5000.0)
    with pytest.raises(InterlockError) as refused:
        await gate.for_run().trigger_pulse(valve_1(device), 1)
    assert refused.value.interlock == "pulse-needs-vacuum" and f"{TRIGGER} ← 1 refused" in str(refused.value)
    assert at_plc(simulator, TRIGGER) == 0 and simulator.pulses.counts["started"] == 0
    simulator.force(PRESSURE, 10.0)  # read live at the next write: the permit passes
    await gate.for_run().trigger_pulse(valve_1(device), 1)
    assert at_plc(simulator, "valve_1.state") is True


async def test_a_cancel_passes_a_failing_permit(simulator: Simulator, device: PlcDevice) -> None:
    gate = WriteGate(device, interlocks=permit("valve_*.state", "valve_*.pulse_trigger"))
    port = gate.for_run()
    await device.write("valve_1.pulse_ms", 5000)
    await port.trigger_pulse(valve_1(device), 1)
    simulator.force(PRESSURE, 5000.0)
    await port.cancel_pulse(valve_1(device))
    assert (at_plc(simulator, TRIGGER), at_plc(simulator, "valve_1.state")) == (0, False)


@pytest.mark.parametrize("purpose", [P.OPERATOR, P.RECIPE], ids=str)
async def test_only_a_valve_step_triggers_a_pulse(simulator: Simulator, device: PlcDevice, purpose: P) -> None:
    """`set_parameter` (operator) and a parameter step (recipe) are refused before anything is sent."""
    gate = WriteGate(device)
    with pytest.raises(ValidationError, match="only a recipe's valve step triggers it"):
        await gate.write(TRIGGER, 1, purpose=purpose)
    assert at_plc(simulator, TRIGGER) == 0 and gate.stats.writes == 0
    assert await gate.write(TRIGGER, 0, purpose=purpose, verify=False) == 0  # cancelling is anyone's


async def test_an_agent_that_does_not_own_the_machine_cannot_trigger(simulator: Simulator, device: PlcDevice) -> None:
    gate = WriteGate(device, may_write=lambda: False)
    with pytest.raises(InterlockError, match="does not own the machine"):
        await gate.for_run().trigger_pulse(valve_1(device), 1)
    assert at_plc(simulator, TRIGGER) == 0
    await gate.for_run().cancel_pulse(valve_1(device))  # toward the safe state: allowed without ownership


async def test_a_fenced_agent_writes_neither_trigger_nor_cancel(simulator: Simulator, device: PlcDevice) -> None:
    gate = WriteGate(device, fenced=lambda: True)
    with pytest.raises(InterlockError, match="another agent owns the machine"):
        await gate.for_run().trigger_pulse(valve_1(device), 1)
    with pytest.raises(InterlockError, match="another agent owns the machine"):
        await gate.for_run().cancel_pulse(valve_1(device))
    assert gate.stats.writes == 0


async def test_a_failed_cancel_still_closes_the_coil_and_hands_over_to_the_watchdog(
    simulator: Simulator, device: PlcDevice
) -> None:
    gate = WriteGate(device)
    port = gate.for_run()
    await device.write("valve_1.pulse_ms", 5000)
    await port.trigger_pulse(valve_1(device), 1)
    trigger_address = simulator.register_map[TRIGGER].address
    simulator.faults.append(AddressFault(RegisterKind.HOLDING, trigger_address))
    with pytest.raises(PlcError):
        await port.cancel_pulse(valve_1(device))
    assert at_plc(simulator, "valve_1.state") is False  # the coil's write went through on its own
    assert gate.safe_state_pending and "valve_1.state" in gate.pending_reason
    simulator.faults.clear()
    await gate.apply_safe_state()
    await eventually(lambda: not gate.safe_state_pending, within=2)
