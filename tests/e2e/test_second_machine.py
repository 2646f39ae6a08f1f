"""A second machine, onboarded the documented way, works end to end with its own machine key: the real agent
samples the simulator and its rows land under that machine (nothing quarantined); an unknown MACHINE_ID does
not start at all (before, it came "up" and quarantined every record on a foreign key)."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from agent.cloud import CloudClient
from agent.errors import ConfigError
from agent.onboarding import machine_key, register_machine
from agent.plc import load_default_map
from supalocal.stack import BackgroundStack
from tests.e2e.conftest import StartAgent, stop
from tests.support.poll import eventually


async def test_an_onboarded_machine_ships_its_telemetry_with_its_own_key(
    start_agent: StartAgent, clean_db: BackgroundStack, db: asyncpg.Connection
) -> None:
    async with CloudClient(clean_db.url, clean_db.service_key) as cloud:
        machine = await register_machine(cloud, name="ALD tool 2", serial="ALD-0002", register_map=load_default_map())
    key = machine_key(machine.machine_id, secret=clean_db.jwt_secret)
    agent = await start_agent(MACHINE_ID=machine.machine_id, SUPABASE_KEY=key)
    assert agent.parts is not None and (agent.parts.map_guard.origin, agent.key_scope) == ("database", "machine")
    await eventually(lambda: agent.parts is not None and agent.parts.sampler.stats.ticks >= 5)
    await eventually(lambda: agent.parts is not None and agent.parts.spool.stats.depth == 0)
    await stop(agent)
    assert agent.parts is not None and agent.parts.spool.stats.quarantined == 0
    frames = await db.fetchval("select count(*) from parameter_history where machine_id = $1", machine.machine_id)
    latest = await db.fetchval("select count(*) from parameter_latest where machine_id = $1", machine.machine_id)
    assert frames >= 5 and latest > 0


async def test_an_unknown_machine_does_not_start(start_agent: StartAgent) -> None:
    unknown = str(uuid.uuid4())
    with pytest.raises(ConfigError, match=f"machine {unknown} does not exist in Supabase"):
        await start_agent(MACHINE_ID=unknown)
