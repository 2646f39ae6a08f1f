"""The reactor simulator: plausible physics, the watchdog, fault injection, and any Modbus master can use it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from pymodbus.client import ModbusTcpClient

from agent.plc import PlcDevice, RegisterKind, RegisterMap, WordOrder, decode_value, encode_value
from agent.plc.sim import AddressFault, ReactorModel, RegisterImage, Simulator

Connect = Callable[..., Awaitable[PlcDevice]]
MakeSim = Callable[..., Awaitable[Simulator]]


def model(default_map: RegisterMap, **kw: float) -> ReactorModel:
    m = ReactorModel(default_map, RegisterImage(), **kw)
    m.reset()
    return m


def run_for(m: ReactorModel, seconds: float, *, start: float = 0.0, dt: float = 0.05) -> float:
    t = start
    while t < start + seconds:
        t += dt
        m.step(dt, t)
    return t


def test_heater_approaches_its_setpoint_first_order(default_map: RegisterMap) -> None:
    m = model(default_map)
    m.put("chamber_heater.temperature_sp", 200.0)
    m.put("chamber_heater.power_on", True)
    run_for(m, 20.0)  # one time constant: 63 % of the way
    assert m.get("chamber_heater.temperature") == pytest.approx(25 + 0.632 * 175, abs=2.0)
    run_for(m, 100.0, start=20.0)
    assert m.get("chamber_heater.temperature") == pytest.approx(200.0, abs=1.0)


def test_unpowered_heater_stays_near_ambient(default_map: RegisterMap) -> None:
    m = model(default_map)
    m.put("frontline_heater.power_on", False)
    run_for(m, 30.0)
    assert m.get("frontline_heater.temperature") == pytest.approx(25.0, abs=1.0)
    assert m.get("frontline_heater.power") == 0


def test_mfc_follows_its_setpoint_once_n2_is_ready(default_map: RegisterMap) -> None:
    m = model(default_map)
    m.put("mfc_1.flow_sp", 100.0)
    run_for(m, 1.0)
    assert m.get("mfc_1.flow") == pytest.approx(0.0, abs=0.5)  # N2 generator not ready yet
    run_for(m, 4.0, start=1.0)
    assert m.on("n2_generator.ready")
    assert m.get("mfc_1.flow") == pytest.approx(100.0, abs=1.0)


def test_pressure_rises_on_a_pulse_and_the_pump_brings_it_down(default_map: RegisterMap) -> None:
    m = model(default_map)
    t = run_for(m, 5.0)
    base = m.get("pressure_gauge_1.pressure")
    m.put("valve_1.state", True)
    t = run_for(m, 0.5, start=t)
    peak = m.get("pressure_gauge_1.pressure")
    m.put("valve_1.state", False)
    run_for(m, 10.0, start=t)
    assert peak > base + 50
    assert m.get("pressure_gauge_1.pressure") < base + 5
    assert m.get("valve_1.cycle_count") == 1


def test_without_the_pump_the_chamber_leaks_up(default_map: RegisterMap) -> None:
    m = model(default_map)
    m.put("vacuum_pump.power_on", False)
    run_for(m, 10.0)
    assert m.get("pressure_gauge_1.pressure") > 100
    assert not m.on("vacuum_pump.running")


def test_silent_watchdog_forces_the_safe_state(default_map: RegisterMap) -> None:
    m = model(default_map, watchdog_timeout_s=1.0)
    m.put("plc.watchdog", 1)
    m.note_write(0.0)
    m.put("plc.watchdog", 2)
    m.note_write(0.1)
    m.put("valve_3.state", True)
    m.put("mfc_1.flow_sp", 50.0)
    m.step(0.05, 0.5)
    assert m.on("valve_3.state") and not m.watchdog_tripped
    m.step(0.05, 1.2)
    assert m.watchdog_tripped and m.on("plc.watchdog_tripped")
    assert not m.on("valve_3.state") and m.get("mfc_1.flow_sp") == 0.0
    m.put("plc.watchdog", 3)
    m.note_write(1.3)
    m.step(0.05, 1.35)
    assert not m.watchdog_tripped and not m.on("plc.watchdog_tripped")


def test_watchdog_is_not_armed_before_the_agent_writes_it(default_map: RegisterMap) -> None:
    m = model(default_map, watchdog_timeout_s=0.1)
    m.put("valve_1.state", True)
    m.step(0.05, 10.0)
    assert m.on("valve_1.state")


def test_a_forced_value_holds_through_the_physics_until_released(default_map: RegisterMap) -> None:
    m = model(default_map)
    m.force("pressure_gauge_1.pressure", 5000.0)
    assert m.get("pressure_gauge_1.pressure") == 5000.0  # pinned at once, not at the next tick
    t = run_for(m, 3.0)  # the pump would bring 5000 Pa down to base within a few seconds
    assert m.get("pressure_gauge_1.pressure") == 5000.0
    m.note_write(t)
    assert m.get("pressure_gauge_1.pressure") == 5000.0
    m.force("pressure_gauge_1.pressure", None)
    run_for(m, 10.0, start=t)
    assert m.get("pressure_gauge_1.pressure") < 100  # released: the pump takes over again


def test_a_forced_output_overrides_writes_from_the_modbus_side(default_map: RegisterMap) -> None:
    """A stuck-open valve: what the master writes does not move it."""
    m = model(default_map)
    m.force("valve_2.state", True)
    m.put("valve_2.state", False)  # a write request lands in the image …
    m.note_write(0.0)  # … and the model re-pins the forced value right after it
    assert m.on("valve_2.state")


def test_forcing_a_key_the_map_does_not_have_is_an_error(default_map: RegisterMap) -> None:
    m = model(default_map)
    with pytest.raises(KeyError, match=r"nope\.pressure"):
        m.force("nope.pressure", 1.0)


async def test_a_forced_value_is_what_a_master_reads_over_tcp(simulator: Simulator, device: PlcDevice) -> None:
    simulator.force("pressure_gauge_1.pressure", 5000.0)
    await asyncio.sleep(0.2)  # several physics ticks
    assert (await device.read(["pressure_gauge_1.pressure"])).values["pressure_gauge_1.pressure"] == 5000.0
    simulator.force("pressure_gauge_1.pressure", None)
    await asyncio.sleep(0.2)
    assert (await device.read(["pressure_gauge_1.pressure"])).values["pressure_gauge_1.pressure"] != 5000.0


async def test_live_values_change_over_tcp(make_simulator: MakeSim, connect: Connect) -> None:
    sim = await make_simulator()
    device: PlcDevice = await connect(sim)
    await device.write("chamber_heater.power_on", True)
    await device.write("chamber_heater.temperature_sp", 300.0)
    first = (await device.read_all()).values["chamber_heater.temperature"]
    await asyncio.sleep(0.5)
    second = (await device.read_all()).values["chamber_heater.temperature"]
    assert second > first


async def test_valve_edges_are_timed_at_the_request(simulator: Simulator, device: PlcDevice) -> None:
    before = time.monotonic()
    await device.write("valve_4.state", True, verify=False)
    await device.write("valve_4.state", False, verify=False)
    events = [e for e in simulator.valve_events if e.valve == 4]
    assert [e.open for e in events] == [True, False]
    assert before <= events[0].t <= events[1].t <= time.monotonic()


async def test_a_foreign_modbus_master_can_read_and_write(simulator: Simulator) -> None:
    """pymodbus' own synchronous client, knowing nothing of our code, talks to the simulator."""
    flow_sp = simulator.register_map["mfc_1.flow_sp"]

    def exchange() -> tuple[float, list[bool]]:
        client = ModbusTcpClient(simulator.host, port=simulator.port, timeout=2)
        assert client.connect()
        try:
            words = encode_value(flow_sp, 42.5, WordOrder.LITTLE)
            assert not client.write_registers(flow_sp.address, words, device_id=1).isError()  # type: ignore[arg-type]
            back = client.read_holding_registers(flow_sp.address, count=2, device_id=1).registers
            assert not client.write_coil(15, True, device_id=1).isError()
            coils = client.read_coils(15, count=6, device_id=1).bits[:6]
        finally:
            client.close()
        return decode_value(flow_sp, back, WordOrder.LITTLE), coils  # type: ignore[return-value]

    value, coils = await asyncio.to_thread(exchange)
    assert value == pytest.approx(42.5)
    assert coils == [True, False, False, False, False, False]
    assert simulator.image.get(simulator.register_map["valve_1.state"]) is True


async def test_exception_codes_can_be_injected(simulator: Simulator) -> None:
    simulator.faults.append(AddressFault(RegisterKind.HOLDING, 2086, code=4))

    def read() -> int:
        client = ModbusTcpClient(simulator.host, port=simulator.port, timeout=2)
        assert client.connect()
        try:
            return client.read_holding_registers(2080, count=10, device_id=1).exception_code
        finally:
            client.close()

    assert await asyncio.to_thread(read) == 4


async def test_addresses_beyond_the_memory_are_illegal(simulator: Simulator) -> None:
    def read() -> int:
        client = ModbusTcpClient(simulator.host, port=simulator.port, timeout=2)
        assert client.connect()
        try:
            return client.read_input_registers(60000, count=2, device_id=1).exception_code
        finally:
            client.close()

    assert await asyncio.to_thread(read) == 2


async def test_dropped_connections_are_reestablished(simulator: Simulator, device: PlcDevice) -> None:
    simulator.drop_connections()
    await asyncio.sleep(0.05)
    assert await device.connection.wait_connected(5)
    assert (await device.read_all()).ok
