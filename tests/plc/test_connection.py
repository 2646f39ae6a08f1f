"""The connection hub: lifecycle, reconnect with backoff, trace hook."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from agent.errors import PlcConnectionError
from agent.plc import ConnectionState, PlcConnection, RegisterKind
from agent.plc.sim import Simulator


async def test_entering_twice_is_a_clear_error(simulator: Simulator) -> None:
    connection = PlcConnection(host=simulator.host, port=simulator.port)
    async with connection:
        with pytest.raises(RuntimeError, match=r"cannot be entered when (disconnected|connected)"):
            await connection.__aenter__()
    assert connection.state is ConnectionState.CLOSED


async def test_starts_even_when_the_plc_is_down_and_connects_when_it_appears(simulator: Simulator) -> None:
    port = simulator.port
    await simulator.unplug()
    async with PlcConnection(host="127.0.0.1", port=port, backoff_initial_s=0.05, backoff_max_s=0.2) as conn:
        assert not await conn.wait_connected(0.3)
        with pytest.raises(PlcConnectionError, match="not connected"):
            await conn.read(RegisterKind.HOLDING, 0, 1)
        assert conn.last_error
        await simulator.replug()
        assert await conn.wait_connected(3)
        assert await conn.read(RegisterKind.HOLDING, 2086, 2) == [0, 0]


async def test_backoff_grows_but_is_capped(simulator: Simulator) -> None:
    await simulator.unplug()
    attempts: list[float] = []
    conn = PlcConnection(host="127.0.0.1", port=simulator.port, backoff_initial_s=0.01, backoff_max_s=0.08)
    original = conn._connect_once

    async def counting() -> bool:
        attempts.append(asyncio.get_running_loop().time())
        return await original()

    conn._connect_once = counting  # type: ignore[method-assign]
    async with conn:
        await asyncio.sleep(1.0)
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert 5 <= len(attempts) <= 200  # retried, not spinning
    assert max(gaps) < 0.08 + 0.05  # capped (plus scheduling slack)


async def test_every_request_is_traced(simulator: Simulator) -> None:
    seen: list[tuple[str, bool]] = []
    async with PlcConnection(
        host=simulator.host, port=simulator.port, on_request=lambda op, s, ok: seen.append((op, ok))
    ) as conn:
        assert await conn.wait_connected(3)
        await conn.read(RegisterKind.COIL, 15, 6)
        await conn.write_bit(15, True)
        await conn.write_registers(2086, [0, 0x4248])
    assert seen == [("read_coils", True), ("write_coil", True), ("write_registers", True)]


@pytest.mark.parametrize(
    ("kind", "count"), [(RegisterKind.HOLDING, 126), (RegisterKind.COIL, 2001), (RegisterKind.INPUT, 0)]
)
async def test_requests_beyond_protocol_limits_are_refused(
    simulator: Simulator, kind: RegisterKind, count: int
) -> None:
    async with PlcConnection(host=simulator.host, port=simulator.port) as conn:
        with pytest.raises(ValueError, match="outside"):
            await conn.read(kind, 0, count)


async def test_requests_refused_while_disconnected_are_traced_as_failures(simulator: Simulator) -> None:
    seen: list[bool] = []
    await simulator.unplug()
    async with PlcConnection(
        host="127.0.0.1", port=simulator.port, on_request=lambda op, s, ok: seen.append(ok)
    ) as conn:
        with pytest.raises(PlcConnectionError):
            await conn.read(RegisterKind.HOLDING, 0, 1)
    assert seen == [False]  # so ald_plc_errors_total rises during an outage
