"""public.alarm_limits and public.alarms (issue 13): the schema refuses limits and alarm rows that make no sense,
naming the constraint; the dashboard edits limits and only reads alarms; a machine's agent writes its own
machine's alarms only; who asked for a command comes from the caller's token, never from the caller.

Constraints as the superuser (RLS aside, nothing bypasses a CHECK); roles through the agent's CloudClient (the
official supabase client) against the session stack.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from agent.cloud import CloudClient
from agent.errors import CloudPermanentError
from supalocal.auth import make_api_key, make_machine_key
from supalocal.stack import BackgroundStack
from supalocal.testing import SEED_MACHINE_ID

OTHER = "00000000-0000-4000-8000-000000000002"
LIMITS: dict[str, Any] = {"key": "mfc_1.flow_sp", "low": 1.0, "high": 150.0, "deadband": 1.0, "on_delay_ms": 500}


def alarm(**changes: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "machine_id": SEED_MACHINE_ID,
        "key": "chamber_heater.temperature",
        "kind": "high",
        "severity": "high",
        "state": "active_unacked",
        "value": 360.0,
        "limit_value": 350.0,
        "message": "chamber_heater.temperature high (> 350): 360",
        "raised_at": "2026-12-02T10:00:00+00:00",
    } | changes


@pytest.fixture
async def db(clean_db: BackgroundStack) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(clean_db.db_url)
    await conn.execute("insert into public.machines (id, name) values ($1, 'other reactor')", OTHER)
    try:
        yield conn
    finally:
        await conn.close()


async def insert_limits(db: asyncpg.Connection, row: dict[str, Any], machine_id: str = SEED_MACHINE_ID) -> None:
    columns = ["machine_id", *row]
    marks = ", ".join(f"${i + 1}" for i in range(len(columns)))
    await db.execute(
        f"insert into public.alarm_limits ({', '.join(columns)}) values ({marks})", machine_id, *row.values()
    )


@pytest.mark.parametrize(
    ("changes", "constraint"),
    [
        ({"low": 200.0}, "alarm_limits_ordered"),
        ({"low_low": 5.0}, "alarm_limits_ordered"),
        ({"high_high": 100.0}, "alarm_limits_ordered"),
        ({"high": float("nan")}, "alarm_limits_numbers_are_finite"),
        ({"low": float("-inf")}, "alarm_limits_numbers_are_finite"),
        ({"deadband": -1.0}, "alarm_limits_deadband_check"),
        ({"on_delay_ms": 3_600_001}, "alarm_limits_on_delay_ms_check"),
        ({"high_severity": "urgent"}, "alarm_limits_severity_check"),
        ({"low": None, "high": None}, "alarm_limits_has_a_limit"),
        ({"key": "MFC 1"}, "alarm_limits_key_check"),
    ],
    ids=["low-above-high", "low-low-above-low", "high-high-below-high", "nan", "infinite", "negative-deadband",
         "delay-too-long", "unknown-severity", "no-limit", "bad-key"],
)  # fmt: skip
async def test_limits_that_make_no_sense_are_refused_naming_the_rule(
    db: asyncpg.Connection, changes: dict[str, Any], constraint: str
) -> None:
    with pytest.raises(asyncpg.CheckViolationError) as caught:
        await insert_limits(db, LIMITS | changes)
    assert caught.value.constraint_name == constraint


async def test_one_limits_row_per_key_and_the_machine_never_changes(db: asyncpg.Connection) -> None:
    await insert_limits(db, LIMITS)
    with pytest.raises(asyncpg.UniqueViolationError):
        await insert_limits(db, LIMITS)
    with pytest.raises(asyncpg.CheckViolationError, match=r"alarm_limits\.machine_id is immutable"):
        await db.execute("update public.alarm_limits set machine_id = $1 where key = $2", OTHER, LIMITS["key"])


@pytest.mark.parametrize(
    "changes",
    [
        {"state": "active_acked"},  # acknowledged without acked_at
        {"state": "closed", "acked_at": "2026-12-02T10:01:00+00:00"},  # closed but never back to normal
        {"state": "active_unacked", "cleared_at": "2026-12-02T10:01:00+00:00"},
        {"kind": "high_low"},
        {"severity": "urgent"},
    ],
    ids=["acked-without-time", "closed-not-cleared", "active-but-cleared", "unknown-kind", "unknown-severity"],
)
async def test_an_alarm_row_whose_state_contradicts_its_facts_is_refused(
    db: asyncpg.Connection, changes: dict[str, Any]
) -> None:
    row = alarm(**changes)
    columns = list(row)
    casts = {"raised_at": "::text::timestamptz", "acked_at": "::text::timestamptz", "cleared_at": "::text::timestamptz"}
    marks = ", ".join(f"${i + 1}{casts.get(c, '')}" for i, c in enumerate(columns))
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute(f"insert into public.alarms ({', '.join(columns)}) values ({marks})", *row.values())


async def test_the_machine_agent_writes_its_own_alarms_and_the_dashboard_only_reads_them(
    db: asyncpg.Connection, clean_db: BackgroundStack
) -> None:
    machine_key = make_machine_key(SEED_MACHINE_ID, secret=clean_db.jwt_secret)
    dashboard_key = make_api_key("authenticated", secret=clean_db.jwt_secret, claims={"email": "eng@fab.example"})
    async with CloudClient(clean_db.url, machine_key) as agent, CloudClient(clean_db.url, dashboard_key) as dash:
        mine = alarm()
        await agent.upsert("alarms", [mine], on_conflict="id")
        await agent.upsert("alarms", [mine | {"state": "cleared_unacked", "cleared_at": mine["raised_at"]}],
                           on_conflict="id")  # fmt: skip
        assert [r["state"] for r in await dash.select("alarms", eq={"id": mine["id"]})] == ["cleared_unacked"]
        with pytest.raises(CloudPermanentError):
            await agent.upsert("alarms", [alarm(machine_id=OTHER)], on_conflict="id")
        with pytest.raises(CloudPermanentError):
            await dash.update("alarms", {"state": "closed"}, match={"id": mine["id"]})
        assert len(await agent.select("alarm_limits", eq={"machine_id": SEED_MACHINE_ID})) == 6

        await dash.insert("alarm_limits", LIMITS | {"machine_id": OTHER})  # the dashboard edits limits
        assert await agent.select("alarm_limits", eq={"machine_id": OTHER}) == []  # another machine's: unseen


async def test_who_asked_for_a_command_comes_from_the_token_not_from_the_caller(
    db: asyncpg.Connection, clean_db: BackgroundStack
) -> None:
    key = make_api_key("authenticated", secret=clean_db.jwt_secret, claims={"email": "eng@fab.example"})
    async with CloudClient(clean_db.url, key) as dashboard:
        row = await dashboard.insert(
            "machine_commands", {"machine_id": SEED_MACHINE_ID, "type": "ack_alarm", "payload": {"alarm_id": "all"}}
        )
        assert row["requested_by"] == "eng@fab.example"
        with pytest.raises(CloudPermanentError):  # the column is not the dashboard's to set
            await dashboard.insert(
                "machine_commands",
                {"machine_id": SEED_MACHINE_ID, "type": "ack_alarm", "payload": {}, "requested_by": "the boss"},
            )
        with pytest.raises(CloudPermanentError, match="machine_commands_type_check"):
            await dashboard.insert("machine_commands", {"machine_id": SEED_MACHINE_ID, "type": "ack_alarms"})
    async with CloudClient(clean_db.url, clean_db.service_key) as service:  # the CLI names its operator
        row = await service.insert(
            "machine_commands",
            {"machine_id": SEED_MACHINE_ID, "type": "ack_alarm", "payload": {}, "requested_by": "cli:op@host"},
        )
        assert row["requested_by"] == "cli:op@host"
