"""The write gate against the simulator over real Modbus TCP: permits read live values just before the write,
closing is never blocked, authority and an unknown interlock set stop every non-safe write, a run writes through
the map it started with, the safe state covers every map in play, and a failed close hands the machine to the
PLC's watchdog (no kicks) until the safe state is confirmed.

What the PLC holds is read from the simulator's own memory (`sim.image`), not through the code under test.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from agent.errors import InterlockError, PlcError, ValidationError
from agent.parameters import InterlockRows
from agent.plc import PlcDevice, RegisterKind, RegisterMap, Value
from agent.plc.sim import AddressFault, Simulator
from agent.safety import InterlockGuard, InterlockSet, MachineFence, Watchdog, WriteGate, WritePurpose, parse_interlocks

Connect = Callable[..., Awaitable[PlcDevice]]
P = WritePurpose
PRESSURE = "pressure_gauge_1.pressure"
RULE = "pulse-needs-vacuum"
VALVE_1_COIL, MOVED_COIL = 15, 25  # valve 1 in the default map, and where an edited map puts it


def interlocks(*rows: dict[str, Any]) -> InterlockSet:
    parsed, problems = parse_interlocks(rows)
    assert problems == []
    return parsed


def vacuum_permit(key: str = PRESSURE, targets: tuple[str, ...] = ("valve_*.state",)) -> dict[str, Any]:
    return {
        "name": RULE,
        "kind": "permit",
        "targets": list(targets),
        "conditions": [{"key": key, "op": "lt", "value": 1000}],
    }


FLOW_PERMIT = {
    "name": "flow-needs-n2",
    "kind": "permit",
    "targets": ["mfc_1.flow_sp"],
    "conditions": [{"key": "n2_generator.fault", "op": "eq", "value": False}],
}


def coil(sim: Simulator, address: int) -> bool:
    return sim.image.bits[RegisterKind.COIL][address]


def at_plc(sim: Simulator, key: str) -> Value:
    return sim.image.get(sim.register_map[key])


def pending(gate: WriteGate) -> bool:
    """Read through a call: the gate changes the flag behind an await, where a type checker cannot see it."""
    return gate.safe_state_pending


def with_valve_1_at(register_map: RegisterMap, address: int) -> RegisterMap:
    """The dashboard moved valve 1 to another coil."""
    return RegisterMap.build(
        replace(p, address=address, write_address=address) if p.key == "valve_1.state" else p for p in register_map
    )


# --- permits: live values, read just before the write ---------------------------------------------------


async def test_a_permit_blocks_opening_a_valve_while_the_chamber_pressure_is_high(
    simulator: Simulator, device: PlcDevice
) -> None:
    gate = WriteGate(device, interlocks=interlocks(vacuum_permit()))
    simulator.force(PRESSURE, 5000.0)
    with pytest.raises(InterlockError) as refused:
        await gate.write("valve_1.state", True, purpose=P.VALVE_STEP)
    assert refused.value.interlock == RULE
    assert str(refused.value) == (
        f"interlock '{RULE}': {PRESSURE} is 5000 (must be < 1000): valve_1.state ← true refused"
    )
    assert coil(simulator, VALVE_1_COIL) is False
    assert (gate.stats.refused, gate.stats.interlock_blocks, gate.stats.writes) == (1, 1, 0)
    assert gate.stats.last_refusal == str(refused.value)


async def test_the_same_permit_lets_the_valve_open_once_the_pressure_is_low(
    simulator: Simulator, device: PlcDevice
) -> None:
    gate = WriteGate(device, interlocks=interlocks(vacuum_permit()))
    simulator.force(PRESSURE, 5000.0)
    with pytest.raises(InterlockError):
        await gate.write("valve_1.state", True, purpose=P.VALVE_STEP)
    simulator.force(PRESSURE, 999.0)  # no frame, no cache: the next write reads it
    assert await gate.write("valve_1.state", True, purpose=P.VALVE_STEP) is True
    assert coil(simulator, VALVE_1_COIL) is True
    assert gate.stats.writes == 1


async def test_a_permit_guards_only_its_targets(simulator: Simulator, device: PlcDevice) -> None:
    gate = WriteGate(device, interlocks=interlocks(vacuum_permit(targets=("valve_2.state",))))
    simulator.force(PRESSURE, 5000.0)
    await gate.write("valve_1.state", True, purpose=P.VALVE_STEP)
    with pytest.raises(InterlockError):
        await gate.write("valve_2.state", True, purpose=P.VALVE_STEP)
    assert (coil(simulator, VALVE_1_COIL), coil(simulator, VALVE_1_COIL + 1)) == (True, False)


@pytest.mark.parametrize(
    ("key", "value", "purpose"),
    [
        ("valve_1.state", False, P.VALVE_STEP),
        ("valve_1.state", False, P.OPERATOR),
        ("valve_1.state", 0, P.OPERATOR),
        ("valve_1.state", False, P.RECIPE),
        ("valve_1.state", False, P.SAFE_STATE),
    ],
    ids=["valve-step", "operator", "operator-int-0", "recipe", "safe-state"],
)
async def test_closing_a_valve_is_never_blocked(
    simulator: Simulator, device: PlcDevice, key: str, value: object, purpose: WritePurpose
) -> None:
    gate = WriteGate(device, interlocks=interlocks(vacuum_permit()))
    await gate.write(key, True, purpose=P.VALVE_STEP)  # opened while the chamber was pumped
    simulator.force(PRESSURE, 5000.0)
    await gate.write(key, value, purpose=purpose)
    assert coil(simulator, VALVE_1_COIL) is False


async def test_a_flow_setpoint_of_zero_is_never_blocked_but_a_flow_is(simulator: Simulator, device: PlcDevice) -> None:
    gate = WriteGate(device, interlocks=interlocks(FLOW_PERMIT))
    await gate.write("mfc_1.flow_sp", 50.0, purpose=P.RECIPE)
    simulator.force("n2_generator.fault", True)
    with pytest.raises(InterlockError, match=re.escape("n2_generator.fault is true")):
        await gate.write("mfc_1.flow_sp", 20.0, purpose=P.RECIPE)
    assert at_plc(simulator, "mfc_1.flow_sp") == 50.0
    await gate.write("mfc_1.flow_sp", 0.0, purpose=P.RECIPE)
    assert at_plc(simulator, "mfc_1.flow_sp") == 0.0


async def test_a_permit_on_a_key_the_map_does_not_have_blocks(simulator: Simulator, device: PlcDevice) -> None:
    gate = WriteGate(device, interlocks=interlocks(vacuum_permit(key="chamber_gauge.pressure")))
    with pytest.raises(InterlockError, match=re.escape("chamber_gauge.pressure is unreadable")) as refused:
        await gate.write("valve_1.state", True, purpose=P.VALVE_STEP)
    assert refused.value.interlock == RULE
    assert coil(simulator, VALVE_1_COIL) is False


async def test_a_permit_on_a_gauge_that_cannot_be_read_blocks(simulator: Simulator, device: PlcDevice) -> None:
    gauge = simulator.register_map[PRESSURE]
    simulator.faults.append(AddressFault(RegisterKind.INPUT, gauge.address, gauge.width))
    gate = WriteGate(device, interlocks=interlocks(vacuum_permit()))
    with pytest.raises(InterlockError, match=re.escape(f"{PRESSURE} is unreadable")):
        await gate.write("valve_1.state", True, purpose=P.VALVE_STEP)
    assert coil(simulator, VALVE_1_COIL) is False


# --- authority, and an interlock set that could not be loaded -------------------------------------------

NON_SAFE = [
    ("valve_1.state", True, P.VALVE_STEP),
    ("mfc_1.flow_sp", 20.0, P.RECIPE),
    ("chamber_heater.temperature_sp", 180.0, P.OPERATOR),
    ("vacuum_pump.power_on", True, P.OPERATOR),
]
NON_SAFE_IDS = ["open-valve", "flow", "heater-setpoint", "pump-on"]
SAFE = [
    ("valve_1.state", False, P.OPERATOR),
    ("valve_2.state", 0, P.RECIPE),
    ("mfc_1.flow_sp", 0.0, P.RECIPE),
    ("chamber_heater.temperature_sp", 0.0, P.OPERATOR),
    ("vacuum_pump.power_on", False, P.SAFE_STATE),
]
SAFE_IDS = ["close-valve", "close-valve-int", "flow-zero", "heater-zero", "pump-off"]


@pytest.mark.parametrize(("key", "value", "purpose"), NON_SAFE, ids=NON_SAFE_IDS)
async def test_an_agent_that_does_not_own_the_machine_moves_nothing_away_from_safe(
    simulator: Simulator, device: PlcDevice, key: str, value: object, purpose: WritePurpose
) -> None:
    gate = WriteGate(device, may_write=lambda: False)
    before = at_plc(simulator, key)
    with pytest.raises(InterlockError, match="does not own the machine"):
        await gate.write(key, value, purpose=purpose)
    assert at_plc(simulator, key) == before


@pytest.mark.parametrize(("key", "value", "purpose"), SAFE, ids=SAFE_IDS)
async def test_an_agent_that_does_not_own_the_machine_still_brings_it_to_safe(
    simulator: Simulator, device: PlcDevice, key: str, value: object, purpose: WritePurpose
) -> None:
    owner = True
    gate = WriteGate(device, may_write=lambda: owner)
    if isinstance(value, bool):
        await gate.write(key, True, purpose=P.VALVE_STEP if key.startswith("valve_") else P.OPERATOR)
    owner = False
    await gate.write(key, value, purpose=purpose)
    assert at_plc(simulator, key) == value


async def test_a_non_owner_does_not_kick_the_watchdog_but_applies_the_safe_state(
    simulator: Simulator, device: PlcDevice
) -> None:
    owner = True
    gate = WriteGate(device, may_write=lambda: owner)
    await gate.write("valve_3.state", True, purpose=P.VALVE_STEP)
    owner = False
    with pytest.raises(InterlockError):
        await gate.kick_watchdog(5)
    assert at_plc(simulator, "plc.watchdog") == 0
    assert (await gate.apply_safe_state()).ok
    assert coil(simulator, 17) is False


@pytest.mark.parametrize(("key", "value", "purpose"), NON_SAFE, ids=NON_SAFE_IDS)
async def test_with_the_interlocks_unknown_every_non_safe_write_is_refused(
    simulator: Simulator, device: PlcDevice, key: str, value: object, purpose: WritePurpose
) -> None:
    gate = WriteGate(device)
    gate.blocked_reason = "interlocks unknown: Supabase unreachable and no cache"
    before = at_plc(simulator, key)
    with pytest.raises(InterlockError, match="interlocks unknown: Supabase unreachable and no cache"):
        await gate.write(key, value, purpose=purpose)
    assert at_plc(simulator, key) == before


@pytest.mark.parametrize(("key", "value", "purpose"), SAFE, ids=SAFE_IDS)
async def test_with_the_interlocks_unknown_safe_writes_pass(
    simulator: Simulator, device: PlcDevice, key: str, value: object, purpose: WritePurpose
) -> None:
    gate = WriteGate(device)
    gate.blocked_reason = "interlocks unknown"
    await gate.write(key, value, purpose=purpose)
    assert at_plc(simulator, key) == value


async def test_with_the_interlocks_unknown_the_watchdog_still_kicks(simulator: Simulator, device: PlcDevice) -> None:
    """Stopping the kicks would make the PLC trip a machine that is idle and safe."""
    gate = WriteGate(device)
    gate.blocked_reason = "interlocks unknown"
    await gate.kick_watchdog(9)
    assert at_plc(simulator, "plc.watchdog") == 9


async def test_a_set_with_a_bad_row_is_never_used(simulator: Simulator, device: PlcDevice) -> None:
    """`InterlockGuard` keeps every guarded write blocked until a whole set loads, then keeps the last good
    set when an edit breaks a row."""
    gate = WriteGate(device)
    guard = InterlockGuard(gate)
    bad = {"name": "typo", "kind": "permit", "targets": ["valve_*.state"], "conditions": [{"key": PRESSURE, "op": "<"}]}
    guard.offer(InterlockRows([vacuum_permit(), bad], "database"))
    assert guard.problem is not None and "typo" in guard.problem
    with pytest.raises(InterlockError, match="interlocks refused"):
        await gate.write("chamber_heater.temperature_sp", 180.0, purpose=P.OPERATOR)
    guard.offer(InterlockRows([vacuum_permit()], "database"))
    assert gate.blocked_reason is None and len(gate.interlocks) == 1
    simulator.force(PRESSURE, 5000.0)
    guard.offer(InterlockRows([bad], "database"))  # an edit breaks the set: the last good one stays
    assert gate.blocked_reason is None and [i.name for i in gate.interlocks.interlocks] == [RULE]
    with pytest.raises(InterlockError, match=RULE):
        await gate.write("valve_1.state", True, purpose=P.VALVE_STEP)


# --- static rules on the way to the PLC -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "purpose"),
    [
        ("valve_1.state", True, P.OPERATOR),
        ("plc.watchdog", 3, P.OPERATOR),
        ("chamber_heater.pid_period", 100.5, P.OPERATOR),
        ("mfc_1.flow_sp", float("1e400"), P.RECIPE),
        ("mfc_1.flow_sp", 10**5000, P.RECIPE),
        ("nope.state", True, P.OPERATOR),
    ],
    ids=["operator-opens-pulse-valve", "operator-writes-watchdog", "fraction-for-int", "inf", "5001-digits", "unknown"],
)
async def test_a_static_rule_refuses_before_any_request(
    simulator: Simulator, device: PlcDevice, key: str, value: object, purpose: WritePurpose
) -> None:
    gate = WriteGate(device)
    requests = simulator.requests
    with pytest.raises(ValidationError):
        await gate.write(key, value, purpose=purpose)
    assert simulator.requests == requests
    assert gate.stats.refused == 1


# --- a run owns its map -------------------------------------------------------------------------------------


async def test_a_run_keeps_writing_the_coils_of_the_map_it_started_with(
    simulator: Simulator, device: PlcDevice
) -> None:
    gate = WriteGate(device)
    port = gate.for_run()
    device.set_map(with_valve_1_at(device.map, MOVED_COIL))  # the dashboard edited the map mid-run
    await port.open_valve("valve_1.state")
    assert (coil(simulator, VALVE_1_COIL), coil(simulator, MOVED_COIL)) == (True, False)
    await port.close_valve("valve_1.state")
    assert coil(simulator, VALVE_1_COIL) is False
    await gate.write("valve_1.state", True, purpose=P.VALVE_STEP)  # outside the run: the map in use
    assert coil(simulator, MOVED_COIL) is True


async def test_the_safe_state_closes_a_valve_at_both_coils_two_maps_give_it(
    simulator: Simulator, device: PlcDevice
) -> None:
    old = device.map
    gate = WriteGate(device)
    await gate.write("valve_1.state", True, purpose=P.VALVE_STEP)
    device.set_map(with_valve_1_at(old, MOVED_COIL))
    await gate.write("valve_1.state", True, purpose=P.VALVE_STEP)
    assert (coil(simulator, VALVE_1_COIL), coil(simulator, MOVED_COIL)) == (True, True)
    writes = gate.stats.writes
    result = await gate.apply_safe_state([old])
    assert result.ok and "valve_1.state" in result.done
    assert (coil(simulator, VALVE_1_COIL), coil(simulator, MOVED_COIL)) == (False, False)
    # 6 pulse triggers + 6 valves + flow of the old map, valve 1 again at its new coil only
    assert gate.stats.writes - writes == 14


async def test_a_remembered_map_is_in_every_safe_state_until_one_is_confirmed(
    simulator: Simulator, device: PlcDevice
) -> None:
    old = device.map
    gate = WriteGate(device)
    await gate.write("valve_1.state", True, purpose=P.VALVE_STEP)
    gate.remember_map(old)  # what MapGuard does when it swaps the map
    device.set_map(with_valve_1_at(old, MOVED_COIL))
    assert (await gate.apply_safe_state()).ok
    assert coil(simulator, VALVE_1_COIL) is False


async def test_a_run_started_with_an_explicit_map_writes_that_map(simulator: Simulator, device: PlcDevice) -> None:
    old = device.map
    device.set_map(with_valve_1_at(old, MOVED_COIL))
    port = WriteGate(device).for_run(old)
    await port.open_valve("valve_1.state")
    assert (coil(simulator, VALVE_1_COIL), coil(simulator, MOVED_COIL)) == (True, False)


async def test_a_runs_safe_state_covers_its_map_even_after_the_remembered_maps_were_cleared(
    simulator: Simulator, device: PlcDevice
) -> None:
    gate = WriteGate(device)
    port = gate.for_run()
    assert (await gate.apply_safe_state()).ok  # confirmed: the gate forgets the maps it remembered
    await port.open_valve("valve_1.state")
    device.set_map(with_valve_1_at(device.map, MOVED_COIL))
    assert (await port.safe_state()).ok
    assert coil(simulator, VALVE_1_COIL) is False


async def test_a_run_ports_safe_state_covers_its_own_map(simulator: Simulator, device: PlcDevice) -> None:
    gate = WriteGate(device)
    port = gate.for_run()
    await port.open_valve("valve_1.state")
    device.set_map(with_valve_1_at(device.map, MOVED_COIL))
    assert (await port.safe_state()).ok
    assert coil(simulator, VALVE_1_COIL) is False


# --- a failed close hands the machine to the PLC's watchdog --------------------------------------------------


async def test_a_failed_close_stops_the_watchdog_kicks_until_the_safe_state_is_confirmed(
    simulator: Simulator, device: PlcDevice
) -> None:
    gate = WriteGate(device)
    fence = MachineFence(gate, device, identity="test-blue")
    watchdog = Watchdog(gate, device.connection, fence, timeout_s=1.0, wants=lambda: True)
    port = gate.for_run()
    await watchdog.tick()
    assert (at_plc(simulator, "plc.watchdog"), watchdog.kicks) == (1, 1)  # kicks while all is well
    await port.open_valve("valve_1.state")

    simulator.faults.append(AddressFault(RegisterKind.COIL, VALVE_1_COIL))  # the coil write is refused
    with pytest.raises(PlcError):
        await port.close_valve("valve_1.state")
    assert gate.safe_state_pending and "closing valve_1.state failed" in gate.pending_reason
    assert coil(simulator, VALVE_1_COIL) is True

    for _ in range(3):
        await watchdog.tick()  # re-applies the safe state, which fails again: no kick
        await watchdog.kick()  # nor by a direct kick
    assert (at_plc(simulator, "plc.watchdog"), watchdog.kicks) == (1, 1)
    assert pending(gate) and coil(simulator, VALVE_1_COIL) is True

    simulator.faults.clear()
    await watchdog.tick()  # the safe state goes through: confirmed, and the kicks resume
    assert not pending(gate) and gate.pending_reason == ""
    assert coil(simulator, VALVE_1_COIL) is False
    assert (at_plc(simulator, "plc.watchdog"), watchdog.kicks) == (2, 2)


async def test_a_failed_safe_state_write_is_reported_and_leaves_the_safe_state_pending(
    simulator: Simulator, device: PlcDevice
) -> None:
    gate = WriteGate(device)
    simulator.faults.append(AddressFault(RegisterKind.HOLDING, simulator.register_map["mfc_1.flow_sp"].address, 2))
    result = await gate.apply_safe_state()
    assert not result.ok and [key for key, _ in result.errors] == ["mfc_1.flow_sp"]
    assert "valve_6.state" in result.done  # one failure does not stop the other writes
    assert gate.safe_state_pending and "1 of 13 writes failed" in gate.pending_reason  # 6 triggers, 6 valves, MFC
