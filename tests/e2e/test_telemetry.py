"""Telemetry end to end: the real agent, the simulator over Modbus TCP, the local stack over HTTP, PostgreSQL.

Each test reads what landed in PostgreSQL, the way the dashboard would see it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.plc.sim import Simulator
from supalocal.testing import SEED_MACHINE_ID
from tests.e2e.conftest import ProcessEnv, StartAgent, stop
from tests.support.poll import eventually
from tests.support.proxy import TcpProxy

#: docs/DESIGN.md §8: zero frames lost across a 60 s Supabase outage. Shorten locally with ALD_E2E_OUTAGE_S.
OUTAGE_S = float(os.environ.get("ALD_E2E_OUTAGE_S", "60"))


async def history(db: asyncpg.Connection) -> list[asyncpg.Record]:
    return await db.fetch(
        'select ts, run_id, "values", read_ms from parameter_history where machine_id = $1 order by ts', SEED_MACHINE_ID
    )


def metric(text: str, name: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    raise KeyError(name)


async def test_frames_land_with_acquisition_time_and_the_live_view_fills(
    start_agent: StartAgent, db: asyncpg.Connection
) -> None:
    agent = await start_agent()
    assert agent.parts is not None and agent.parts.map_guard.origin == "database"
    await eventually(lambda: agent.parts.sampler is not None and agent.parts.sampler.stats.ticks >= 8)
    await eventually(lambda: agent.parts.spool is not None and agent.parts.spool.stats.depth == 0)
    assert await db.fetchval("select status from machines where id = $1", SEED_MACHINE_ID) == "idle"
    await stop(agent)

    rows = await history(db)
    assert len(rows) == agent.parts.sampler.stats.ticks  # every frame, once
    gaps = [b["ts"] - a["ts"] for a, b in itertools.pairwise(rows)]
    assert all(timedelta(seconds=0.1) < g < timedelta(seconds=0.3) for g in gaps)  # acquisition times, 0.2 s apart
    assert all(r["read_ms"] is not None and r["read_ms"] >= 0 for r in rows)  # each frame's read duration recorded
    values = json.loads(rows[-1]["values"])
    logged = {p.key for p in agent.parts.device.map if p.logged}
    assert set(values) == logged and values["vacuum_pump.power_on"] is True
    assert await db.fetchval("select count(*) from parameter_latest where machine_id = $1", SEED_MACHINE_ID) == 191
    assert await db.fetchval("select status from machines where id = $1", SEED_MACHINE_ID) == "offline"
    beat = await db.fetchrow(
        "select role, color, plc_connected from agent_instances where machine_id = $1", SEED_MACHINE_ID
    )
    assert tuple(beat) == ("active", "blue", True)


async def test_paced_frames_wait_in_the_spool_and_a_shutdown_ships_every_one(
    start_agent: StartAgent, db: asyncpg.Connection
) -> None:
    """`TELEMETRY_SHIP_GAP` reaches the shipper, and the shutdown's flush never waits for the gap (DESIGN §5
    "Spool"): with the longest gap (5 s), the frames after the first requests stay in the spool, durable, until
    the stop ships them all. Without pacing every frame but the one in flight would be in the table."""
    agent = await start_agent(PARAMETER_LOGGING_INTERVAL=0.1, TELEMETRY_SHIP_GAP=5)
    assert agent.parts is not None
    # unpaced, at most the frame in flight is pending: this never comes true
    await eventually(lambda: agent.parts.spool.pending("history") >= 10)  # the sampler goes on, the frames wait
    await stop(agent)
    assert len(await history(db)) == agent.parts.sampler.stats.ticks  # every frame, once, shipped at the stop


@pytest.mark.timeout(OUTAGE_S + 120)
async def test_a_supabase_outage_loses_no_frame(
    start_agent: StartAgent, cloud_proxy: TcpProxy, db: asyncpg.Connection
) -> None:
    agent = await start_agent(PARAMETER_LOGGING_INTERVAL=0.1)
    await eventually(lambda: agent.parts.sampler.stats.ticks >= 5 and agent.parts.spool.stats.depth == 0)
    await cloud_proxy.cut()
    await eventually(lambda: not agent.snapshot().database_connected, within=20)
    during = agent.snapshot()
    await eventually(
        lambda: agent.parts.sampler.stats.ticks * 0.1 >= during.frames * 0.1 + OUTAGE_S, within=OUTAGE_S + 30, every=0.5
    )
    assert agent.parts.spool.stats.depth > OUTAGE_S / 0.1 * 0.9  # buffered locally
    await cloud_proxy.restore()
    await eventually(lambda: agent.parts.spool.stats.depth == 0, within=60)
    await stop(agent)
    rows = await history(db)
    assert len(rows) == agent.parts.sampler.stats.ticks  # zero frames lost

    spacing = [b["ts"] - a["ts"] for a, b in itertools.pairwise(rows)]
    # no hole where the outage was (a tick skipped under CI load would show as 0.2 s, never as seconds)
    assert max(spacing) < timedelta(seconds=0.1 * (agent.parts.sampler.stats.skipped + 1.9))


async def test_an_unplugged_plc_gives_nulls_then_recovers(
    start_agent: StartAgent, simulator: Simulator, db: asyncpg.Connection
) -> None:
    agent = await start_agent()
    metrics_url = f"http://127.0.0.1:{agent.http_port}/metrics"
    async with httpx.AsyncClient() as http:
        await eventually(lambda: agent.parts.sampler.stats.ticks >= 3)
        assert metric((await http.get(metrics_url)).text, "ald_plc_connected") == 1
        await simulator.unplug()
        await eventually(lambda: not agent.snapshot().plc_connected)
        await eventually(lambda: agent.parts.sampler.stats.failed_frames >= 3)
        assert metric((await http.get(metrics_url)).text, "ald_plc_connected") == 0
        health = (await http.get(f"http://127.0.0.1:{agent.http_port}/health")).json()
        assert health["services"]["plc"]["status"] == "down"
        await simulator.replug()
        await eventually(lambda: agent.snapshot().plc_connected, within=20)
        recovered = agent.parts.sampler.stats.ticks
        await eventually(lambda: agent.parts.sampler.stats.ticks >= recovered + 3)
        assert metric((await http.get(metrics_url)).text, "ald_plc_connected") == 1
    await eventually(lambda: agent.parts.spool.stats.depth == 0)
    await stop(agent)
    frames = [json.loads(r["values"]) for r in await history(db)]
    blank = [f for f in frames if all(v is None for v in f.values())]
    assert blank, "frames taken while the PLC was away are all-null, never old values"
    assert frames[-1]["pressure_gauge_1.pressure"] is not None  # and values return


async def test_the_spool_bound_drops_oldest_telemetry_only(start_agent: StartAgent, cloud_proxy: TcpProxy) -> None:
    await cloud_proxy.cut()
    agent = await start_agent(SPOOL_MAX_MB=0.05, PARAMETER_LOGGING_INTERVAL=0.05)
    await eventually(lambda: agent.parts.spool.stats.dropped > 0, within=30)
    assert agent.parts.spool.stats.bytes <= 0.05 * 2**20
    machine_records = await agent.parts.spool.peek("machine", 10)
    assert machine_records, "the machine status record is never dropped"
    async with httpx.AsyncClient() as http:
        body = (await http.get(f"http://127.0.0.1:{agent.http_port}/health")).json()
        scraped = (await http.get(f"http://127.0.0.1:{agent.http_port}/metrics")).text
    assert body["metrics"]["dropped"] > 0
    assert metric(scraped, "ald_spool_dropped_total") > 0


async def test_parameter_changes_reload_the_map(start_agent: StartAgent, db: asyncpg.Connection) -> None:
    agent = await start_agent()
    await eventually(lambda: agent.snapshot().realtime_connected, within=20)
    await db.execute(
        "update parameters set logged = false where machine_id = $1 and key = 'mfc_1.flow'", SEED_MACHINE_ID
    )
    await eventually(lambda: not agent.parts.device.map["mfc_1.flow"].logged, within=10)
    await eventually(lambda: agent.parts.spool.stats.depth == 0)
    ticks = agent.parts.sampler.stats.ticks
    await eventually(lambda: agent.parts.sampler.stats.ticks >= ticks + 2)
    await eventually(lambda: agent.parts.spool.stats.depth == 0)
    await stop(agent)
    latest = json.loads((await history(db))[-1]["values"])
    assert "mfc_1.flow" not in latest and "mfc_1.flow_sp" in latest


async def test_a_restart_while_supabase_is_down_samples_with_the_cached_map(
    start_agent: StartAgent, cloud_proxy: TcpProxy, db: asyncpg.Connection
) -> None:
    first = await start_agent()
    await eventually(lambda: first.parts.sampler.stats.ticks >= 2)
    await stop(first)
    await cloud_proxy.cut()
    second = await start_agent()
    assert second.parts is not None and second.parts.map_guard.origin == "cache"
    await eventually(lambda: second.parts.sampler.stats.ticks >= 3)
    assert second.parts.spool.stats.depth >= 3
    await cloud_proxy.restore()
    await eventually(lambda: second.parts.spool.stats.depth == 0, within=30)
    await stop(second)
    assert len(await history(db)) == first.parts.sampler.stats.ticks + second.parts.sampler.stats.ticks


def spooled_history(path: Path) -> list[str]:
    """The history frames waiting in a spool file; none while the agent has created the file but not yet its
    table (a starting agent: polled here, that moment once failed the test)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        try:
            rows = conn.execute("select payload from outbox where kind = 'history' order by id").fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise
    return [json.loads(r[0])["ts"] for r in rows]


@pytest.mark.timeout(120)
async def test_kill_9_loses_at_most_the_frame_in_flight(
    process_env: ProcessEnv, cloud_proxy: TcpProxy, db: asyncpg.Connection, tmp_path: Path
) -> None:
    spool = tmp_path / "spool.sqlite"  # process_env's
    env = process_env(PARAMETER_LOGGING_INTERVAL=0.1)

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "agent", "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    await cloud_proxy.cut()  # nothing ships: every frame waits in the spool
    first = spawn()
    try:
        await eventually(lambda: spool.exists() and len(spooled_history(spool)) >= 20, within=60)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    survived = spooled_history(spool)
    await cloud_proxy.restore()
    second = spawn()
    try:

        async def shipped() -> bool:
            landed = {r["ts"].isoformat() for r in await history(db)}
            return set(survived) <= landed

        await eventually(shipped, within=60)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0  # SIGTERM: clean exit
    stamps = [r["ts"] for r in await history(db)]
    assert stamps == sorted(set(stamps))
