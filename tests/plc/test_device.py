"""PlcDevice over real Modbus TCP against the simulator: decoding, isolation, outages, validated writes."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable

import pytest

from agent.errors import PlcConnectionError, PlcError, UnknownParameter, ValidationError, WriteVerifyError
from agent.plc import DataType, Parameter, PlcDevice, RegisterKind, RegisterMap, WordOrder
from agent.plc.sim import AddressFault, Simulator

Connect = Callable[..., Awaitable[PlcDevice]]
MakeSim = Callable[..., Awaitable[Simulator]]


def expected_address_value(p: Parameter, order: WordOrder) -> object:
    """What a parameter must read in address-as-value mode, computed without the agent's codec."""
    if p.register is RegisterKind.COIL:
        return p.address % 2 == 1
    if p.register is RegisterKind.DISCRETE_INPUT:
        return p.address % 3 == 0
    word = (lambda a: a) if p.register is RegisterKind.HOLDING else (lambda a: 0xFFFF - a)
    first, second = word(p.address), word(p.address + 1)
    hi, lo = (first, second) if order is WordOrder.BIG else (second, first)
    fmt = {DataType.INT32: ">i", DataType.UINT32: ">I", DataType.FLOAT32: ">f"}
    if p.data_type in fmt:
        raw = struct.unpack(fmt[p.data_type], struct.pack(">HH", hi, lo))[0]
    elif p.data_type is DataType.INT16:
        raw = struct.unpack(">h", struct.pack(">H", first))[0]
    elif p.data_type is DataType.BOOL:
        return first != 0
    else:
        raw = first
    return raw * p.scale + p.offset


@pytest.mark.parametrize("order", list(WordOrder))
async def test_every_parameter_decodes_right(
    make_simulator: MakeSim, connect: Connect, default_map: RegisterMap, order: WordOrder
) -> None:
    sim = await make_simulator(address_as_value=True, word_order=order)
    device = await connect(sim, word_order=order)
    frame = await device.read_all()
    assert frame.ok and frame.requests == len(device.plan)
    for p in default_map:
        expected = expected_address_value(p, order)
        assert frame.values[p.key] == pytest.approx(expected, nan_ok=True), p.key


async def test_each_table_uses_its_own_function_code(make_simulator: MakeSim, connect: Connect) -> None:
    """Same address in the four tables, four different answers (upstream read inputs with FC3)."""
    m = RegisterMap.build(
        [
            Parameter("h", "c", DataType.UINT16, RegisterKind.HOLDING, 300),
            Parameter("i", "c", DataType.UINT16, RegisterKind.INPUT, 300),
            Parameter("c", "c", DataType.BOOL, RegisterKind.COIL, 301),
            Parameter("d", "c", DataType.BOOL, RegisterKind.DISCRETE_INPUT, 301),
        ]
    )
    device = await connect(await make_simulator(m, address_as_value=True))
    assert (await device.read_all()).values == {"c": True, "d": False, "h": 300, "i": 0xFFFF - 300}


async def test_batch_of_coils_reads_each_bit(make_simulator: MakeSim, connect: Connect) -> None:
    """Upstream read coils in batch mode as all False."""
    m = RegisterMap.build([Parameter(f"c{a}", "c", DataType.BOOL, RegisterKind.COIL, a) for a in range(0, 40)])
    device = await connect(await make_simulator(m, address_as_value=True))
    frame = await device.read_all()
    assert frame.requests == 1
    assert [frame.values[f"c{a}"] for a in range(40)] == [a % 2 == 1 for a in range(40)]


async def test_a_refused_address_blanks_only_its_keys(simulator: Simulator, device: PlcDevice) -> None:
    bad = device.map["chamber_heater.ki"]
    simulator.faults.append(AddressFault(RegisterKind.HOLDING, bad.address))
    first = await device.read_all()
    assert first.failed_keys == ["chamber_heater.ki"]
    assert first.values["chamber_heater.ki"] is None
    assert first.values["chamber_heater.kp"] == pytest.approx(12.0)
    assert all(v is not None for k, v in first.values.items() if k != "chamber_heater.ki")
    second = await device.read_all()
    assert second.failed_keys == ["chamber_heater.ki"]
    assert second.requests < first.requests  # the split is remembered, no repeated bisection


async def test_a_refused_block_recovers_when_the_fault_clears(simulator: Simulator, device: PlcDevice) -> None:
    simulator.faults.append(AddressFault(RegisterKind.INPUT, device.map["mfc_1.flow"].address, code=4))
    assert (await device.read_all()).failed_keys == ["mfc_1.flow"]
    simulator.faults.clear()
    assert (await device.read_all()).ok


async def test_unplugged_plc_gives_nulls_then_recovers(simulator: Simulator, device: PlcDevice) -> None:
    assert (await device.read_all()).ok
    await simulator.unplug()
    frame = await device.read_all()
    assert set(frame.failed_keys) == set(device.map.keys())
    assert all(v is None for v in frame.values.values())  # never old values
    await simulator.replug()
    assert await device.connection.wait_connected(5)
    assert (await device.read_all()).ok


async def test_reads_while_down_fail_fast(simulator: Simulator, device: PlcDevice) -> None:
    await simulator.unplug()
    await device.read_all()
    started = asyncio.get_running_loop().time()
    frame = await device.read_all()
    assert not frame.ok
    assert asyncio.get_running_loop().time() - started < 0.1


async def test_slow_replies_time_out_into_nulls(simulator: Simulator, device: PlcDevice) -> None:
    simulator.delay_s = 2.0
    frame = await device.read_all()
    assert not frame.ok and all(v is None for v in frame.values.values())
    simulator.delay_s = 0.0
    assert await device.connection.wait_connected(5)
    assert (await device.read_all()).ok


async def test_read_by_keys(device: PlcDevice) -> None:
    frame = await device.read(["mfc_1.flow_sp", "valve_3.state"])
    assert frame.values == {"valve_3.state": False, "mfc_1.flow_sp": 0.0}


async def test_write_is_read_back(simulator: Simulator, device: PlcDevice) -> None:
    assert await device.write("mfc_1.flow_sp", 120.5) == pytest.approx(120.5)
    assert await device.write("chamber_heater.pid_period", 250) == 250
    assert await device.write("valve_2.state", True) is True
    assert simulator.image.get(device.map["valve_2.state"]) is True
    assert (await device.read(["chamber_heater.pid_period"])).values["chamber_heater.pid_period"] == 250


@pytest.mark.parametrize(
    ("key", "value", "error", "fragment"),
    [
        ("mfc_1.flow_sp", 250.0, ValidationError, "above the maximum 200 sccm"),
        ("mfc_1.flow_sp", -1, ValidationError, "below the minimum 0 sccm"),
        ("mfc_1.flow_sp", float("nan"), ValidationError, "must be finite"),
        ("mfc_1.flow_sp", "fast", ValidationError, "expected a number"),
        ("pressure_gauge_1.pressure", 10.0, ValidationError, "read-only"),
        ("valve_1.state", 5, ValidationError, "expected a boolean"),
        ("chamber_heater.pid_period", 1e12, ValidationError, "above the maximum"),
        ("no.such_key", 1, UnknownParameter, "unknown parameter"),
    ],
    ids=["above-max", "below-min", "nan", "wrong-type", "read-only", "bool-not-bool", "int32-range", "unknown"],
)
async def test_invalid_writes_never_reach_the_plc(
    simulator: Simulator, device: PlcDevice, key: str, value: object, error: type[Exception], fragment: str
) -> None:
    before = simulator.requests
    with pytest.raises(error, match=fragment):
        await device.write(key, value)
    assert simulator.requests == before


async def test_write_that_does_not_stick_is_reported(make_simulator: MakeSim, connect: Connect) -> None:
    sim = await make_simulator(watchdog_timeout_s=0.1)
    device = await connect(sim)
    await device.write("plc.watchdog", 1)
    await device.write("plc.watchdog", 2)  # armed
    await asyncio.sleep(0.4)  # ... and then silent: the PLC forces its safe state
    with pytest.raises(WriteVerifyError, match=r"valve_1\.state: wrote True but read back False"):
        await device.write("valve_1.state", True)


async def test_write_while_unplugged_raises(simulator: Simulator, device: PlcDevice) -> None:
    await simulator.unplug()
    with pytest.raises(PlcError):  # a timeout or a closed socket, whichever the link shows first
        await device.write("valve_1.state", True)
    with pytest.raises(PlcConnectionError, match="not connected"):  # then it fails at once
        await device.write("valve_1.state", True)


async def test_block_read_times_are_reported_once_the_whole_frame_is_in(device: PlcDevice) -> None:
    """The metrics' per-block histogram is fed after the last round trip, never between two of them: its work
    must not lengthen the read it measures."""
    sent: list[str] = []
    device.connection.on_request = lambda op, seconds, ok: sent.append(op)
    seen: list[tuple[int, bool]] = []
    device.block_observers.append(lambda block, seconds, ok: seen.append((len(sent), ok)))
    frame = await device.read_all()
    assert frame.ok and len(device.plan) > 1
    assert seen == [(frame.requests, True)] * len(device.plan)
    await device.read(["pressure_gauge_1.pressure"])  # an ad-hoc read is not a frame: not reported
    assert len(seen) == len(device.plan)


# --- several connections (PLC_CONNECTIONS) ---------------------------------------------------------------


def count_concurrent_reads(device: PlcDevice) -> list[int]:
    """Wrap the device's reads; the returned list's last item is the most reads seen in flight at once."""
    most = [0]
    in_flight = 0
    read = device.connection.read

    async def counted(kind: RegisterKind, start: int, count: int) -> list[int] | list[bool]:
        nonlocal in_flight
        in_flight += 1
        most.append(max(most[-1], in_flight))
        try:
            return await read(kind, start, count)
        finally:
            in_flight -= 1

    device.connection.read = counted  # type: ignore[method-assign]
    return most


@pytest.mark.parametrize("connections", [2, 3])
async def test_a_frame_over_several_connections_reads_the_same_values_in_the_same_order(
    make_simulator: MakeSim, connect: Connect, connections: int
) -> None:
    sim = await make_simulator(address_as_value=True)
    one, several = await connect(sim), await connect(sim, connections=connections)
    most = count_concurrent_reads(several)
    single, spread = await one.read_all(), await several.read_all()
    assert spread.ok and spread.requests == single.requests == len(several.plan)
    assert list(spread.values.items()) == list(single.values.items())  # values and key order
    assert most[-1] == connections  # the blocks were read that many at a time, never more
    assert sim.client_connections == 1 + connections


async def test_refused_keys_over_several_connections_are_blanked_alone_and_listed_in_plan_order(
    simulator: Simulator, connect: Connect
) -> None:
    device = await connect(simulator, connections=3)
    bad = [device.map["chamber_heater.ki"], device.map["mfc_1.flow"]]
    simulator.faults += [AddressFault(p.register, p.address) for p in bad]
    frame = await device.read_all()
    reference = [p.key for block in device.plan for p in block.parameters]
    assert frame.failed_keys == sorted((p.key for p in bad), key=reference.index)
    assert [k for k, v in frame.values.items() if v is None] == frame.failed_keys
    assert list(frame.values) == reference


async def test_a_link_lost_mid_frame_over_several_connections_blanks_what_was_not_read(
    simulator: Simulator, connect: Connect
) -> None:
    device = await connect(simulator, connections=2, timeout_s=0.1)
    assert (await device.read_all()).ok
    simulator.delay_s = 0.5
    frame = await device.read_all()
    assert not frame.ok and set(frame.failed_keys) == set(device.map.keys())
    assert all(v is None for v in frame.values.values())  # never old values
    simulator.delay_s = 0.0
    assert await device.connection.wait_connected(5)
    assert (await device.read_all()).ok


async def test_a_block_the_link_fails_in_the_middle_of_is_blanked_whole(
    simulator: Simulator, device: PlcDevice
) -> None:
    """A refused block is read in halves; when the link goes down after the first half was decoded, the frame
    still carries none of that block's values: one block is either read or blank, never half of each."""
    block = next(b for b in device.plan if b.kind is RegisterKind.HOLDING and len(b.parameters) >= 4)
    last = max(block.parameters, key=lambda p: p.address)
    simulator.faults.append(AddressFault(RegisterKind.HOLDING, last.address))  # so the block is bisected
    calls = 0
    read = device.connection.read

    async def link_down_at_the_second_half(kind: RegisterKind, start: int, count: int) -> list[int] | list[bool]:
        nonlocal calls
        if kind is block.kind and block.start <= start < block.start + block.count:
            calls += 1
            if calls == 3:  # the merged read (refused), the first half (read), the second half: the link drops
                raise PlcConnectionError("test: link down", where="test")
        return await read(kind, start, count)

    device.connection.read = link_down_at_the_second_half  # type: ignore[method-assign]
    frame = await device.read_all()
    keys = [p.key for p in block.parameters]
    assert calls == 3
    assert all(frame.values[k] is None for k in keys), {k: frame.values[k] for k in keys}
    assert set(keys) <= set(frame.failed_keys)


async def test_after_a_map_change_a_frame_carries_exactly_the_new_maps_keys(device: PlcDevice) -> None:
    old = device.map
    kept = [p for p in old if p.register is RegisterKind.HOLDING][:3]
    device.set_map(RegisterMap.build(kept))
    frame = await device.read_all()
    assert frame.ok and list(frame.values) == [p.key for block in device.plan for p in block.parameters]
    assert set(frame.values) == {p.key for p in kept}  # no key of the old map, not even as a null
