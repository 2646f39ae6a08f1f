"""A machine-scoped key (role `ald_agent`, claim `machine_id`) does what an agent does, for its machine only.

Through the agent's own CloudClient (the official supabase client) against the session stack with our
migrations: what the key may read and write, and what it is refused, with the PostgreSQL code the agent
classifies (42501: insufficient privilege / row-level security).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from agent.cloud import CloudClient, Watch
from agent.errors import CloudPermanentError
from supalocal.auth import MACHINE_ROLE, make_api_key, make_machine_key
from supalocal.stack import BackgroundStack
from supalocal.testing import SEED_MACHINE_ID
from tests.support.poll import eventually

OTHER = "00000000-0000-4000-8000-000000000002"
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC).isoformat()


@pytest.fixture
async def db(clean_db: BackgroundStack) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(clean_db.db_url)
    await conn.execute("insert into public.machines (id, name) values ($1, 'other reactor')", OTHER)
    await conn.execute(
        "insert into public.parameters (machine_id, key, component, name, data_type, register, address) "
        "values ($1, 'mfc_1.flow', 'mfc_1', 'flow', 'float32', 'input', 0)",
        OTHER,
    )
    yield conn
    await conn.close()


@pytest.fixture
async def scoped(clean_db: BackgroundStack, db: asyncpg.Connection) -> AsyncIterator[CloudClient]:
    async with CloudClient(clean_db.url, make_machine_key(SEED_MACHINE_ID, secret=clean_db.jwt_secret)) as cloud:
        yield cloud


async def command(db: asyncpg.Connection, machine_id: str) -> int:
    return await db.fetchval(
        "insert into public.machine_commands (machine_id, type, payload) values ($1, 'stop_recipe', '{}') returning id",
        machine_id,
    )


async def refused(call: object) -> CloudPermanentError:
    with pytest.raises(CloudPermanentError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def test_reads_its_machine_its_map_and_every_recipe_but_no_other_machine(scoped: CloudClient) -> None:
    assert [m["id"] for m in await scoped.select("machines")] == [SEED_MACHINE_ID]
    parameters = await scoped.select("parameters")
    assert len(parameters) == 191 and {p["machine_id"] for p in parameters} == {SEED_MACHINE_ID}
    assert len(await scoped.select("recipes")) == 2 and len(await scoped.select("recipe_steps")) > 0
    assert await scoped.select("parameters", eq={"machine_id": OTHER}) == []


async def test_writes_its_telemetry_runs_and_heartbeats_and_is_refused_for_another_machine(
    scoped: CloudClient, db: asyncpg.Connection
) -> None:
    frame = {"machine_id": SEED_MACHINE_ID, "ts": NOW, "run_id": None, "values": {"mfc_1.flow": 1.0}}
    await scoped.upsert("parameter_history", [frame], on_conflict="machine_id,ts")
    run = {"id": "44444444-4444-4444-8444-444444444444", "machine_id": SEED_MACHINE_ID, "status": "running"}
    await scoped.upsert("process_runs", [run], on_conflict="id")
    step = {"run_id": run["id"], "seq": 0, "path": [0], "type": "wait", "name": "w", "planned_ms": 10,
            "started_at": NOW, "status": "running", "detail": {}}  # fmt: skip
    await scoped.upsert("run_steps", [step], on_conflict="run_id,seq")
    await scoped.update("machines", {"status": "running", "current_run_id": run["id"]}, match={"id": SEED_MACHINE_ID})
    assert await db.fetchval("select current_run_id::text from machines where id = $1", SEED_MACHINE_ID) == run["id"]

    error = await refused(
        scoped.upsert("parameter_history", [frame | {"machine_id": OTHER}], on_conflict="machine_id,ts")
    )
    assert error.code == "42501"
    error = await refused(scoped.upsert("process_runs", [run | {"id": "55555555-5555-4555-8555-555555555555",
                                                                "machine_id": OTHER}], on_conflict="id"))  # fmt: skip
    assert error.code == "42501"
    # another machine's row is not even visible to an update: nothing changes
    await scoped.update("machines", {"status": "error"}, match={"id": OTHER})
    assert await db.fetchval("select status from machines where id = $1", OTHER) != "error"


async def test_its_heartbeat_says_why_it_is_degraded_and_clears_it(scoped: CloudClient, db: asyncpg.Connection) -> None:
    beat = {"instance_id": "blue-1", "machine_id": SEED_MACHINE_ID, "role": "active", "last_seen": NOW,
            "error": "register map refused: parameters x.v: address 65535 outside 0..65534"}  # fmt: skip
    await scoped.upsert("agent_instances", [beat], on_conflict="instance_id")
    status = await db.fetchrow("select error, alive from agent_instance_status where instance_id = 'blue-1'")
    assert status["error"] == beat["error"]
    await scoped.upsert("agent_instances", [beat | {"error": None}], on_conflict="instance_id")
    assert await db.fetchval("select error from agent_instances where instance_id = 'blue-1'") is None


async def test_moves_its_commands_but_cannot_insert_one_or_touch_another_machines(
    scoped: CloudClient, db: asyncpg.Connection
) -> None:
    own, foreign = await command(db, SEED_MACHINE_ID), await command(db, OTHER)
    assert [c["id"] for c in await scoped.select("machine_commands")] == [own]
    await scoped.update("machine_commands", {"status": "rejected", "error": "test"}, match={"id": own})
    await scoped.update("machine_commands", {"status": "rejected", "error": "test"}, match={"id": foreign})
    statuses = dict(await db.fetch("select id, status from machine_commands"))
    assert statuses == {own: "rejected", foreign: "pending"}
    error = await refused(scoped.insert("machine_commands", {"machine_id": SEED_MACHINE_ID, "type": "stop_recipe"}))
    assert error.code == "42501"  # commands come from the dashboard, never from an agent key
    error = await refused(scoped.update("recipes", {"description": "edited by an agent"}, match={"version": 1}))
    assert error.code == "42501"


async def test_lease_and_claim_rpcs_act_for_its_machine_only(scoped: CloudClient, db: asyncpg.Connection) -> None:
    token = await scoped.rpc("acquire_lease", {"p_machine_id": SEED_MACHINE_ID, "p_holder": "blue", "p_ttl_s": 30})
    assert isinstance(token, int)
    own = await command(db, SEED_MACHINE_ID)
    claimed = await scoped.rpc(
        "claim_command", {"p_command_id": own, "p_machine_id": SEED_MACHINE_ID, "p_holder": "blue", "p_token": token}
    )
    assert [c["status"] for c in claimed] == ["claimed"]

    error = await refused(scoped.rpc("acquire_lease", {"p_machine_id": OTHER, "p_holder": "blue", "p_ttl_s": 30}))
    assert error.code == "42501" and "acts for machine" in str(error)
    assert await db.fetchval("select count(*) from machine_leases where machine_id = $1", OTHER) == 0
    for name, params in [
        ("expire_commands", {"p_machine_id": OTHER}),
        ("release_lease", {"p_machine_id": OTHER, "p_holder": "blue", "p_token": token}),
        ("claim_command", {"p_command_id": 1, "p_machine_id": OTHER, "p_holder": "blue", "p_token": token}),
    ]:
        assert (await refused(scoped.rpc(name, params))).code == "42501", name


async def test_a_key_without_a_machine_claim_acts_for_none(clean_db: BackgroundStack, db: asyncpg.Connection) -> None:
    async with CloudClient(clean_db.url, make_api_key(MACHINE_ROLE, secret=clean_db.jwt_secret)) as cloud:
        assert await cloud.select("parameters") == []
        error = await refused(cloud.rpc("acquire_lease", {"p_machine_id": SEED_MACHINE_ID, "p_holder": "x",
                                                          "p_ttl_s": 30}))  # fmt: skip
        assert error.code == "42501"
    assert await db.fetchval("select count(*) from machine_leases") == 0


async def test_behind_a_gateway_the_project_key_is_the_apikey_and_the_machine_key_authorises(
    clean_db: BackgroundStack, db: asyncpg.Connection
) -> None:
    """A hosted project's gateway accepts only its own keys in `apikey`: SUPABASE_API_KEY goes there, the
    machine key as `Authorization: Bearer` and as Realtime's access token. Were the anon key in charge, the
    map would be refused (anon has no grants) and no command event would be delivered (RLS)."""
    key = make_machine_key(SEED_MACHINE_ID, secret=clean_db.jwt_secret)
    events: list[dict] = []
    async with CloudClient(clean_db.url, key, api_key=clean_db.anon_key) as cloud:
        assert len(await cloud.select("parameters")) == 191
        watch = await cloud.watch(Watch("machine_commands", None, events.append, events="INSERT"))
        await asyncio.wait_for(watch.ready.wait(), 10)
        foreign, own = await command(db, OTHER), await command(db, SEED_MACHINE_ID)
        await eventually(lambda: len(events) >= 1, within=10)
        await asyncio.sleep(0.3)  # the other machine's insert had its chance to arrive too
    assert [e["record"]["id"] for e in events] == [own] and foreign != own
