"""The run controller's fallback paths: a run whose executor crashes, or whose task is cancelled mid-run, still
ends recorded — the run, the command that started it and the machine — with every valve closed at the PLC.

Everything is real except the injected fault: the simulator over Modbus TCP, the spool, the shipper and the
official client against the local stack (real PostgreSQL, our migrations). The rows are read back the way the
dashboard sees them; the valves are read from the simulator by a separate Modbus client.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from pymodbus.client import AsyncModbusTcpClient

from agent.cloud import CloudClient
from agent.plc import PlcDevice
from agent.plc.sim import Simulator
from agent.recipes import RecipeExecutor, RunStatus, compile_recipe
from agent.safety import RunController, WriteGate
from agent.spool import Shipper, Spool, SpoolWriter
from supalocal.stack import BackgroundStack
from supalocal.testing import SEED_MACHINE_ID
from tests.e2e.recipes import insert_command
from tests.recipes.recipe_support import purge, recipe, valve
from tests.support.poll import eventually

VALVES = range(1, 7)
SHIP_TIMEOUT_S = 10.0


@dataclass
class Bench:
    runs: RunController
    writer: SpoolWriter
    spool: Spool
    cloud: CloudClient


@pytest.fixture
async def bench(clean_db: BackgroundStack, device: PlcDevice, tmp_path: Path) -> AsyncIterator[Bench]:
    async with Spool(tmp_path / "spool.sqlite") as spool, CloudClient(clean_db.url, clean_db.service_key) as cloud:
        writer = SpoolWriter(spool)
        runs = RunController(device=device, gate=WriteGate(device), writer=writer, machine_id=SEED_MACHINE_ID)
        yield Bench(runs, writer, spool, cloud)


async def claimed_start_command(db: asyncpg.Connection) -> int:
    """A start_recipe command as the agent holds it while its run goes on (claimed, then running)."""
    return await insert_command(
        db, SEED_MACHINE_ID, "start_recipe", {}, status="running", claimed_by="test", claimed_at=datetime.now(UTC)
    )


async def ship_everything(bench: Bench) -> None:
    await bench.writer.drain()
    assert await Shipper(bench.spool, bench.cloud).flush(SHIP_TIMEOUT_S), "records still in the spool"
    assert await bench.spool.quarantined() == []  # Supabase accepted every record


async def recorded(db: asyncpg.Connection, run_id: str, command_id: int) -> dict[str, tuple[object, ...]]:
    run = await db.fetchrow("select status, error, finished_at from process_runs where id = $1", run_id)
    command = await db.fetchrow("select status, error, finished_at from machine_commands where id = $1", command_id)
    machine = await db.fetchrow("select status, current_run_id from machines where id = $1", SEED_MACHINE_ID)
    assert run is not None and command is not None and machine is not None
    return {
        "run": (run["status"], run["error"], run["finished_at"] is not None),
        "command": (command["status"], command["error"], command["finished_at"] is not None),
        "machine": (machine["status"], machine["current_run_id"]),
    }


async def open_valves(simulator: Simulator) -> list[int]:
    """The valves whose coil reads 1, asked over Modbus TCP by a client of its own (not the agent's)."""
    coils = {n: simulator.register_map[f"valve_{n}.state"].address for n in VALVES}
    client = AsyncModbusTcpClient(simulator.host, port=simulator.port)
    await client.connect()
    try:
        first = min(coils.values())
        response = await client.read_coils(first, count=max(coils.values()) - first + 1)
        assert not response.isError(), response
        return [n for n, address in coils.items() if response.bits[address - first]]
    finally:
        client.close()


def mfc_setpoint(simulator: Simulator) -> object:
    return simulator.image.get(simulator.register_map["mfc_1.flow_sp"])


async def test_an_executor_crash_mid_run_is_recorded_failed_with_the_machine_safe(
    bench: Bench, db: asyncpg.Connection, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fault: the executor's own code raises between two steps, after a purge set the carrier flow and a
    # pulse opened valve 1 — an exception that no step handler catches, so it leaves `executor.run()`.
    real_boundary = RecipeExecutor._boundary

    async def crashing_boundary(executor: RecipeExecutor) -> bool:
        if executor.progress.completed == 2:
            raise RuntimeError("injected executor bug")
        return await real_boundary(executor)

    monkeypatch.setattr(RecipeExecutor, "_boundary", crashing_boundary)
    command_id = await claimed_start_command(db)
    doomed = recipe(purge(50, flow_sccm=20), valve(1, 50), valve(2, 50), purge(50))
    run_id = bench.runs.start(doomed, compile_recipe(doomed), command_id=command_id)

    outcome = await bench.runs.wait()

    assert outcome is not None and outcome.status is RunStatus.FAILED
    assert outcome.total_steps == 4 and outcome.completed_steps == 2
    # the controller applied the safe state itself (the executor's `finally` never ran): confirmed at the PLC
    assert bench.runs.active is None and not bench.runs.gate.safe_state_pending
    assert [(e.valve, e.open) for e in simulator.valve_events] == [(1, True), (1, False)]  # valve 2 never opened
    assert await open_valves(simulator) == [] and mfc_setpoint(simulator) == 0
    await ship_everything(bench)
    assert await recorded(db, run_id, command_id) == {
        "run": ("failed", "internal error: injected executor bug", True),
        "command": ("failed", "run failed: internal error: injected executor bug", True),
        "machine": ("error", None),
    }


async def test_a_run_cancelled_mid_pulse_is_recorded_aborted_with_the_valve_closed(
    bench: Bench, db: asyncpg.Connection, simulator: Simulator
) -> None:
    command_id = await claimed_start_command(db)
    long_pulse = recipe(valve(2, 10_000, "long pulse"), purge(50))
    run_id = bench.runs.start(long_pulse, compile_recipe(long_pulse), command_id=command_id)
    assert bench.runs.active is not None and bench.runs.active.task is not None
    task = bench.runs.active.task
    await eventually(lambda: simulator.image.get(simulator.register_map["valve_2.state"]) is True, within=5)
    assert await open_valves(simulator) == [2]

    task.cancel()  # what the app's shutdown does when a stop does not end the run in time
    with pytest.raises(asyncio.CancelledError):
        await task

    # the executor's `finally` applied the safe state before the cancellation left it: confirmed, not pending
    assert bench.runs.active is None and not bench.runs.gate.safe_state_pending
    assert await open_valves(simulator) == [] and mfc_setpoint(simulator) == 0
    await ship_everything(bench)
    assert await recorded(db, run_id, command_id) == {
        "run": ("aborted", "agent shutting down", True),
        "command": ("failed", "run aborted: agent shutting down", True),
        "machine": ("idle", None),
    }
