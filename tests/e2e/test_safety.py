"""The safety kernel, whole-system: the incidents of issue 11 replayed against the real agent, the local stack and
the simulator over Modbus TCP. Each test ends by looking at the PLC itself (the simulator's coils), not at what the
agent believes.

- a map edit mid-pulse never changes the coil the run closes (the map applies after the run);
- a map the agent cannot use is refused with a reason (old map kept, /health degraded, metric, heartbeat error),
  never a crash;
- set_parameter never opens a pulse valve or writes the watchdog, at idle or paused, and refuses 100.5 for an int;
- a permit interlock blocks a pulse (the run fails naming the rule), a trip aborts a run into its safe state;
- a duty that crashes mid-run brings the recipe to its safe state before the PLC connection closes, and the run,
  command and machine rows end final.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import asyncpg
import pytest

from agent.app import Agent
from agent.heartbeat import Heartbeat
from agent.http.health import assess
from agent.plc.sim import Simulator
from supalocal.testing import SEED_MACHINE_ID
from tests.e2e.conftest import StartAgent, over_plc_connections
from tests.e2e.recipes import insert_command, insert_recipe, loop, purge, valve, wait
from tests.e2e.test_commands import active_agent, command_row, run_of, until_final
from tests.support.poll import eventually

#: The PLC watchdog period the agent runs with in these tests (WATCHDOG_TIMEOUT): every path out of a run must
#: leave the valves closed at the PLC within it.
WATCHDOG_S = 5.0


def coil(sim: Simulator, key: str) -> bool:
    return bool(sim.image.get(sim.register_map[key]))


def open_valves(sim: Simulator) -> list[int]:
    return [n for n in range(1, 7) if coil(sim, f"valve_{n}.state")]


async def set_parameter(db: asyncpg.Connection, key: str, value: object) -> asyncpg.Record:
    return await until_final(
        db, await insert_command(db, SEED_MACHINE_ID, "set_parameter", {"key": key, "value": value})
    )


async def start(db: asyncpg.Connection, name: str, steps: list[object]) -> int:
    recipe_id = await insert_recipe(db, name, steps)  # type: ignore[arg-type]
    return await insert_command(db, SEED_MACHINE_ID, "start_recipe", {"recipe_id": recipe_id})


@over_plc_connections
async def test_a_map_edit_mid_pulse_never_changes_the_coil_the_run_closes(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator, plc_connections: int
) -> None:
    """Issue 11's first incident: deleting `valve_1.state` while valve 1 was open left it open for good."""
    agent = await active_agent(start_agent, PLC_CONNECTIONS=plc_connections)
    assert agent.parts is not None
    command = await start(db, "map edit mid-pulse", [valve(1, 2500, "long TMA pulse"), wait(10)])
    await eventually(lambda: coil(simulator, "valve_1.state"), within=15, every=0.01)

    await db.execute("delete from parameters where machine_id = $1 and key = 'valve_1.state'", SEED_MACHINE_ID)
    await eventually(lambda: agent.parts is not None and agent.parts.map_guard.pending is not None, within=5)
    assert "valve_1.state" in agent.parts.device.map  # the run keeps the map it started with

    row = await until_final(db, command, within=30)
    assert row["status"] == "succeeded", row["error"]
    assert not coil(simulator, "valve_1.state")
    assert [(e.valve, e.open) for e in simulator.valve_events] == [(1, True), (1, False)]
    await eventually(lambda: agent.parts is not None and "valve_1.state" not in agent.parts.device.map, within=5)


async def test_a_map_the_agent_cannot_use_is_refused_with_a_reason_and_the_agent_stays_up(
    start_agent: StartAgent, db: asyncpg.Connection
) -> None:
    """The schema refuses overlapping addresses now; an older database (or a hand edit) may not. The agent must
    not crash on such a map: it keeps the one it has and says why, everywhere an engineer looks."""
    agent = await active_agent(start_agent)
    assert agent.parts is not None
    in_use = len(agent.parts.device.map)
    async with _without_overlap_constraints(db):
        await _refused_map_is_reported(agent, db, in_use)


DROPPED = ("parameters_address_overlap", "parameters_write_range_overlap")


@contextlib.asynccontextmanager
async def _without_overlap_constraints(db: asyncpg.Connection) -> AsyncIterator[None]:
    """The schema as an older database had it; restored after the test (the stack's schema is shared)."""
    definitions = {
        name: await db.fetchval(
            "select pg_get_constraintdef(oid) from pg_constraint "
            "where conname = $1 and conrelid = 'parameters'::regclass",
            name,
        )
        for name in DROPPED
    }
    await db.execute("alter table parameters " + ", ".join(f"drop constraint {n}" for n in DROPPED))
    try:
        yield
    finally:
        await db.execute("delete from parameters where key = 'bogus.overlap'")
        for name, definition in definitions.items():
            await db.execute(f"alter table parameters add constraint {name} {definition}")


async def _refused_map_is_reported(agent: Agent, db: asyncpg.Connection, in_use: int) -> None:
    assert agent.parts is not None
    address = await db.fetchval(
        "select address from parameters where machine_id = $1 and key = 'valve_2.state'", SEED_MACHINE_ID
    )
    await db.execute(
        "insert into parameters (machine_id, key, component, name, data_type, register, address) "
        "values ($1, 'bogus.overlap', 'bogus', 'overlaps valve 2', 'bool', 'coil', $2)",
        SEED_MACHINE_ID,
        address,
    )

    await eventually(lambda: agent.parts is not None and agent.parts.map_guard.problem is not None, within=10)
    assert agent.serving and len(agent.parts.device.map) == in_use
    status, reasons = assess(agent.snapshot())
    assert status.value == "degraded" and any("register map refused" in r and "bogus.overlap" in r for r in reasons)
    assert b"ald_map_refused 1.0" in agent.parts.metrics.render()

    async def heartbeat_says_so() -> bool:
        error = await db.fetchval("select error from agent_instances where instance_id = $1", agent.instance_id)
        return error is not None and "register map refused" in error

    agent.parts.heartbeat.beat()
    await eventually(heartbeat_says_so, within=10)

    await db.execute("delete from parameters where key = 'bogus.overlap'")
    await eventually(lambda: agent.parts is not None and agent.parts.map_guard.problem is None, within=10)
    assert not agent.snapshot().safety_problems


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("valve_1.state", True, "pulse valve"),
        ("valve_3.state", 1, "pulse valve"),
        ("plc.watchdog", 7, "watchdog register"),
        ("chamber_heater.pid_period", 100.5, "not a whole value"),
        ("mfc_1.flow_sp", 1e18, "too large"),
    ],
    ids=["open-pulse-valve", "open-pulse-valve-as-1", "watchdog", "fractional-int", "absurd-number"],
)
async def test_set_parameter_never_writes_outside_the_machine_rules(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator, key: str, value: object, reason: str
) -> None:
    await active_agent(start_agent)
    before = simulator.image.get(simulator.register_map[key])
    row = await set_parameter(db, key, value)
    assert row["status"] == "rejected" and reason in row["error"], row["error"]
    if key != "plc.watchdog":  # the agent's own watchdog duty keeps changing that one
        assert simulator.image.get(simulator.register_map[key]) == before
    assert open_valves(simulator) == []


async def test_a_paused_run_does_not_let_set_parameter_open_a_pulse_valve(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator
) -> None:
    agent = await active_agent(start_agent)
    assert agent.parts is not None
    command = await start(db, "pausable", [loop(50, wait(100))])
    await eventually(lambda: agent.parts is not None and agent.parts.runs.active is not None, within=15)
    await until_final(db, await insert_command(db, SEED_MACHINE_ID, "pause_recipe", {}))
    await eventually(lambda: agent.parts is not None and agent.parts.runs.paused, within=5)

    row = await set_parameter(db, "valve_2.state", True)
    assert row["status"] == "rejected" and "pulse valve" in row["error"]
    assert open_valves(simulator) == []
    assert (await set_parameter(db, "mfc_1.flow_sp", 25))["status"] == "succeeded"  # an ordinary setpoint may

    await until_final(db, await insert_command(db, SEED_MACHINE_ID, "stop_recipe", {}))
    assert (await until_final(db, command))["status"] == "failed"


@over_plc_connections
async def test_a_permit_interlock_blocks_the_pulse_and_fails_the_run_naming_the_rule(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator, plc_connections: int
) -> None:
    agent = await active_agent(start_agent, PLC_CONNECTIONS=plc_connections)
    assert agent.parts is not None and len(agent.parts.gate.interlocks) == 5  # the seed's rules
    simulator.force("pressure_gauge_1.pressure", 2500.0)  # vented chamber: no precursor may flow
    command = await start(db, "blocked pulse", [purge(20), valve(1, 50, "TMA pulse"), wait(10)])

    row = await until_final(db, command, within=30)
    assert row["status"] == "failed" and "pulse-needs-vacuum" in row["error"], row["error"]
    run = await run_of(db, command)
    assert run["status"] == "failed" and "pulse-needs-vacuum" in run["error"]
    await eventually(lambda: agent.parts is not None and agent.parts.spool.stats.depth == 0)
    step = await db.fetchrow("select * from run_steps where run_id = $1 and type = 'valve'", run["id"])
    assert step["status"] == "failed" and "pulse-needs-vacuum" in json.loads(step["detail"])["error"]
    assert not any(e.open for e in simulator.valve_events)  # the coil never moved
    assert agent.snapshot().interlock_blocks >= 1

    simulator.force("pressure_gauge_1.pressure", None)


@over_plc_connections
async def test_a_trip_interlock_aborts_the_run_into_its_safe_state(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator, plc_connections: int
) -> None:
    agent = await active_agent(start_agent, PLC_CONNECTIONS=plc_connections)
    assert agent.parts is not None
    # After its pulse the run only purges: no valve write follows whose permit check (heaters in window) would
    # see the runaway first and fail the run before the trip, which watches frames, aborts it.
    command = await start(db, "tripped", [valve(1, 100), loop(40, purge(100, 20), wait(100))])
    await eventually(lambda: [(e.valve, e.open) for e in simulator.valve_events] == [(1, True), (1, False)], within=15)
    simulator.force("chamber_heater.temperature", 395.0)  # heater runaway: the overtemperature trip (hold 0)
    tripped_at = asyncio.get_running_loop().time()

    row = await until_final(db, command, within=30)
    await eventually(lambda: open_valves(simulator) == [], within=WATCHDOG_S)
    assert asyncio.get_running_loop().time() - tripped_at < WATCHDOG_S + 5
    run = await run_of(db, command)
    assert row["status"] == "failed" and run["status"] == "aborted"
    assert "chamber-overtemperature" in run["error"] and "395" in run["error"]
    await eventually(lambda: agent.parts is not None and agent.parts.spool.stats.depth == 0)
    aborted = await db.fetchrow("select detail from run_steps where run_id = $1 and status = 'aborted'", run["id"])
    assert "chamber-overtemperature" in json.loads(aborted["detail"])["interrupted_by"]  # and the step record
    assert simulator.image.get(simulator.register_map["mfc_1.flow_sp"]) == 0
    assert agent.snapshot().interlock_trips == 1
    assert await db.fetchval("select status from machines where id = $1", SEED_MACHINE_ID) == "idle"
    simulator.force("chamber_heater.temperature", None)


@pytest.mark.timeout(90)
@over_plc_connections
async def test_a_crashed_duty_mid_run_reaches_the_safe_state_before_the_plc_closes(
    start_agent: StartAgent,
    db: asyncpg.Connection,
    simulator: Simulator,
    monkeypatch: pytest.MonkeyPatch,
    plc_connections: int,
) -> None:
    """Issue 11: when a duty died mid-run the PLC connection closed first, valves waited for the watchdog and the
    rows stayed `running`. Now leaving the run controller (in the exit stack, inside the PLC connection) stops the
    run while the PLC still answers, and the spool writer is drained before the spool closes."""
    crash = asyncio.Event()
    real_run = Heartbeat.run

    async def crashing_heartbeat(self: Heartbeat) -> None:
        beating = asyncio.ensure_future(real_run(self))
        await crash.wait()
        beating.cancel()
        raise RuntimeError("injected duty crash")

    monkeypatch.setattr(Heartbeat, "run", crashing_heartbeat)
    agent = await active_agent(start_agent, PLC_CONNECTIONS=plc_connections)
    assert agent.parts is not None
    command = await start(db, "long pulse", [valve(3, 9_000, "long pulse")])
    await eventually(lambda: coil(simulator, "valve_3.state"), within=15, every=0.01)

    crash.set()
    await eventually(lambda: not coil(simulator, "valve_3.state"), within=WATCHDOG_S / 2, every=0.01)
    # closed by the agent on its way down (the PLC watchdog would take WATCHDOG_S), with its own safe state
    assert simulator.image.get(simulator.register_map["mfc_1.flow_sp"]) == 0

    monkeypatch.setattr(Heartbeat, "run", real_run)
    restarted: Agent = await active_agent(
        start_agent, PLC_CONNECTIONS=plc_connections
    )  # same color: same spool, ships what the crash left
    assert restarted is not agent

    async def final() -> bool:
        run = await run_of(db, command)
        return run is not None and run["status"] == "aborted" and (await command_row(db, command))["status"] == "failed"

    await eventually(final, within=20)
    run = await run_of(db, command)
    assert "injected duty crash" in run["error"]
    assert await db.fetchval("select status from machines where id = $1", SEED_MACHINE_ID) != "running"
