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


async def test_a_request_queued_behind_one_that_loses_the_link_fails_as_a_connection_error(
    simulator: Simulator,
) -> None:
    """A valve close queued behind a sampler read whose reply never comes must fail as a PLC error the recipe
    understands (and reach the safe state), not as an AttributeError of a client that is already gone."""
    simulator.delay_s = 0.5
    async with PlcConnection(host=simulator.host, port=simulator.port, timeout_s=0.1) as conn:
        assert await conn.wait_connected(3)
        read = asyncio.create_task(conn.read(RegisterKind.HOLDING, 0, 1))
        await asyncio.sleep(0.01)  # the read holds the link
        close = asyncio.create_task(conn.write_bit(15, False))
        results = await asyncio.gather(read, close, return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["PlcTimeout", "PlcConnectionError"], results
    assert "not connected" in str(results[1])


# --- several connections to one unit (PLC_CONNECTIONS) ----------------------------------------------------


@pytest.mark.parametrize("connections", [0, 9])
def test_the_number_of_connections_is_bounded(connections: int) -> None:
    with pytest.raises(ValueError, match=r"connections .* outside 1\.\.8"):
        PlcConnection(host="127.0.0.1", port=502, connections=connections)


async def test_several_connections_are_one_link_up_together_and_down_together(simulator: Simulator) -> None:
    lost: list[str] = []
    async with PlcConnection(
        host=simulator.host, port=simulator.port, connections=3, backoff_initial_s=0.01, backoff_max_s=0.05
    ) as conn:
        conn.on_loss(lost.append)
        assert await conn.wait_connected(3)
        assert simulator.client_connections == 3 and conn.connects == 1
        simulator.drop_connections(limit=1)  # the PLC closes one of the three
        for _ in range(200):
            if conn.connects == 2 and conn.connected.is_set():
                break
            await asyncio.sleep(0.01)
        assert lost == ["connection closed by the PLC"]  # one loss, for the whole link
        assert conn.connects == 2 and simulator.client_connections == 3  # all three opened again, together
        assert await conn.read(RegisterKind.HOLDING, 2086, 2) == [0, 0]


async def test_a_late_failure_of_a_dropped_connection_does_not_drop_the_link_that_replaced_it(
    simulator: Simulator,
) -> None:
    """With two connections, a request still in flight on one when the other fails ends after the link was
    re-opened; its failure concerns a socket already gone and must not close the new ones."""
    async with PlcConnection(host=simulator.host, port=simulator.port, connections=2, backoff_initial_s=0.01) as conn:
        assert await conn.wait_connected(3)
        stale = conn._links[0].client
        conn._connection_lost("test: the link fails")
        assert await conn.wait_connected(3)
        conn._connection_lost("timeout after 1.0s", stale)  # what the late request reports
        assert conn.connected.is_set() and conn.connects == 2
        assert await conn.read(RegisterKind.HOLDING, 2086, 2) == [0, 0]


async def test_a_write_takes_a_free_connection_while_another_carries_a_read(simulator: Simulator) -> None:
    simulator.delay_s = 0.3
    async with PlcConnection(host=simulator.host, port=simulator.port, connections=2, timeout_s=1.0) as conn:
        assert await conn.wait_connected(3)
        read = asyncio.create_task(conn.read(RegisterKind.HOLDING, 0, 1))
        await asyncio.sleep(0.01)  # the read holds one connection
        write = asyncio.create_task(conn.write_bit(15, False))
        await asyncio.sleep(0.01)
        assert [link.queued for link in conn._links] == [1, 1]  # not queued behind the read
        await asyncio.gather(read, write)
