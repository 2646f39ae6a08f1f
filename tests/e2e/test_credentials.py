"""A refused key end to end: the real agent on an expired or foreign key holds its records, says why, and ships
them all once restarted on a valid key (issue 12 item 6; docs/RUNBOOK.md "Rotate the key").

Each test reads what landed in PostgreSQL and what /health and /metrics answer over HTTP.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.app import Agent
from supalocal.auth import SERVICE_ROLE, make_api_key, make_machine_key
from supalocal.stack import BackgroundStack
from supalocal.testing import SEED_MACHINE_ID
from tests.e2e.conftest import StartAgent, stop
from tests.support.poll import eventually

#: (id, the refused key for the stack's JWT secret, what /health's reason says about it)
REFUSED: list[tuple[str, Callable[[str], str], str]] = [
    (
        "machine-key-expired",
        lambda secret: make_machine_key(SEED_MACHINE_ID, secret=secret, lifetime_s=-3600),
        "JWT expired (PGRST303)",
    ),
    (
        "key-of-another-project",
        lambda _: make_api_key(SERVICE_ROLE, secret="the-jwt-secret-of-another-project-000000"),
        "(PGRST301)",
    ),
]


def metric(text: str, name: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    raise KeyError(name)


async def observe(agent: Agent) -> tuple[dict[str, Any], str]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{agent.http_port}") as http:
        health = (await http.get("/health")).json()
        metrics = (await http.get("/metrics")).text
    return health, metrics


def held_records(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(kind, payload) of every record waiting in a closed spool, oldest first."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("select kind, payload from outbox order by id").fetchall()
    return [(kind, json.loads(payload)) for kind, payload in rows]


async def history_count(db: asyncpg.Connection) -> int:
    return int(await db.fetchval("select count(*) from parameter_history where machine_id = $1", SEED_MACHINE_ID))


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("make_key", "said"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
async def test_a_refused_key_holds_every_record_until_a_restart_on_a_valid_key_ships_them(
    start_agent: StartAgent,
    clean_db: BackgroundStack,
    db: asyncpg.Connection,
    make_key: Callable[[str], str],
    said: str,
) -> None:
    refused = await start_agent(SUPABASE_KEY=make_key(clean_db.jwt_secret))
    p = refused.parts
    assert p is not None
    await eventually(lambda: p.sampler.stats.ticks >= 5 and p.shipper.stats.auth_errors >= 2, within=30)

    health, metrics = await observe(refused)
    assert health["status"] == "degraded"
    key_reasons = [r for r in health["reasons"] if r.startswith("Supabase refused the key: ")]
    assert len(key_reasons) == 1 and key_reasons[0].endswith(said), health["reasons"]
    assert "database unreachable" not in health["reasons"]  # it answered: it refused the key
    assert health["services"]["database"]["key_refused"] == key_reasons[0].removeprefix("Supabase refused the key: ")
    assert health["metrics"]["quarantined"] == 0 and health["metrics"]["spool_depth"] > 0
    assert metric(metrics, "ald_cloud_auth_failed") == 1
    assert metric(metrics, "ald_cloud_auth_failures_total") >= 2
    assert metric(metrics, "ald_spool_quarantined") == 0
    assert await history_count(db) == 0  # nothing got through

    await stop(refused)
    held = held_records(p.spool.path)
    assert len(held) == p.spool.stats.depth > 0 and p.spool.stats.quarantined == 0

    # the operator puts a valid key in SUPABASE_KEY and restarts: same color, same spool
    fixed = await start_agent(SUPABASE_KEY=make_machine_key(SEED_MACHINE_ID, secret=clean_db.jwt_secret))
    q = fixed.parts
    assert q is not None
    await eventually(lambda: q.spool.stats.depth == 0 and q.sampler.stats.ticks >= 2, within=60)
    health, metrics = await observe(fixed)
    assert not [r for r in health["reasons"] if "refused the key" in r]
    assert health["services"]["database"]["key_refused"] is None
    assert (metric(metrics, "ald_cloud_auth_failed"), metric(metrics, "ald_spool_quarantined")) == (0, 0)
    expires = metric(metrics, "ald_cloud_key_expiry_timestamp_seconds")  # the new key: 365 days by default
    assert expires - time.time() > 364 * 86400
    assert datetime.fromisoformat(health["services"]["database"]["key_expires_at"]).timestamp() == expires
    await stop(fixed)
    assert q.spool.stats.shipped >= len(held) and q.spool.stats.quarantined == 0
    landed = {
        r["ts"] for r in await db.fetch("select ts from parameter_history where machine_id = $1", SEED_MACHINE_ID)
    }
    held_frames = {datetime.fromisoformat(payload["ts"]) for kind, payload in held if kind == "history"}
    assert held_frames <= landed  # every frame held while the key was refused landed
