"""Commands and recipes end to end: a test "dashboard" inserts rows in Supabase, the real agent claims and runs
them against the simulator over Modbus TCP, and the tests read back what the dashboard would see."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from agent.app import Agent
from agent.plc.sim import Simulator
from supalocal.auth import make_machine_key
from supalocal.stack import BackgroundStack
from supalocal.testing import SEED_MACHINE_ID
from tests.e2e.conftest import ProcessEnv, StartAgent, over_plc_connections, stop
from tests.e2e.recipes import al2o3_fast, insert_command, insert_recipe, loop, setpoint, valve, wait
from tests.support.poll import eventually

FINAL = ("succeeded", "failed", "rejected", "expired")


async def command_row(db: asyncpg.Connection, command_id: int) -> asyncpg.Record:
    return await db.fetchrow("select * from machine_commands where id = $1", command_id)


async def until_final(db: asyncpg.Connection, command_id: int, within: float = 30) -> asyncpg.Record:
    async def done() -> bool:
        return (await command_row(db, command_id))["status"] in FINAL

    await eventually(done, within=within, every=0.1)
    return await command_row(db, command_id)


async def run_of(db: asyncpg.Connection, command_id: int) -> asyncpg.Record:
    return await db.fetchrow("select * from process_runs where command_id = $1", command_id)


async def active_agent(start_agent: StartAgent, **env: object) -> Agent:
    agent = await start_agent(**({"COMMAND_POLL_INTERVAL": 1} | env))
    await eventually(lambda: agent.parts is not None and agent.parts.lease.valid(), within=15)
    await eventually(
        lambda: (
            agent.parts.intake is not None
            and agent.parts.intake.watch is not None
            and agent.parts.intake.watch.ready.is_set()
        ),
        within=15,
    )
    return agent


async def test_the_al2o3_recipe_runs_with_exact_step_counts(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator
) -> None:
    agent = await active_agent(start_agent)
    recipe_id = await insert_recipe(db, "Al2O3 TMA/H2O (fast)", al2o3_fast())
    command_id = await insert_command(db, SEED_MACHINE_ID, "start_recipe", {"recipe_id": recipe_id})
    row = await until_final(db, command_id, within=90)
    assert row["status"] == "succeeded", row["error"]
    await eventually(lambda: agent.parts.spool.stats.depth == 0)
    run = await run_of(db, command_id)
    assert (run["status"], run["total_steps"], run["completed_steps"]) == ("succeeded", 405, 405)
    assert run["finished_at"] is not None and json.loads(run["recipe_snapshot"])["name"] == "Al2O3 TMA/H2O (fast)"
    steps = await db.fetch("select * from run_steps where run_id = $1 order by seq", run["id"])
    assert len(steps) == 405 and all(s["status"] == "succeeded" for s in steps)
    pulses = [s for s in steps if s["type"] == "valve"]
    assert len(pulses) == 200
    # The reference map's valves are PLC-timed: every pulse held at least its duration by the PLC's own
    # measurement, typically within a millisecond (precise figures: bench/RESULTS.md; here the simulator shares
    # this test process and its event loop with the agent and the stack's API, so a rare late close is the
    # test's, not the agent's). The step around it adds the handshake's round trips (generous bound).
    details = [json.loads(s["detail"]) for s in pulses]
    assert {d["timed_by"] for d in details} == {"plc"} and {d["plc_status"] for d in details} == {"done"}
    errors = sorted(d["timing_error_ms"] for d in details)
    assert errors[0] > -0.01 and errors[len(errors) // 2] < 10 and errors[-1] < 250, errors[-5:]
    overhead = sorted(s["actual_ms"] - s["planned_ms"] for s in pulses)
    assert overhead[0] > -1 and overhead[len(overhead) // 2] < 100 and overhead[-1] < 500, overhead[-5:]

    assert {e.valve for e in simulator.valve_events} == {1, 2}
    assert sum(e.open for e in simulator.valve_events) == 200  # every pulse opened once ...
    assert not any(simulator.image.get(simulator.register_map[f"valve_{n}.state"]) for n in range(1, 7))  # closed
    machine = await db.fetchrow("select status, current_run_id from machines where id = $1", SEED_MACHINE_ID)
    assert tuple(machine) == ("idle", None)
    frames = await db.fetchval("select count(*) from parameter_history where run_id = $1", run["id"])
    assert frames > 0  # telemetry taken during the run is tagged with it


@over_plc_connections
async def test_nested_loops_run_in_order(start_agent: StartAgent, db: asyncpg.Connection, plc_connections: int) -> None:
    await active_agent(start_agent, PLC_CONNECTIONS=plc_connections)
    recipe_id = await insert_recipe(db, "nested", [loop(2, loop(3, valve(1, 10)), wait(5))])
    command_id = await insert_command(db, SEED_MACHINE_ID, "start_recipe", {"recipe_id": recipe_id})
    assert (await until_final(db, command_id))["status"] == "succeeded"
    run = await run_of(db, command_id)
    await eventually(lambda: _count(db, run["id"], 8), within=10)
    steps = await db.fetch("select path, type from run_steps where run_id = $1 order by seq", run["id"])
    assert [s["type"] for s in steps] == ["valve"] * 3 + ["wait"] + ["valve"] * 3 + ["wait"]
    assert run["total_steps"] == 8


async def _count(db: asyncpg.Connection, run_id: object, n: int) -> bool:
    return await db.fetchval("select count(*) from run_steps where run_id = $1", run_id) == n


@over_plc_connections
async def test_pause_and_resume(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator, plc_connections: int
) -> None:
    agent = await active_agent(start_agent, PLC_CONNECTIONS=plc_connections)
    recipe_id = await insert_recipe(db, "slow", [loop(30, valve(1, 20), wait(80))])
    start = await insert_command(db, SEED_MACHINE_ID, "start_recipe", {"recipe_id": recipe_id})
    await eventually(lambda: agent.parts.runs.active is not None, within=15)
    pause = await insert_command(db, SEED_MACHINE_ID, "pause_recipe", {})
    assert (await until_final(db, pause))["status"] == "succeeded"
    await eventually(lambda: agent.parts.runs.paused, within=5)
    await eventually(lambda: agent.parts.spool.stats.depth == 0)
    assert (await run_of(db, start))["status"] == "paused"
    assert await db.fetchval("select status from machines where id = $1", SEED_MACHINE_ID) == "paused"
    assert simulator.image.get(simulator.register_map["valve_1.state"]) is False  # paused with valves closed
    frozen = agent.parts.runs.active.row["completed_steps"]
    await asyncio.sleep(0.5)
    assert agent.parts.runs.active.row["completed_steps"] == frozen
    resume = await insert_command(db, SEED_MACHINE_ID, "resume_recipe", {})
    assert (await until_final(db, resume))["status"] == "succeeded"
    assert (await until_final(db, start))["status"] == "succeeded"
    run = await run_of(db, start)
    assert run["completed_steps"] == 60


@over_plc_connections
async def test_stop_closes_the_valve_mid_pulse_within_100_ms(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator, plc_connections: int
) -> None:
    agent = await active_agent(start_agent, PLC_CONNECTIONS=plc_connections)
    recipe_id = await insert_recipe(db, "long pulse", [valve(3, 10_000)])
    start = await insert_command(db, SEED_MACHINE_ID, "start_recipe", {"recipe_id": recipe_id})
    await eventually(lambda: simulator.image.get(simulator.register_map["valve_3.state"]) is True, within=15)
    assert simulator.client_connections == plc_connections
    stopped_at = time.monotonic()
    agent.parts.runs.stop("test stop")  # the stop path itself; the command path is covered below
    await eventually(lambda: simulator.image.get(simulator.register_map["valve_3.state"]) is False, within=2)
    closed = [e for e in simulator.valve_events if e.valve == 3 and not e.open][-1]
    assert closed.t - stopped_at < 0.1
    row = await until_final(db, start)
    assert row["status"] == "failed" and "aborted" in row["error"]
    await eventually(lambda: agent.parts.spool.stats.depth == 0)
    assert (await run_of(db, start))["status"] == "aborted"


async def test_a_stop_command_aborts_the_run(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator
) -> None:
    await active_agent(start_agent)
    recipe_id = await insert_recipe(db, "long pulse", [valve(2, 10_000)])
    start = await insert_command(db, SEED_MACHINE_ID, "start_recipe", {"recipe_id": recipe_id})
    await eventually(lambda: simulator.image.get(simulator.register_map["valve_2.state"]) is True, within=15)
    stop_id = await insert_command(db, SEED_MACHINE_ID, "stop_recipe", {})
    assert (await until_final(db, stop_id))["status"] == "succeeded"
    # `succeeded` means done, not asked: the valve is shut and the run row already says so (it ships first)
    assert simulator.image.get(simulator.register_map["valve_2.state"]) is False
    assert (await run_of(db, start))["status"] == "aborted"

    claimed = (await command_row(db, stop_id))["claimed_at"]
    closed = [e for e in simulator.valve_events if e.valve == 2 and not e.open][-1]
    closed_wall = datetime.now(UTC) - timedelta(seconds=time.monotonic() - closed.t)
    assert (closed_wall - claimed).total_seconds() < 0.1 + 0.05  # claim → valve closed (+ clock reading slack)
    assert (await until_final(db, start))["status"] == "failed"


@over_plc_connections
async def test_plc_drop_mid_run_fails_the_run_and_safe_state_follows_the_plc_back(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator, plc_connections: int
) -> None:
    agent = await active_agent(start_agent, PLC_CONNECTIONS=plc_connections)
    recipe_id = await insert_recipe(db, "pulses", [setpoint("mfc_1.flow_sp", 50), loop(200, valve(1, 30), wait(30))])
    start = await insert_command(db, SEED_MACHINE_ID, "start_recipe", {"recipe_id": recipe_id})
    await eventually(
        lambda: agent.parts.runs.active is not None and agent.parts.runs.active.row["completed_steps"] > 5, within=15
    )
    await simulator.unplug()
    row = await until_final(db, start, within=30)
    assert row["status"] == "failed"
    await eventually(lambda: agent.parts.spool.stats.depth == 0)
    run = await run_of(db, start)
    assert run["status"] == "failed" and run["error"]
    assert await db.fetchval("select status from machines where id = $1", SEED_MACHINE_ID) == "error"
    simulator.image.set(simulator.register_map["valve_1.state"], True)  # as if the PLC came back with it open
    await simulator.replug()
    # the safe state is written valves first, MFC last: wait for all of it, then for the agent to know it
    await eventually(
        lambda: (
            simulator.image.get(simulator.register_map["valve_1.state"]) is False
            and simulator.image.get(simulator.register_map["mfc_1.flow_sp"]) == 0
        ),
        within=15,
    )
    await eventually(lambda: not agent.parts.gate.safe_state_pending)


@pytest.mark.parametrize(
    ("kind", "payload", "reason"),
    [
        ("start_recipe", {"recipe_id": "00000000-0000-4000-8000-00000000beef"}, "unknown recipe"),
        ("start_recipe", {}, "recipe_id: Field required"),
        ("set_parameter", {"key": "no.such", "value": 1}, "unknown parameter 'no.such'"),
        ("set_parameter", {"key": "mfc_1.flow_sp", "value": 500}, "above the maximum 200 sccm"),
        ("set_parameter", {"key": "mfc_1.flow", "value": 5}, "mfc_1.flow is read-only"),
        ("set_parameter", {"key": "valve_1.state", "value": "open"}, "must be a number or a boolean"),
        ("resume_recipe", {}, "cannot resume: no recipe is running"),
        ("stop_recipe", {}, "cannot stop: no recipe is running"),
    ],
    ids=[
        "unknown-recipe",
        "no-recipe-id",
        "unknown-parameter",
        "out-of-range",
        "read-only",
        "wrong-type",
        "resume-not-paused",
        "stop-nothing",
    ],
)
async def test_bad_commands_are_rejected_with_a_precise_reason(
    start_agent: StartAgent,
    db: asyncpg.Connection,
    kind: str,
    payload: dict,
    reason: str,  # type: ignore[type-arg]
) -> None:
    await active_agent(start_agent)
    command_id = await insert_command(db, SEED_MACHINE_ID, kind, payload)
    row = await until_final(db, command_id)
    assert row["status"] == "rejected"
    assert reason in row["error"]


async def test_an_invalid_recipe_is_rejected_with_every_problem(
    start_agent: StartAgent, db: asyncpg.Connection
) -> None:
    await active_agent(start_agent)
    recipe_id = await insert_recipe(db, "broken", [valve(9, 10), setpoint("mfc_1.flow_sp", 999), loop(2)])
    row = await until_final(db, await insert_command(db, SEED_MACHINE_ID, "start_recipe", {"recipe_id": recipe_id}))
    assert row["status"] == "rejected"
    assert len(row["error"].splitlines()) >= 4  # header + the three problems, each on its line


async def test_set_parameter_is_refused_while_running_and_allowed_while_paused(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator
) -> None:
    agent = await active_agent(start_agent)
    recipe_id = await insert_recipe(db, "slow", [loop(50, wait(100))])
    start = await insert_command(db, SEED_MACHINE_ID, "start_recipe", {"recipe_id": recipe_id})
    await eventually(lambda: agent.parts.runs.active is not None, within=15)
    refused = await until_final(
        db, await insert_command(db, SEED_MACHINE_ID, "set_parameter", {"key": "mfc_1.flow_sp", "value": 30})
    )
    assert refused["status"] == "rejected" and "only allowed while it is paused" in refused["error"]
    second = await until_final(db, await insert_command(db, SEED_MACHINE_ID, "start_recipe", {"recipe_id": recipe_id}))
    assert second["status"] == "rejected" and "already active" in second["error"]
    await until_final(db, await insert_command(db, SEED_MACHINE_ID, "pause_recipe", {}))
    await eventually(lambda: agent.parts.runs.paused, within=5)
    allowed = await until_final(
        db, await insert_command(db, SEED_MACHINE_ID, "set_parameter", {"key": "mfc_1.flow_sp", "value": 30})
    )
    assert allowed["status"] == "succeeded"
    assert simulator.image.get(simulator.register_map["mfc_1.flow_sp"]) == 30
    await until_final(db, await insert_command(db, SEED_MACHINE_ID, "stop_recipe", {}))
    assert (await until_final(db, start))["status"] == "failed"


async def test_duplicates_and_a_racing_second_agent_execute_each_command_once(
    start_agent: StartAgent, db: asyncpg.Connection
) -> None:
    blue = await active_agent(start_agent)
    green = await start_agent(AGENT_COLOR="green", COMMAND_POLL_INTERVAL=0.3, HTTP_PORT=0)
    recipe_id = await insert_recipe(db, "short", [valve(1, 10)])
    ids = []
    for _ in range(5):
        ids.append(await insert_command(db, SEED_MACHINE_ID, "start_recipe", {"recipe_id": recipe_id}))
        for agent in (blue, green):  # the same command delivered again, to both agents
            agent.parts.intake._offer(ids[-1])
            agent.parts.intake.poke()
        await until_final(db, ids[-1])
    for command_id in ids:
        row = await command_row(db, command_id)
        assert row["status"] == "succeeded" and row["claimed_by"] == blue.instance_id
        assert await db.fetchval("select count(*) from process_runs where command_id = $1", command_id) == 1
    assert green.parts.intake.claimed == 0 and not green.parts.lease.valid()


async def test_a_command_inserted_while_realtime_is_down_is_picked_up_by_the_poll(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator
) -> None:
    agent = await active_agent(start_agent, COMMAND_POLL_INTERVAL=0.5)
    agent.parts.cloud._supervisor.cancel()  # the socket goes down and does not come back
    await agent.parts.cloud.client.remove_all_channels()
    command_id = await insert_command(db, SEED_MACHINE_ID, "set_parameter", {"key": "mfc_1.flow_sp", "value": 42})
    assert (await until_final(db, command_id, within=10))["status"] == "succeeded"
    assert simulator.image.get(simulator.register_map["mfc_1.flow_sp"]) == 42


async def test_an_expired_command_never_runs_after_a_restart(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator
) -> None:
    command_id = await insert_command(
        db,
        SEED_MACHINE_ID,
        "set_parameter",
        {"key": "mfc_1.flow_sp", "value": 77},
        expires_at=datetime.now(UTC) + timedelta(seconds=1),
    )
    await asyncio.sleep(1.5)  # no agent was running while it was fresh
    await active_agent(start_agent)
    assert (await until_final(db, command_id))["status"] == "expired"
    assert simulator.image.get(simulator.register_map["mfc_1.flow_sp"]) != 77


async def test_a_run_cut_by_a_crash_is_marked_interrupted(start_agent: StartAgent, db: asyncpg.Connection) -> None:
    recipe_id = await insert_recipe(db, "left behind", [wait(10)])
    run_id = await db.fetchval(
        "insert into process_runs (machine_id, recipe_id, status, total_steps) values ($1, $2, 'running', 1) "
        "returning id",
        SEED_MACHINE_ID,
        recipe_id,
    )
    agent = await active_agent(start_agent)
    await eventually(lambda: agent.parts.spool.stats.depth == 0)

    async def interrupted() -> bool:
        return await db.fetchval("select status from process_runs where id = $1", run_id) == "interrupted"

    await eventually(interrupted, within=10)


@pytest.mark.timeout(90)
@over_plc_connections
async def test_sigterm_mid_run_leaves_the_machine_safe_and_recorded(
    process_env: ProcessEnv, simulator: Simulator, db: asyncpg.Connection, plc_connections: int
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent",
        "run",
        env=process_env(COMMAND_POLL_INTERVAL=0.5, PLC_CONNECTIONS=plc_connections),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )

    try:
        recipe_id = await insert_recipe(db, "long pulse", [loop(2, valve(4, 10_000))])
        start = await insert_command(db, SEED_MACHINE_ID, "start_recipe", {"recipe_id": recipe_id})
        await eventually(lambda: simulator.image.get(simulator.register_map["valve_4.state"]) is True, within=30)
        assert simulator.client_connections == plc_connections  # the agent process holds that many sockets
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert simulator.image.get(simulator.register_map["valve_4.state"]) is False
    assert simulator.image.get(simulator.register_map["mfc_1.flow_sp"]) == 0
    run = await run_of(db, start)
    assert run["status"] == "aborted" and "shutting down" in run["error"]
    assert (await command_row(db, start))["status"] == "failed"
    assert await db.fetchval("select status from machines where id = $1", SEED_MACHINE_ID) == "offline"


async def _cli(clean_db: BackgroundStack, *args: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLC_", "SUPABASE_", "MACHINE_"))}
    env |= {"SUPABASE_URL": clean_db.url, "SUPABASE_KEY": clean_db.service_key, "MACHINE_ID": SEED_MACHINE_ID}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


async def test_the_command_cli_inserts_like_the_dashboard_and_follows_to_the_end(
    start_agent: StartAgent, db: asyncpg.Connection, clean_db: BackgroundStack
) -> None:
    await active_agent(start_agent)
    recipe_id = await insert_recipe(db, "short", [loop(3, valve(1, 10), wait(10))])
    code, out = await _cli(clean_db, "command", "start-recipe", recipe_id, "--timeout", "30")
    assert code == 0, out
    statuses = [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("command ")][1:]
    assert statuses[-1] == "succeeded"
    assert "succeeded: 6/6 steps in 0:00:0" in out  # the run is followed to its end

    code, out = await _cli(clean_db, "command", "set", "mfc_1.flow_sp", "500")
    assert code == 1 and "rejected: mfc_1.flow_sp: 500 is above the maximum 200 sccm" in out


async def test_recipe_validate_by_id_uses_the_machine_map(clean_db: BackgroundStack) -> None:
    code, out = await _cli(clean_db, "recipe", "validate", "--id", "00000000-0000-4000-8000-000000000101")
    assert code == 0, out
    assert "405 steps" in out


async def test_the_lease_holder_keeps_the_plc_watchdog_alive_and_its_silence_trips_it(
    start_agent: StartAgent, simulator: Simulator
) -> None:
    simulator.model.watchdog_timeout_s = 1.0
    agent = await active_agent(start_agent, WATCHDOG_TIMEOUT=1.0)
    await eventually(lambda: simulator.model.watchdog_armed, within=5)
    await asyncio.sleep(2.0)  # twice the timeout: the agent's toggling keeps it from tripping
    assert not simulator.model.watchdog_tripped
    simulator.image.set(simulator.register_map["valve_5.state"], True)
    agent.stop.set()  # the agent goes away (and with it the toggling)
    await eventually(lambda: simulator.model.watchdog_tripped, within=5)
    assert simulator.image.get(simulator.register_map["valve_5.state"]) is False  # the PLC's own safe state


async def test_a_new_lease_holder_releases_a_tripped_plc_before_its_first_claim(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator
) -> None:
    """The previous agent went away long enough for the PLC watchdog to trip (a rolling deploy's gap): the PLC
    holds MFC at 0 until the watchdog moves. A command waiting in the table must not be claimed into that."""
    simulator.model.watchdog_timeout_s = 0.5
    first = await active_agent(start_agent)
    await eventually(lambda: simulator.model.watchdog_armed, within=5)
    await stop(first)
    await eventually(lambda: simulator.model.watchdog_tripped, within=5)
    command_id = await insert_command(db, SEED_MACHINE_ID, "set_parameter", {"key": "mfc_1.flow_sp", "value": 12})
    await active_agent(start_agent)
    row = await until_final(db, command_id)
    assert (row["status"], row["error"]) == ("succeeded", None)
    assert not simulator.model.watchdog_tripped
    assert simulator.image.get(simulator.register_map["mfc_1.flow_sp"]) == pytest.approx(12)


async def test_an_agent_on_a_machine_scoped_key_runs_the_whole_machine(
    start_agent: StartAgent, db: asyncpg.Connection, clean_db: BackgroundStack, simulator: Simulator
) -> None:
    """SUPABASE_KEY may be a key for this machine only (role ald_agent): map, lease, realtime commands, runs,
    telemetry and heartbeats all work with it. The poll is 60 s, so a prompt claim proves realtime delivered."""
    key = make_machine_key(SEED_MACHINE_ID, secret=clean_db.jwt_secret)
    agent = await active_agent(start_agent, SUPABASE_KEY=key, COMMAND_POLL_INTERVAL=60)
    assert (
        agent.parts.intake is not None
        and agent.parts.intake.watch is not None
        and agent.parts.intake.watch.ready.is_set()
    )
    assert agent.snapshot().key_scope == "machine"  # /health shows it: services.database.key_scope

    recipe_id = await insert_recipe(db, "scoped", [valve(1, 20), wait(10)])
    started = time.monotonic()
    command_id = await insert_command(db, SEED_MACHINE_ID, "start_recipe", {"recipe_id": recipe_id})
    row = await until_final(db, command_id, within=15)
    assert row["status"] == "succeeded" and time.monotonic() - started < 10
    run = await db.fetchrow("select id, status, completed_steps from process_runs where command_id = $1", command_id)
    assert (run["status"], run["completed_steps"]) == ("succeeded", 2)
    await eventually(lambda: _count(db, run["id"], 2))
    for table in ("parameter_latest", "agent_instances"):  # telemetry and heartbeats written with the key
        await eventually(lambda t=table: _rows(db, f"select count(*) from {t} where machine_id = $1"), within=10)
    assert agent.parts.spool is not None and await agent.parts.spool.quarantined() == []


async def _rows(db: asyncpg.Connection, query: str) -> bool:
    return await db.fetchval(query, SEED_MACHINE_ID) > 0
