"""Blue/green hand-over between two real agents: never cuts a recipe, never loses or doubles a command."""

from __future__ import annotations

import asyncpg
import httpx

from supalocal.testing import SEED_MACHINE_ID
from tests.e2e.conftest import StartAgent
from tests.e2e.recipes import insert_command, insert_recipe, loop, valve, wait
from tests.e2e.test_commands import active_agent, command_row, run_of, until_final
from tests.support.poll import eventually

TOKEN = "test-admin-token-at-least-32-characters"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_handover_waits_for_the_recipe_and_the_standby_takes_every_command_once(
    start_agent: StartAgent, db: asyncpg.Connection
) -> None:
    blue = await active_agent(start_agent, ADMIN_TOKEN=TOKEN)
    green = await start_agent(AGENT_COLOR="green", ADMIN_TOKEN=TOKEN, COMMAND_POLL_INTERVAL=0.5)
    recipe_id = await insert_recipe(db, "steady", [loop(15, valve(1, 20), wait(80))])
    start = await insert_command(db, SEED_MACHINE_ID, "start_recipe", {"recipe_id": recipe_id})
    await eventually(lambda: blue.parts.runs.active is not None, within=15)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{blue.http_port}") as http:
        assert (await http.post("/admin/handover")).status_code == 401  # admin needs the token
        reply = await http.post("/admin/handover", headers=AUTH)
        assert reply.status_code == 202 and reply.json()["state"] == "draining"
        during = [
            await insert_command(db, SEED_MACHINE_ID, "set_parameter", {"key": "mfc_1.flow_sp", "value": v})
            for v in (11, 12, 13)
        ]
        assert blue.parts.runs.active is not None and blue.parts.lease.valid()  # the recipe is not cut
        assert (await until_final(db, start, within=30))["status"] == "succeeded"
        await eventually(lambda: green.parts.lease.valid(), within=10)
        assert (await http.get("/admin/handover", headers=AUTH)).json()["state"] == "released"
    assert not blue.parts.lease.valid()
    for command_id in during:
        row = await until_final(db, command_id, within=15)
        assert row["status"] == "succeeded" and row["claimed_by"] == green.instance_id
    assert await db.fetchval("select count(*) from process_runs where command_id = $1", start) == 1
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{green.http_port}") as http:
        health = (await http.get("/health")).json()
    assert (health["role"], health["color"]) == ("active", "green")


async def test_forced_handover_stops_the_recipe_safely_and_activate_takes_it_back(
    start_agent: StartAgent, db: asyncpg.Connection
) -> None:
    blue = await active_agent(start_agent, ADMIN_TOKEN=TOKEN)
    green = await start_agent(AGENT_COLOR="green", ADMIN_TOKEN=TOKEN, COMMAND_POLL_INTERVAL=0.5)
    recipe_id = await insert_recipe(db, "long", [loop(2, valve(1, 10_000))])
    start = await insert_command(db, SEED_MACHINE_ID, "start_recipe", {"recipe_id": recipe_id})
    await eventually(lambda: blue.parts.runs.active is not None, within=15)
    async with httpx.AsyncClient() as http:
        reply = await http.post(f"http://127.0.0.1:{blue.http_port}/admin/handover?force=true", headers=AUTH)
        assert reply.status_code == 202
        await eventually(lambda: green.parts.lease.valid(), within=10)
        assert (await until_final(db, start))["status"] == "failed"
        await eventually(lambda: blue.parts.spool.stats.depth == 0)
        assert (await run_of(db, start))["status"] == "aborted"
        # rollback: green hands back, blue holds again
        await http.post(f"http://127.0.0.1:{green.http_port}/admin/handover", headers=AUTH)
        await http.post(f"http://127.0.0.1:{blue.http_port}/admin/activate", headers=AUTH)
        await eventually(lambda: blue.parts.lease.valid(), within=10)
    command_id = await insert_command(db, SEED_MACHINE_ID, "set_parameter", {"key": "mfc_1.flow_sp", "value": 5})
    assert (await until_final(db, command_id))["status"] == "succeeded"
    assert (await command_row(db, command_id))["claimed_by"] == blue.instance_id


async def test_handover_can_answer_once_released(start_agent: StartAgent) -> None:
    blue = await active_agent(start_agent, ADMIN_TOKEN=TOKEN, AGENT_VERSION="v1.2.3")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{blue.http_port}") as http:
        assert (await http.get("/health")).json()["version"] == "v1.2.3"
        assert (await http.post("/admin/handover?wait=abc", headers=AUTH)).status_code == 400
        reply = await http.post("/admin/handover?wait=5", headers=AUTH)
    assert reply.status_code == 200 and reply.json()["state"] == "released"
    assert not blue.parts.lease.valid()
