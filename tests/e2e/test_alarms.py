"""Process alarms (issue 13), whole-system: the real agent, the local stack behind a proxy the test can cut, and
the simulator over Modbus TCP, whose values the tests drive out of range (`Simulator.force`). Every assertion on
an alarm reads the `alarms` table (what the dashboard sees) or the agent's book (what the console shows).

Durations: frames every 0.2 s; the seed's limits have a 2 s on-delay. A test only ever asserts that something
did *not* happen sooner than it may (lower bounds), or that it happened within a generous bound.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx
import pytest

from agent.app import Agent
from agent.http.health import full_health
from agent.plc.sim import Simulator
from supalocal.stack import BackgroundStack
from supalocal.testing import SEED_MACHINE_ID
from tests.e2e.conftest import StartAgent, stop
from tests.e2e.recipes import insert_command, insert_recipe, loop, purge, valve, wait
from tests.e2e.test_commands import _cli, active_agent, run_of, until_final
from tests.support.poll import eventually
from tests.support.proxy import TcpProxy

TEMP, PRESSURE = "chamber_heater.temperature", "pressure_gauge_1.pressure"


async def alarm_rows(db: asyncpg.Connection, key: str | None = None) -> list[asyncpg.Record]:
    query = "select * from alarms where machine_id = $1" + (" and key = $2" if key else "") + " order by raised_at"
    return await db.fetch(query, SEED_MACHINE_ID, *([key] if key else []))


async def until_alarm(db: asyncpg.Connection, key: str, kind: str, state: str, within: float = 20) -> asyncpg.Record:
    async def there() -> bool:
        return any(r["kind"] == kind and r["state"] == state for r in await alarm_rows(db, key))

    await eventually(there, within=within, every=0.1)
    return next(r for r in await alarm_rows(db, key) if r["kind"] == kind and r["state"] == state)


def book(agent: Agent) -> list[tuple[str, str, str]]:
    assert agent.parts is not None
    return [(a.key, a.kind, a.state) for a in agent.parts.alarms.active()]


async def test_idle_raises_nothing_then_a_runaway_raises_is_acknowledged_and_closes(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator
) -> None:
    agent = await active_agent(start_agent)
    assert agent.parts is not None
    assert len(agent.parts.alarms.limits) >= 10 and agent.parts.alarms.problem is None  # the seed's limits
    await eventually(lambda: agent.snapshot().frames >= 10, within=15)
    assert book(agent) == [] and await alarm_rows(db) == []  # the simulator's idle state raises none

    simulator.force(TEMP, 360.0)
    row = await until_alarm(db, TEMP, "high", "active_unacked")
    assert (row["severity"], row["value"], row["limit_value"]) == ("high", pytest.approx(360.0), 350.0)
    assert "chamber_heater.temperature high (> 350): 360" in row["message"]
    assert book(agent) == [(TEMP, "high", "active_unacked")]
    assert agent.snapshot().alarms_active["high"] == 1
    assert 'ald_alarms_active{severity="high"} 1.0' in agent.parts.metrics.render().decode()
    assert full_health(agent.snapshot())[1]["alarms"]["unacknowledged"] == 1

    for value in (349.0, 351.0, 349.0, 351.0, 349.0):  # hovering inside the 2 °C deadband: no chatter, no clear
        simulator.force(TEMP, value)
        await asyncio.sleep(0.3)
    assert book(agent) == [(TEMP, "high", "active_unacked")]

    command = await insert_command(db, SEED_MACHINE_ID, "ack_alarm", {"alarm_id": str(row["id"])})
    done = await until_final(db, command)
    assert done["status"] == "succeeded", done["error"]
    acked = await db.fetchrow("select * from alarms where id = $1", row["id"])
    assert acked["state"] == "active_acked"  # already there when the command reads succeeded (spool order)
    assert acked["acked_by"] == done["requested_by"] and acked["acked_at"] is not None

    simulator.force(TEMP, 300.0)
    closed = await until_alarm(db, TEMP, "high", "closed")
    assert closed["id"] == row["id"] and closed["cleared_at"] >= closed["acked_at"]
    assert len(await alarm_rows(db, TEMP)) == 1  # one excursion, one alarm
    assert book(agent) == [] and agent.snapshot().alarms_active["high"] == 0
    simulator.force(TEMP, None)


async def test_an_alarm_back_to_normal_before_its_ack_waits_for_the_cli_acknowledgement(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator, clean_db: BackgroundStack
) -> None:
    agent = await active_agent(start_agent)
    simulator.force(PRESSURE, 600.0)  # a leak
    raised = await until_alarm(db, PRESSURE, "high", "active_unacked")
    simulator.force(PRESSURE, 12.0)
    await until_alarm(db, PRESSURE, "high", "cleared_unacked")
    assert book(agent) == [(PRESSURE, "high", "cleared_unacked")]  # still shown: nobody has seen it

    code, out = await _cli(clean_db, "alarms", "list")
    assert code == 0 and str(raised["id"]) in out and "cleared_unacked" in out, out
    code, out = await _cli(clean_db, "command", "ack-alarm", "all")
    assert code == 0 and "succeeded" in out, out
    closed = await until_alarm(db, PRESSURE, "high", "closed", within=5)
    assert closed["acked_by"].startswith("cli:") and "@" in closed["acked_by"]
    assert book(agent) == []
    simulator.force(PRESSURE, None)


async def test_a_short_excursion_raises_nothing_and_a_long_one_raises_after_the_on_delay(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator
) -> None:
    await db.execute("update alarm_limits set on_delay_ms = 3000 where key = $1", TEMP)
    agent = await active_agent(start_agent)
    simulator.force(TEMP, 360.0)
    await asyncio.sleep(0.6)  # three frames beyond the limit, far short of the 3 s on-delay
    simulator.force(TEMP, 100.0)
    await asyncio.sleep(4.0)
    assert await alarm_rows(db, TEMP) == [] and book(agent) == []

    simulator.force(TEMP, 360.0)
    forced_at = time.monotonic()
    await eventually(lambda: book(agent) == [(TEMP, "high", "active_unacked")], within=20)
    assert time.monotonic() - forced_at >= 2.9  # never before the on-delay
    simulator.force(TEMP, None)


async def test_limits_edited_in_the_dashboard_apply_live(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator
) -> None:
    agent = await active_agent(start_agent)
    await eventually(lambda: agent.snapshot().frames >= 5, within=15)
    assert book(agent) == []
    await db.execute("update alarm_limits set high = 5, on_delay_ms = 0 where key = $1", PRESSURE)  # below base
    await until_alarm(db, PRESSURE, "high", "active_unacked", within=15)
    await db.execute("update alarm_limits set high = 500 where key = $1", PRESSURE)
    await until_alarm(db, PRESSURE, "high", "cleared_unacked", within=15)
    await db.execute("delete from alarm_limits where key = $1", TEMP)
    await eventually(lambda: agent.parts is not None and agent.parts.alarms.limits.get(TEMP, "high") is None)  # type: ignore[arg-type]


async def test_a_trip_interlock_appears_as_a_critical_alarm(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator
) -> None:
    agent = await active_agent(start_agent)
    recipe_id = await insert_recipe(db, "tripped", [valve(1, 100), loop(40, purge(100, 20), wait(100))])
    command = await insert_command(db, SEED_MACHINE_ID, "start_recipe", {"recipe_id": recipe_id})
    await eventually(lambda: [(e.valve, e.open) for e in simulator.valve_events] == [(1, True), (1, False)], within=15)
    simulator.force(TEMP, 395.0)  # heater runaway: chamber-overtemperature (hold 0)

    trip = await until_alarm(db, "chamber-overtemperature", "trip", "active_unacked")
    assert trip["severity"] == "critical" and trip["value"] == pytest.approx(395.0) and trip["limit_value"] == 380
    assert "chamber_heater.temperature is 395" in trip["message"]
    assert (await until_final(db, command))["status"] == "failed"
    run = await run_of(db, command)
    assert run["status"] == "aborted" and trip["run_id"] == run["id"]  # the alarm names the run it stopped
    await until_alarm(db, TEMP, "high_high", "active_unacked")  # the limit alarms follow after their on-delay

    simulator.force(TEMP, 300.0)  # the interlock holds again
    await until_alarm(db, "chamber-overtemperature", "trip", "cleared_unacked")
    assert ("chamber-overtemperature", "trip", "cleared_unacked") in book(agent)
    simulator.force(TEMP, None)


async def test_alarms_raised_while_the_cloud_is_away_are_spooled_and_delivered_in_order(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator, cloud_proxy: TcpProxy
) -> None:
    agent = await active_agent(start_agent)
    assert agent.parts is not None
    await cloud_proxy.cut()
    simulator.force(PRESSURE, 600.0)
    await eventually(lambda: book(agent) == [(PRESSURE, "high", "active_unacked")], within=15)
    simulator.force(PRESSURE, 12.0)
    await eventually(lambda: book(agent) == [(PRESSURE, "high", "cleared_unacked")], within=15)
    await eventually(lambda: not agent.parts.writer.pending(("alarm",)), within=5)  # type: ignore[union-attr]
    spooled = [r.payload["state"] for r in await agent.parts.spool.peek("alarm", 100)]
    assert spooled == ["active_unacked", "cleared_unacked"]  # both moves kept, in order
    assert await alarm_rows(db) == []

    await cloud_proxy.restore()
    row = await until_alarm(db, PRESSURE, "high", "cleared_unacked", within=30)
    assert row["raised_at"] < row["cleared_at"] and row["value"] == pytest.approx(600.0)
    await eventually(lambda: agent.parts is not None and agent.parts.spool.stats.depth == 0, within=15)
    assert agent.snapshot().quarantined == 0
    simulator.force(PRESSURE, None)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"alarm_id": 42}, 'alarm_id: must be an alarm id (a UUID) or "all", got int'),
        ({"alarm_id": "12-34"}, "alarm_id: must be an alarm id (a UUID) or \"all\", got '12-34'"),
        ({}, "alarm_id: Field required"),
        ({"alarm_id": "all", "by": "me"}, "by: Extra inputs are not permitted"),
        (
            {"alarm_id": "00000000-0000-4000-8000-00000000dead"},
            "no open alarm 00000000-0000-4000-8000-00000000dead on this machine",
        ),
    ],
    ids=["number", "not-a-uuid", "missing", "unknown-field", "unknown-alarm"],
)
async def test_a_bad_acknowledgement_is_rejected_with_a_clear_reason_and_loses_nothing(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator, payload: dict[str, object], reason: str
) -> None:
    agent = await active_agent(start_agent)
    simulator.force(PRESSURE, 600.0)
    alarm = await until_alarm(db, PRESSURE, "high", "active_unacked")
    row = await until_final(db, await insert_command(db, SEED_MACHINE_ID, "ack_alarm", payload))
    assert row["status"] == "rejected" and reason in row["error"], row["error"]
    assert (await db.fetchrow("select state from alarms where id = $1", alarm["id"]))["state"] == "active_unacked"
    assert book(agent) == [(PRESSURE, "high", "active_unacked")]
    await eventually(lambda: agent.parts is not None and agent.parts.spool.stats.depth == 0, within=15)
    assert agent.snapshot().quarantined == 0
    simulator.force(PRESSURE, None)


async def test_open_alarms_survive_a_restart_and_are_not_raised_twice(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator, cloud_proxy: TcpProxy
) -> None:
    agent = await active_agent(start_agent)
    simulator.force(PRESSURE, 600.0)
    alarm = await until_alarm(db, PRESSURE, "high", "active_unacked")
    await stop(agent)

    again = await active_agent(start_agent)  # same color: same spool, same identity
    assert again.parts is not None
    assert [a.id for a in again.parts.alarms.active()] == [str(alarm["id"])]
    await asyncio.sleep(3.0)  # still beyond the limit for longer than the on-delay
    assert len(await alarm_rows(db, PRESSURE)) == 1
    done = await until_final(db, await insert_command(db, SEED_MACHINE_ID, "ack_alarm", {"alarm_id": "all"}))
    assert done["status"] == "succeeded", done["error"]
    await until_alarm(db, PRESSURE, "high", "active_acked", within=10)
    await stop(again)

    await cloud_proxy.cut()  # a restart with Supabase away: the local cache remembers
    offline = await start_agent()
    assert offline.parts is not None
    assert [(a.id, a.state) for a in offline.parts.alarms.active()] == [(str(alarm["id"]), "active_acked")]
    await cloud_proxy.restore()
    simulator.force(PRESSURE, None)


async def test_a_hand_over_neither_raises_an_alarm_twice_nor_reopens_one(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator
) -> None:
    token = "test-admin-token-at-least-32-characters"
    blue = await active_agent(start_agent, ADMIN_TOKEN=token)
    green = await start_agent(AGENT_COLOR="green", ADMIN_TOKEN=token, COMMAND_POLL_INTERVAL=0.5)
    simulator.force(PRESSURE, 600.0)
    alarm = await until_alarm(db, PRESSURE, "high", "active_unacked")
    done = await until_final(db, await insert_command(db, SEED_MACHINE_ID, "ack_alarm", {"alarm_id": "all"}))
    assert done["status"] == "succeeded" and done["claimed_by"] == blue.instance_id
    assert green.parts is not None and green.parts.alarms.stale  # green has not been watching

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{blue.http_port}") as http:
        assert (await http.post("/admin/handover", headers={"Authorization": f"Bearer {token}"})).status_code in (
            200,
            202,
        )
    await eventually(lambda: green.parts is not None and green.parts.fence.publishes(), within=30)
    await eventually(lambda: book(green) == [(PRESSURE, "high", "active_acked")], within=15)  # what blue left
    await asyncio.sleep(3.0)  # longer than the on-delay, still beyond the limit
    assert [r["id"] for r in await alarm_rows(db, PRESSURE)] == [alarm["id"]]  # not raised a second time

    simulator.force(PRESSURE, 12.0)
    closed = await until_alarm(db, PRESSURE, "high", "closed")  # acknowledged by blue, back to normal under green
    assert closed["acked_by"] == done["requested_by"]
    simulator.force(PRESSURE, None)
