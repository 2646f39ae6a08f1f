"""Continuity (issue 12), whole-system: a run survives the cloud, ownership is fenced at the machine, a crash
costs seconds, and nothing a dead holder left is left half-done. Real agents, the local stack behind a proxy the
test can cut, and the simulator, which implements the PLC side of the fence (`plc.owner`, docs/CONTRACT.md §8).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time

import asyncpg
import pytest

from agent.plc.sim import Simulator
from agent.safety import OWNER_KEY, owner_id
from supalocal.stack import BackgroundStack
from supalocal.testing import SEED_MACHINE_ID
from tests.e2e.conftest import ProcessEnv, StartAgent, over_plc_connections
from tests.e2e.recipes import insert_command, insert_recipe, loop, purge, valve
from tests.e2e.test_commands import active_agent, command_row, run_of, until_final
from tests.support.poll import eventually
from tests.support.proxy import TcpProxy

#: Longer than the 12 s a lease is trusted without a renewal (TTL 15 s − 3 s margin): the lease is lost.
OUTAGE_S = 16.0


def ald_cycles(n: int) -> list[object]:
    """n cycles of two 20 ms pulses and two purges: about 0.22 s a cycle."""
    return [loop(n, valve(1, 20, "TMA pulse"), purge(120), valve(2, 20, "H2O pulse"), purge(60), name="ALD cycle")]


async def start_run(db: asyncpg.Connection, name: str, steps: list[object]) -> int:
    recipe_id = await insert_recipe(db, name, steps)  # type: ignore[arg-type]
    return await insert_command(db, SEED_MACHINE_ID, "start_recipe", {"recipe_id": recipe_id})


def plc_owner(sim: Simulator) -> int:
    return int(sim.image.get(sim.register_map[OWNER_KEY]))


async def test_a_cloud_outage_longer_than_the_lease_does_not_abort_the_run(
    start_agent: StartAgent, cloud_proxy: TcpProxy, db: asyncpg.Connection, simulator: Simulator
) -> None:
    """Issue 12: a ~12 s outage used to end the run ("lost its lease"). Now it rides through: no new claims, every
    record spooled, the pulses on time at the PLC, and everything lands in order when Supabase is back."""
    agent = await active_agent(start_agent)
    assert agent.parts is not None
    command = await start_run(db, "ride-through", ald_cycles(110))  # ~25 s
    await eventually(lambda: agent.parts is not None and agent.parts.runs.active is not None, within=15)

    await cloud_proxy.cut()
    await eventually(lambda: agent.parts is not None and not agent.parts.lease.valid(), within=OUTAGE_S)
    during = await insert_command(db, SEED_MACHINE_ID, "set_parameter", {"key": "mfc_1.flow_sp", "value": 5})
    await asyncio.sleep(OUTAGE_S - 12)
    assert agent.parts.runs.active is not None, "the run must go on without the cloud"
    assert agent.parts.fence.owns and not simulator.model.watchdog_tripped
    assert (await command_row(db, during))["status"] == "pending"  # nothing is claimed while the cloud is away
    await cloud_proxy.restore()

    row = await until_final(db, command, within=60)
    assert row["status"] == "succeeded", row["error"]
    await eventually(lambda: agent.parts is not None and agent.parts.spool.stats.depth == 0, within=30)
    run = await run_of(db, command)
    assert (run["status"], run["completed_steps"], run["total_steps"]) == ("succeeded", 440, 440)
    steps = await db.fetch("select seq, status from run_steps where run_id = $1 order by seq", run["id"])
    assert [s["seq"] for s in steps] == list(range(440)) and {s["status"] for s in steps} == {"succeeded"}
    assert sum(1 for e in simulator.valve_events if e.open) == 220  # every pulse reached the PLC
    assert agent.parts.spool.stats.quarantined == 0


@pytest.mark.timeout(150)
async def test_a_partitioned_owner_keeps_the_machine_and_the_new_lease_holder_writes_nothing(
    start_agent: StartAgent,
    cloud_proxy: TcpProxy,
    clean_db: BackgroundStack,
    db: asyncpg.Connection,
    simulator: Simulator,
) -> None:
    """Blue alone is cut from Supabase mid-run; green wins the cloud lease. The PLC still names blue, whose
    watchdog is alive: green writes nothing but its (refused) claim, blue finishes its run, and the machine passes
    to green only once blue learns it lost the lease — with no watchdog trip on the way."""
    blue = await active_agent(start_agent)  # through the proxy
    assert blue.parts is not None
    command = await start_run(db, "partitioned", ald_cycles(110))  # ~25 s
    await eventually(lambda: blue.parts is not None and blue.parts.runs.active is not None, within=15)
    green = await start_agent(AGENT_COLOR="green", SUPABASE_URL=clean_db.url, COMMAND_POLL_INTERVAL=1)
    assert green.parts is not None
    blue_id, green_id = owner_id(blue.instance_id), owner_id(green.instance_id)
    assert plc_owner(simulator) == blue_id

    await cloud_proxy.cut()
    cut_at = await db.fetchval("select now()")
    await eventually(lambda: green.parts is not None and green.parts.lease.valid(), within=40)
    await asyncio.sleep(2 * green.parts.watchdog.period_s)  # green has tried to claim the machine by now
    # one publisher per machine: green (not the owner) published no frame, and blue's wait in its spool
    assert await db.fetchval("select count(*) from parameter_history where ts > $1", cut_at) == 0
    assert blue.parts.runs.active is not None
    assert plc_owner(simulator) == blue_id and not green.parts.fence.owns
    assert set(green.parts.gate.stats.by_purpose) <= {"ownership"}  # its claims, refused; nothing else
    assert simulator.model.owner_refusals > 0

    await eventually(lambda: blue.parts is not None and blue.parts.runs.active is None, within=60)
    assert plc_owner(simulator) == blue_id  # idle and cut off, blue cannot know: it keeps the machine
    await cloud_proxy.restore()  # blue learns green holds the lease: it releases, green claims
    await eventually(lambda: green.parts is not None and green.parts.fence.owns, within=30)
    assert plc_owner(simulator) == green_id and green_id != blue_id
    assert not simulator.model.watchdog_tripped

    row = await until_final(db, command, within=60)
    assert row["status"] == "succeeded", row["error"]
    await eventually(lambda: blue.parts is not None and blue.parts.spool.stats.depth == 0, within=30)
    run = await run_of(db, command)
    assert (run["status"], run["completed_steps"]) == ("succeeded", 440)
    assert sum(1 for e in simulator.valve_events if e.open) == 220


async def test_the_next_holder_settles_what_a_dead_holder_left_half_done(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator
) -> None:
    recipe_id = await insert_recipe(db, "cut short", ald_cycles(5))  # type: ignore[arg-type]
    start = await db.fetchval(
        "insert into machine_commands (machine_id, type, payload, status, claimed_by, claimed_at) "
        "values ($1, 'start_recipe', $2::jsonb, 'running', 'dead-host-blue', now()) returning id",
        SEED_MACHINE_ID,
        f'{{"recipe_id": "{recipe_id}"}}',
    )
    await db.execute(
        "insert into process_runs (machine_id, recipe_id, command_id, status, total_steps, completed_steps) "
        "values ($1, $2, $3, 'running', 20, 7)",
        SEED_MACHINE_ID,
        recipe_id,
        start,
    )
    write = await db.fetchval(
        "insert into machine_commands (machine_id, type, payload, status, claimed_by, claimed_at) "
        "values ($1, 'set_parameter', '{\"key\": \"mfc_1.flow_sp\", \"value\": 33}'::jsonb, 'claimed', "
        "'dead-host-blue', now()) returning id",
        SEED_MACHINE_ID,
    )
    simulator.image.set(simulator.register_map["mfc_1.flow_sp"], 33.0)  # the dead holder's write had landed

    agent = await active_agent(start_agent)
    assert agent.parts is not None
    started = await until_final(db, start, within=20)
    assert started["status"] == "failed" and "interrupted at step 7 of 20" in started["error"], started["error"]
    written = await until_final(db, write, within=20)
    assert written["status"] == "failed"
    assert "the PLC reads mfc_1.flow_sp = 33.0 now (wanted 33)" in written["error"], written["error"]
    run = await run_of(db, start)
    assert run["status"] == "interrupted"
    assert agent.parts.ownership.settled_commands == 2


@pytest.mark.timeout(120)
@over_plc_connections
async def test_a_kill_9_restart_is_the_same_holder_and_does_not_trip_the_plc(
    process_env: ProcessEnv, simulator: Simulator, db: asyncpg.Connection, plc_connections: int
) -> None:
    """The restarted process is the same holder (host and color) and the same owner at the PLC: it takes its lease
    back at once and kicks the watchdog before the PLC's timeout. Prints kill → claiming again."""
    simulator.model.watchdog_timeout_s = 10.0
    env = process_env(COMMAND_POLL_INTERVAL=0.5, WATCHDOG_TIMEOUT=10, PLC_CONNECTIONS=plc_connections)

    async def launch() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent", "run", env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip

    async def set_flow(value: float) -> asyncpg.Record:
        command = await insert_command(db, SEED_MACHINE_ID, "set_parameter", {"key": "mfc_1.flow_sp", "value": value})
        return await until_final(db, command, within=30)

    tripped: list[float] = []

    async def watch_the_plc() -> None:
        while True:
            if simulator.model.watchdog_tripped:
                tripped.append(time.monotonic())
            await asyncio.sleep(0.05)

    first = await launch()
    watcher = asyncio.create_task(watch_the_plc())
    second: asyncio.subprocess.Process | None = None
    try:
        assert (await set_flow(10))["status"] == "succeeded"
        owner = plc_owner(simulator)
        first.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        await first.wait()
        second = await launch()
        row = await set_flow(11)
        claimed_again = time.monotonic() - killed
        print(f"kill -9 → next command succeeded: {claimed_again:.2f} s")
        assert row["status"] == "succeeded", row["error"]
        assert plc_owner(simulator) == owner  # the same owner at the PLC
        assert simulator.client_connections == plc_connections  # the dead process's sockets are gone
        assert tripped == [], "the PLC watchdog tripped during the restart"
    finally:
        watcher.cancel()
        for proc in (first, second):
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()
