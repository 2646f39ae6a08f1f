"""The migrated database honours docs/CONTRACT.md: names, constraints, security, realtime and RPC semantics.

Runs against the session stack's PostgreSQL (``clean_db``: seed state before and after each test).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from supalocal.stack import BackgroundStack
from supalocal.testing import SEED_MACHINE_ID

OTHER_MACHINE_ID = "00000000-0000-4000-8000-000000000002"
TTL_S = 30.0

# docs/CONTRACT.md §2, table by table: every name listed there must exist.
CONTRACT_COLUMNS: dict[str, set[str]] = {
    "machines": {"id", "name", "serial_number", "status", "current_run_id", "updated_at"},
    "parameters": {
        "id",
        "machine_id",
        "key",
        "component",
        "name",
        "unit",
        "data_type",
        "register",
        "address",
        "write_address",
        "scale",
        "offset",
        "min_value",
        "max_value",
        "writable",
        "logged",
        "deadband",
    },
    "recipes": {"id", "name", "version", "description"},
    "recipe_steps": {"id", "recipe_id", "parent_step_id", "sequence", "type", "name", "config"},
    "machine_commands": {
        "id",
        "machine_id",
        "type",
        "payload",
        "status",
        "claimed_by",
        "claimed_at",
        "finished_at",
        "expires_at",
        "error",
        "idempotency_key",
        "created_at",
        "requested_by",
    },
    "process_runs": {
        "id",
        "machine_id",
        "recipe_id",
        "command_id",
        "recipe_snapshot",
        "status",
        "started_at",
        "finished_at",
        "error",
        "total_steps",
        "completed_steps",
        "current_step",
        "updated_at",
    },
    "run_steps": {
        "run_id",
        "seq",
        "path",
        "type",
        "name",
        "planned_ms",
        "started_at",
        "ended_at",
        "actual_ms",
        "status",
        "detail",
    },
    "parameter_history": {"machine_id", "ts", "run_id", "values", "read_ms"},
    "parameter_latest": {"machine_id", "parameter_id", "value", "ts"},
    "machine_leases": {"machine_id", "holder", "token", "expires_at"},
    "agent_instances": {
        "instance_id",
        "machine_id",
        "color",
        "version",
        "role",
        "started_at",
        "last_seen",
        "plc_connected",
        "realtime_connected",
        "spool_depth",
        "error",
    },
    "agent_instance_status": {"instance_id", "machine_id", "last_seen", "alive", "error"},
    "interlocks": {
        "id",
        "machine_id",
        "name",
        "kind",
        "enabled",
        "targets",
        "conditions",
        "hold_ms",
        "action",
        "description",
        "created_at",
        "updated_at",
    },
    "alarm_limits": {
        "id",
        "machine_id",
        "key",
        "enabled",
        "low_low",
        "low",
        "high",
        "high_high",
        "low_low_severity",
        "low_severity",
        "high_severity",
        "high_high_severity",
        "deadband",
        "on_delay_ms",
        "description",
        "created_at",
        "updated_at",
    },
    "alarms": {
        "id",
        "machine_id",
        "key",
        "kind",
        "severity",
        "state",
        "value",
        "limit_value",
        "message",
        "run_id",
        "raised_at",
        "acked_at",
        "acked_by",
        "cleared_at",
        "created_at",
        "updated_at",
    },
}
CONTRACT_ENUMS: list[tuple[str, str, set[str]]] = [
    ("machines", "status", {"offline", "idle", "running", "paused", "error", "maintenance"}),
    ("parameters", "data_type", {"bool", "int16", "uint16", "int32", "uint32", "float32"}),
    ("parameters", "register", {"coil", "discrete_input", "holding", "input"}),
    ("recipe_steps", "type", {"valve", "purge", "parameter", "wait", "loop"}),
    (
        "machine_commands",
        "type",
        {"start_recipe", "stop_recipe", "pause_recipe", "resume_recipe", "set_parameter", "ack_alarm"},
    ),
    (
        "machine_commands",
        "status",
        {"pending", "claimed", "running", "succeeded", "failed", "rejected", "expired"},
    ),
    ("process_runs", "status", {"running", "paused", "succeeded", "failed", "aborted", "interrupted"}),
    ("agent_instances", "role", {"active", "standby"}),
    ("agent_instances", "color", {"blue", "green"}),
    ("interlocks", "kind", {"permit", "trip"}),
    ("interlocks", "action", {"abort", "hold"}),
    ("alarms", "kind", {"low_low", "low", "high", "high_high", "trip"}),
    ("alarms", "severity", {"critical", "high", "medium", "low"}),
    ("alarms", "state", {"active_unacked", "active_acked", "cleared_unacked", "closed"}),
]
PRIMARY_KEYS = {
    "machines": ["id"],
    "machine_commands": ["id"],
    "parameter_history": ["machine_id", "ts"],
    "parameter_latest": ["machine_id", "parameter_id"],
    "machine_leases": ["machine_id"],
    "run_steps": ["run_id", "seq"],
    "agent_instances": ["instance_id"],
    "interlocks": ["id"],
    "alarm_limits": ["id"],
    "alarms": ["id"],
}
RPCS = {
    "public.acquire_lease(uuid,text,double precision)": "bigint",
    "public.renew_lease(uuid,text,bigint,double precision)": "boolean",
    "public.release_lease(uuid,text,bigint)": "boolean",
    "public.claim_command(bigint,uuid,text,bigint)": "SETOF machine_commands",
    "public.expire_commands(uuid)": "integer",
}
REALTIME_TABLES = {
    "machines",
    "machine_commands",
    "process_runs",
    "run_steps",
    "parameter_latest",
    "agent_instances",
    "parameters",
    "interlocks",
    "alarm_limits",
    "alarms",
}
REPLICA_FULL = {
    "machines",
    "machine_commands",
    "process_runs",
    "agent_instances",
    "parameters",
    "interlocks",
    "alarm_limits",
    "alarms",
}


@pytest.fixture
async def db(clean_db: BackgroundStack) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(clean_db.db_url)
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    try:
        yield conn
    finally:
        await conn.close()


async def _command(db: asyncpg.Connection, *, machine_id: str = SEED_MACHINE_ID, expires_in_s: float = 300) -> int:
    return await db.fetchval(
        "insert into public.machine_commands (machine_id, type, payload, expires_at) "
        "values ($1, 'set_parameter', '{}', now() + make_interval(secs => $2)) returning id",
        machine_id,
        expires_in_s,
    )


async def _expire_lease(db: asyncpg.Connection, machine_id: str = SEED_MACHINE_ID) -> None:
    await db.execute(
        "update public.machine_leases set expires_at = now() - interval '1 second' where machine_id = $1", machine_id
    )


# -- names and constraints ------------------------------------------------------------------------


async def test_every_contract_table_and_column_exists(db: asyncpg.Connection) -> None:
    rows = await db.fetch(
        "select table_name, column_name from information_schema.columns where table_schema = 'public'"
    )
    actual: dict[str, set[str]] = {}
    for row in rows:
        actual.setdefault(row["table_name"], set()).add(row["column_name"])
    for table, columns in CONTRACT_COLUMNS.items():
        assert table in actual, f"missing table {table}"
        assert columns <= actual[table], f"{table} lacks {columns - actual[table]}"


@pytest.mark.parametrize(("table", "column", "allowed"), CONTRACT_ENUMS, ids=[f"{t}.{c}" for t, c, _ in CONTRACT_ENUMS])
async def test_enum_columns_are_checked_with_exactly_the_contract_values(
    db: asyncpg.Connection, table: str, column: str, allowed: set[str]
) -> None:
    defs = await db.fetch(
        "select pg_get_constraintdef(c.oid) as def from pg_constraint c "
        "join pg_attribute a on a.attrelid = c.conrelid and a.attnum = any(c.conkey) "
        "where c.contype = 'c' and c.conrelid = $1::regclass and a.attname = $2 and cardinality(c.conkey) = 1",
        f"public.{table}",
        column,
    )
    values = {v for d in defs for v in re.findall(r"'([^']*)'::text", d["def"])}
    assert values == allowed


@pytest.mark.parametrize(("table", "columns"), PRIMARY_KEYS.items(), ids=list(PRIMARY_KEYS))
async def test_primary_keys(db: asyncpg.Connection, table: str, columns: list[str]) -> None:
    pk = await db.fetchval(
        "select array_agg(a.attname order by k.ord) from pg_constraint c "
        "cross join unnest(c.conkey) with ordinality k(attnum, ord) "
        "join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.attnum "
        "where c.contype = 'p' and c.conrelid = $1::regclass",
        f"public.{table}",
    )
    assert pk == columns


async def test_bad_enum_values_are_rejected(db: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("update public.machines set status = 'exploded' where id = $1", SEED_MACHINE_ID)
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute(
            "insert into public.machine_commands (machine_id, type) values ($1, 'launch')", SEED_MACHINE_ID
        )
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute(
            "insert into public.machine_commands (machine_id, type, status) values ($1, 'stop_recipe', 'done')",
            SEED_MACHINE_ID,
        )


async def test_command_defaults_identity_and_idempotency(db: asyncpg.Connection) -> None:
    row = await db.fetchrow(
        "insert into public.machine_commands (machine_id, type, idempotency_key) "
        "values ($1, 'stop_recipe', 'k1') returning *, now() as now",
        SEED_MACHINE_ID,
    )
    assert row["status"] == "pending"
    assert row["payload"] == {}
    assert row["expires_at"] - row["now"] == timedelta(minutes=5)
    with pytest.raises(asyncpg.UniqueViolationError):
        await db.execute(
            "insert into public.machine_commands (machine_id, type, idempotency_key) values ($1, 'stop_recipe', 'k1')",
            SEED_MACHINE_ID,
        )
    with pytest.raises(asyncpg.GeneratedAlwaysError):
        await db.execute(
            "insert into public.machine_commands (id, machine_id, type) values (99, $1, 'stop_recipe')", SEED_MACHINE_ID
        )


async def test_terminal_commands_never_change_status(db: asyncpg.Connection) -> None:
    command_id = await _command(db)
    await db.execute(
        "update public.machine_commands set status = 'expired', finished_at = now() where id = $1", command_id
    )
    for status in ("pending", "claimed", "running"):
        with pytest.raises(asyncpg.CheckViolationError, match="illegal machine_commands status"):
            await db.execute(
                "update public.machine_commands set status = $2, claimed_by = 'x', claimed_at = now(), "
                "finished_at = null where id = $1",
                command_id,
                status,
            )


async def test_indexes_for_the_agents_queries(db: asyncpg.Connection) -> None:
    defs = {
        r["indexname"]: r["indexdef"] for r in await db.fetch("select * from pg_indexes where schemaname = 'public'")
    }
    pending = defs["machine_commands_pending_idx"]
    assert "(machine_id, id)" in pending and "status = 'pending'" in pending
    assert "(machine_id, started_at DESC)" in defs["process_runs_machine_started_idx"]
    assert "(machine_id, ts)" in defs["parameter_history_pkey"]
    plan = await db.fetchval(
        "explain (format json) select * from public.machine_commands "
        "where machine_id = $1 and status = 'pending' order by id",
        SEED_MACHINE_ID,
    )
    assert "machine_commands_pending_idx" in json.dumps(plan) or "Seq Scan" in json.dumps(plan)


async def test_parameter_history_is_partitioned_by_month(db: asyncpg.Connection) -> None:
    assert (
        await db.fetchval("select relkind::text from pg_class where oid = 'public.parameter_history'::regclass") == "p"
    )
    partitions = {
        r["relname"]
        for r in await db.fetch(
            "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid "
            "where i.inhparent = 'public.parameter_history'::regclass"
        )
    }
    now = datetime.now(UTC)
    nxt = (now.replace(day=1) + timedelta(days=32)).replace(day=1)
    assert {
        "parameter_history_default",
        f"parameter_history_y{now:%Y}m{now:%m}",
        f"parameter_history_y{nxt:%Y}m{nxt:%m}",
    } <= partitions


async def test_creating_a_partition_moves_rows_out_of_the_default(db: asyncpg.Connection) -> None:
    ts = datetime(2031, 3, 15, 12, tzinfo=UTC)
    await db.execute(
        'insert into public.parameter_history (machine_id, ts, "values", read_ms) values ($1, $2, \'{"a": 1}\', 7.25)',
        SEED_MACHINE_ID,
        ts,
    )
    try:
        assert await db.fetchval("select count(*) from public.parameter_history_default") == 1
        name = await db.fetchval("select public.create_parameter_history_partition('2031-03-01')")
        assert name == "parameter_history_y2031m03"
        assert await db.fetchval("select public.create_parameter_history_partition('2031-03-20')") == name
        assert await db.fetchval("select count(*) from public.parameter_history_default") == 0
        # the row moved whole: every column, the read duration included
        assert await db.fetchval("select read_ms from public.parameter_history_y2031m03") == 7.25
        assert await db.fetchval("select relrowsecurity from pg_class where relname = $1", name)
        assert not await db.fetchval(
            "select has_table_privilege('anon', 'public.parameter_history_y2031m03', 'select')"
        )
        # replays are idempotent on (machine_id, ts)
        await db.execute(
            "insert into public.parameter_history (machine_id, ts, \"values\") values ($1, $2, '{}') "
            "on conflict (machine_id, ts) do nothing",
            SEED_MACHINE_ID,
            ts,
        )
    finally:
        await db.execute("drop table if exists public.parameter_history_y2031m03")


async def test_read_ms_is_checked_on_every_parameter_history_partition_made_before_or_after_it(
    db: asyncpg.Connection,
) -> None:
    """Migrations 20261203100000/100100: one valid check, inherited by every partition (those created later
    too); a negative, infinite or NaN duration is refused wherever the row lands, null is accepted."""
    await db.execute("select public.create_parameter_history_partition('2031-04-01')")
    try:
        checks = await db.fetch(
            "select c.conrelid::regclass::text as rel, c.convalidated from pg_constraint c "
            "where c.conname = 'parameter_history_read_ms_check'"
        )
        partitions = await db.fetch(
            "select inhrelid::regclass::text as rel from pg_inherits "
            "where inhparent = 'public.parameter_history'::regclass"
        )
        assert {r["rel"] for r in checks} == {"parameter_history"} | {r["rel"] for r in partitions}
        assert "parameter_history_y2031m04" in {r["rel"] for r in checks} and all(r["convalidated"] for r in checks)
        for when in (datetime.now(UTC), datetime(2031, 4, 2, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC)):
            for bad in ("-0.01", "'infinity'", "'NaN'"):
                with pytest.raises(asyncpg.CheckViolationError, match="parameter_history_read_ms_check"):
                    await db.execute(
                        'insert into public.parameter_history (machine_id, ts, "values", read_ms) '
                        f"values ($1, $2, '{{}}', {bad})",
                        SEED_MACHINE_ID,
                        when,
                    )
            await db.execute(
                "insert into public.parameter_history (machine_id, ts, \"values\") values ($1, $2, '{}')",  # null
                SEED_MACHINE_ID,
                when,
            )
    finally:
        await db.execute("drop table if exists public.parameter_history_y2031m04")


# -- security and realtime ------------------------------------------------------------------------


async def test_rls_is_enabled_on_every_table(db: asyncpg.Connection) -> None:
    without = await db.fetch(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relrowsecurity"
    )
    assert [r["relname"] for r in without] == []


async def test_nothing_is_granted_to_anon(db: asyncpg.Connection) -> None:
    tables = await db.fetch(
        "select c.oid::regclass::text as name from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm') and has_table_privilege('anon', c.oid, "
        "'select, insert, update, delete, truncate, references, trigger')"
    )
    sequences = await db.fetch(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' "
        "and case when c.relkind = 'S' then has_sequence_privilege('anon', c.oid, 'usage, select, update') end"
    )
    functions = await db.fetch(
        "select p.oid::regprocedure::text as f from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
        "where n.nspname = 'public' and has_function_privilege('anon', p.oid, 'execute')"
    )
    assert (tables, sequences, functions) == ([], [], [])


@pytest.mark.parametrize(("signature", "returns"), RPCS.items(), ids=[s.split("(")[0] for s in RPCS])
async def test_rpcs_exist_are_definer_and_granted_only_to_the_agent_roles(
    db: asyncpg.Connection, signature: str, returns: str
) -> None:
    row = await db.fetchrow(
        "select p.prosecdef, p.proconfig, pg_get_function_result(p.oid) as result, "
        "obj_description(p.oid, 'pg_proc') as doc from pg_proc p where p.oid = to_regprocedure($1)",
        signature,
    )
    assert row is not None, f"missing {signature}"
    assert row["result"] == returns
    assert row["prosecdef"]
    assert any(c.startswith("search_path=") for c in row["proconfig"])
    assert row["doc"], "semantics must be documented with comment on function"
    dashboard = signature.startswith("public.expire_commands")  # the lease and the claim are the agent's alone
    agent_key = ("ald_agent", True)  # the machine-scoped agent role (scope checked inside)
    for role, allowed in (("service_role", True), agent_key, ("authenticated", dashboard), ("anon", False),
                          ("public", False)):  # fmt: skip
        granted = await db.fetchval(
            "select has_function_privilege($1, to_regprocedure($2), 'execute')", role, signature
        )
        assert granted is allowed, f"{role} execute {signature}"


async def test_realtime_publication_and_replica_identity(db: asyncpg.Connection) -> None:
    published = {
        r["tablename"]
        for r in await db.fetch("select tablename from pg_publication_tables where pubname = 'supabase_realtime'")
    }
    assert published >= REALTIME_TABLES
    full = {
        r["relname"]
        for r in await db.fetch(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = 'public' and c.relreplident = 'f'"
        )
    }
    assert full >= REPLICA_FULL


async def test_authenticated_inserts_commands_but_cannot_forge_status(db: asyncpg.Connection) -> None:
    async with db.transaction():
        await db.execute("set local role authenticated")
        await db.execute("select set_config('request.jwt.claims', '{\"role\": \"authenticated\"}', true)")
        row = await db.fetchrow(
            "insert into public.machine_commands (machine_id, type, payload) values ($1, 'stop_recipe', '{}') "
            "returning status",
            SEED_MACHINE_ID,
        )
        assert row["status"] == "pending"
    for sql in (
        "insert into public.machine_commands (machine_id, type, status) values ($1, 'stop_recipe', 'claimed')",
        "update public.machine_commands set status = 'claimed' where machine_id = $1",
        "insert into public.machine_leases (machine_id, holder, token, expires_at) values ($1, 'x', 1, now())",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with db.transaction():
                await db.execute("set local role authenticated")
                await db.execute(sql, SEED_MACHINE_ID)


async def test_anon_cannot_read_anything(db: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.transaction():
            await db.execute("set local role anon")
            await db.fetch("select * from public.machines")


# -- lease and command RPCs -----------------------------------------------------------------------


async def test_lease_acquire_conflict_reacquire_and_fencing(db: asyncpg.Connection) -> None:
    blue = await db.fetchval("select public.acquire_lease($1, 'blue', $2)", SEED_MACHINE_ID, TTL_S)
    assert blue is not None
    assert await db.fetchval("select public.acquire_lease($1, 'green', $2)", SEED_MACHINE_ID, TTL_S) is None
    assert await db.fetchval("select public.acquire_lease($1, 'blue', $2)", SEED_MACHINE_ID, TTL_S) == blue
    assert await db.fetchval("select public.renew_lease($1, 'blue', $2, $3)", SEED_MACHINE_ID, blue, TTL_S)

    await _expire_lease(db)
    assert not await db.fetchval("select public.renew_lease($1, 'blue', $2, $3)", SEED_MACHINE_ID, blue, TTL_S)
    green = await db.fetchval("select public.acquire_lease($1, 'green', $2)", SEED_MACHINE_ID, TTL_S)
    assert green is not None and green > blue
    assert not await db.fetchval("select public.renew_lease($1, 'blue', $2, $3)", SEED_MACHINE_ID, blue, TTL_S)
    assert not await db.fetchval("select public.release_lease($1, 'blue', $2)", SEED_MACHINE_ID, blue)

    assert await db.fetchval("select public.release_lease($1, 'green', $2)", SEED_MACHINE_ID, green)
    again = await db.fetchval("select public.acquire_lease($1, 'green', $2)", SEED_MACHINE_ID, TTL_S)
    assert again is not None and again > green, "a released lease is re-acquired with a new token"


async def test_lease_rejects_bad_arguments(db: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.InvalidParameterValueError):
        await db.fetchval("select public.acquire_lease($1, '', $2)", SEED_MACHINE_ID, TTL_S)
    with pytest.raises(asyncpg.InvalidParameterValueError):
        await db.fetchval("select public.acquire_lease($1, 'blue', 0)", SEED_MACHINE_ID)
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await db.fetchval("select public.acquire_lease($1, 'blue', $2)", OTHER_MACHINE_ID, TTL_S)


async def test_claim_command_by_the_holder_once(db: asyncpg.Connection) -> None:
    token = await db.fetchval("select public.acquire_lease($1, 'blue', $2)", SEED_MACHINE_ID, TTL_S)
    command_id = await _command(db)
    rows = await db.fetch("select * from public.claim_command($1, $2, 'blue', $3)", command_id, SEED_MACHINE_ID, token)
    assert len(rows) == 1
    assert (rows[0]["status"], rows[0]["claimed_by"]) == ("claimed", "blue")
    assert rows[0]["claimed_at"] is not None
    assert (
        await db.fetch("select * from public.claim_command($1, $2, 'blue', $3)", command_id, SEED_MACHINE_ID, token)
        == []
    )


async def test_a_stale_token_cannot_claim(db: asyncpg.Connection) -> None:
    old = await db.fetchval("select public.acquire_lease($1, 'blue', $2)", SEED_MACHINE_ID, TTL_S)
    await _expire_lease(db)
    new = await db.fetchval("select public.acquire_lease($1, 'green', $2)", SEED_MACHINE_ID, TTL_S)
    command_id = await _command(db)
    for holder, token in (("blue", old), ("green", old), ("blue", new), ("green", new + 1)):
        rows = await db.fetch(
            "select * from public.claim_command($1, $2, $3, $4)", command_id, SEED_MACHINE_ID, holder, token
        )
        assert rows == [], f"{holder}/{token} must not claim"
    status = await db.fetchval("select status from public.machine_commands where id = $1", command_id)
    assert status == "pending"
    rows = await db.fetch("select * from public.claim_command($1, $2, 'green', $3)", command_id, SEED_MACHINE_ID, new)
    assert len(rows) == 1


async def test_an_expired_lease_cannot_claim(db: asyncpg.Connection) -> None:
    token = await db.fetchval("select public.acquire_lease($1, 'blue', $2)", SEED_MACHINE_ID, TTL_S)
    await _expire_lease(db)
    command_id = await _command(db)
    assert (
        await db.fetch("select * from public.claim_command($1, $2, 'blue', $3)", command_id, SEED_MACHINE_ID, token)
        == []
    )


async def test_a_command_of_another_machine_is_never_claimed(db: asyncpg.Connection) -> None:
    await db.execute("insert into public.machines (id, name) values ($1, 'other')", OTHER_MACHINE_ID)
    token = await db.fetchval("select public.acquire_lease($1, 'blue', $2)", SEED_MACHINE_ID, TTL_S)
    foreign = await _command(db, machine_id=OTHER_MACHINE_ID)
    assert (
        await db.fetch("select * from public.claim_command($1, $2, 'blue', $3)", foreign, SEED_MACHINE_ID, token) == []
    )
    assert (
        await db.fetch("select * from public.claim_command($1, $2, 'blue', $3)", foreign, OTHER_MACHINE_ID, token) == []
    )


async def test_an_expired_command_is_marked_expired_and_never_runs(db: asyncpg.Connection) -> None:
    token = await db.fetchval("select public.acquire_lease($1, 'blue', $2)", SEED_MACHINE_ID, TTL_S)
    command_id = await _command(db, expires_in_s=-1)
    assert (
        await db.fetch("select * from public.claim_command($1, $2, 'blue', $3)", command_id, SEED_MACHINE_ID, token)
        == []
    )
    row = await db.fetchrow("select status, finished_at from public.machine_commands where id = $1", command_id)
    assert row["status"] == "expired" and row["finished_at"] is not None
    assert (
        await db.fetch("select * from public.claim_command($1, $2, 'blue', $3)", command_id, SEED_MACHINE_ID, token)
        == []
    )


async def test_expire_commands_counts_only_stale_pending_of_that_machine(db: asyncpg.Connection) -> None:
    await db.execute("insert into public.machines (id, name) values ($1, 'other')", OTHER_MACHINE_ID)
    stale = [await _command(db, expires_in_s=-1) for _ in range(2)]
    fresh = await _command(db)
    await _command(db, machine_id=OTHER_MACHINE_ID, expires_in_s=-1)
    assert await db.fetchval("select public.expire_commands($1)", SEED_MACHINE_ID) == 2
    statuses = dict(
        await db.fetch("select id, status from public.machine_commands where machine_id = $1", SEED_MACHINE_ID)
    )
    assert statuses == {stale[0]: "expired", stale[1]: "expired", fresh: "pending"}
    assert await db.fetchval("select public.expire_commands($1)", SEED_MACHINE_ID) == 0


async def test_racing_claims_never_both_succeed(clean_db: BackgroundStack, db: asyncpg.Connection) -> None:
    token = await db.fetchval("select public.acquire_lease($1, 'blue', $2)", SEED_MACHINE_ID, TTL_S)
    commands = [await _command(db) for _ in range(5)]
    racers = [await asyncpg.connect(clean_db.db_url) for _ in range(4)]
    try:
        for command_id in commands:
            results = await asyncio.gather(
                *(
                    r.fetch(
                        "select * from public.claim_command($1, $2, 'blue', $3)", command_id, SEED_MACHINE_ID, token
                    )
                    for r in racers
                )
            )
            assert sorted(len(rows) for rows in results) == [0, 0, 0, 1]
    finally:
        for racer in racers:
            await racer.close()


# -- what each API role may do (every grant is explicit; anything extra fails here) ---------------

API_ROLES = ("anon", "authenticated", "service_role", "ald_agent")
_ALL = "SELECT,INSERT,UPDATE,DELETE"
_AGENT_WRITES = "SELECT,INSERT,UPDATE"
#: table → role → privileges (missing role: none). Column-level grants are in COLUMN_PRIVILEGES.
TABLE_PRIVILEGES: dict[str, dict[str, str]] = {
    "machines": {"authenticated": "SELECT", "service_role": _ALL, "ald_agent": "SELECT"},
    "parameters": {"authenticated": "SELECT", "service_role": _ALL, "ald_agent": "SELECT"},
    "recipes": {"authenticated": _ALL, "service_role": _ALL, "ald_agent": "SELECT"},
    "recipe_steps": {"authenticated": _ALL, "service_role": _ALL, "ald_agent": "SELECT"},
    "machine_commands": {"authenticated": "SELECT", "service_role": _ALL, "ald_agent": "SELECT"},
    "process_runs": {"authenticated": "SELECT", "service_role": _ALL, "ald_agent": _AGENT_WRITES},
    "run_steps": {"authenticated": "SELECT", "service_role": _ALL, "ald_agent": _AGENT_WRITES},
    "parameter_history": {"authenticated": "SELECT", "service_role": _ALL, "ald_agent": _AGENT_WRITES},
    "parameter_latest": {"authenticated": "SELECT", "service_role": _ALL, "ald_agent": _AGENT_WRITES},
    "machine_leases": {"authenticated": "SELECT", "service_role": _ALL, "ald_agent": "SELECT"},
    "agent_instances": {"authenticated": "SELECT", "service_role": _ALL, "ald_agent": _AGENT_WRITES},
    "agent_instance_status": {"authenticated": "SELECT", "service_role": _ALL},
    "interlocks": {"authenticated": _ALL, "service_role": _ALL, "ald_agent": "SELECT"},
    "alarm_limits": {"authenticated": _ALL, "service_role": _ALL, "ald_agent": "SELECT"},
    "alarms": {"authenticated": "SELECT", "service_role": _ALL, "ald_agent": _AGENT_WRITES},
}
#: (table, role) → the columns it may INSERT / UPDATE without a table-wide grant
COLUMN_PRIVILEGES: dict[tuple[str, str], str] = {
    ("machine_commands", "authenticated"): "expires_at:INSERT idempotency_key:INSERT machine_id:INSERT "
    "payload:INSERT type:INSERT",
    ("machine_commands", "ald_agent"): "error:UPDATE finished_at:UPDATE status:UPDATE",
    ("machines", "ald_agent"): "current_run_id:UPDATE status:UPDATE",
}
#: function → the API roles that may execute it
FUNCTION_PRIVILEGES: dict[str, set[str]] = {
    "acquire_lease(uuid,text,double precision)": {"service_role", "ald_agent"},
    "renew_lease(uuid,text,bigint,double precision)": {"service_role", "ald_agent"},
    "release_lease(uuid,text,bigint)": {"service_role", "ald_agent"},
    "claim_command(bigint,uuid,text,bigint)": {"service_role", "ald_agent"},
    "expire_commands(uuid)": {"service_role", "ald_agent", "authenticated"},
    "ensure_parameter_history_partitions(integer)": {"service_role"},
    "recipe_step_config_is_valid(text,jsonb)": {"service_role", "authenticated"},
    "jwt_machine_id()": {"service_role", "ald_agent"},
    # evaluated by the CHECK / exclusion constraints of whoever writes interlocks or parameters (the dashboard
    # may call the interlock checks to validate a rule before saving it)
    "check_interlock_targets(text[])": {"service_role", "authenticated"},
    "check_interlock_conditions(jsonb)": {"service_role", "authenticated"},
    "parameter_width(text,text)": {"service_role", "authenticated"},
    "parameter_write_register(text)": {"service_role", "authenticated"},
    "parameter_write_footprint(text,text,integer,integer)": {"service_role", "authenticated"},
    "json_numbers_fit_64_bits(jsonb)": {"service_role", "authenticated", "ald_agent"},
    "drop_parameter_history_partitions(integer)": {"service_role"},
    # the default of machine_commands.requested_by, evaluated by whoever inserts commands
    "jwt_requester()": {"service_role", "authenticated"},
}
_PRIVILEGE_NAMES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


async def test_each_role_may_do_exactly_what_is_listed_on_tables(db: asyncpg.Connection) -> None:
    rows = await db.fetch(
        "select c.relname, r.rolname, array_to_string(array(select p from unnest($1::text[]) p "
        "  where has_table_privilege(r.rolname, c.oid, p)), ',') as privs "
        "from pg_class c join pg_namespace n on n.oid = c.relnamespace cross join pg_roles r "
        "where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm') and not c.relispartition "
        "and r.rolname = any($2::text[])",
        list(_PRIVILEGE_NAMES),
        list(API_ROLES),
    )
    actual = {(r["relname"], r["rolname"]): r["privs"] for r in rows if r["privs"]}
    expected = {(t, role): privs for t, by_role in TABLE_PRIVILEGES.items() for role, privs in by_role.items()}
    assert actual == expected


async def test_each_role_may_write_exactly_the_listed_columns(db: asyncpg.Connection) -> None:
    rows = await db.fetch(
        "select c.relname, r.rolname, string_agg(a.attname || ':' || p.priv, ' ' order by a.attname, p.priv) as cols "
        "from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped "
        "cross join pg_roles r cross join unnest(array['INSERT', 'UPDATE']) as p(priv) "
        "where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relispartition "
        "and r.rolname = any($1::text[]) and has_column_privilege(r.rolname, c.oid, a.attnum, p.priv) "
        "and not has_table_privilege(r.rolname, c.oid, p.priv) group by 1, 2",
        list(API_ROLES),
    )
    assert {(r["relname"], r["rolname"]): r["cols"] for r in rows} == COLUMN_PRIVILEGES


async def test_each_role_may_execute_exactly_the_listed_functions(db: asyncpg.Connection) -> None:
    rows = await db.fetch(
        "select p.oid::regprocedure::text as f, r.rolname from pg_proc p "
        "join pg_namespace n on n.oid = p.pronamespace cross join pg_roles r "
        "where n.nspname = 'public' and r.rolname = any($1::text[]) and has_function_privilege(r.rolname, p.oid, "
        "'execute')",
        list(API_ROLES),
    )
    actual: dict[str, set[str]] = {}
    for r in rows:
        actual.setdefault(r["f"], set()).add(r["rolname"])
    assert actual == FUNCTION_PRIVILEGES


async def test_new_objects_in_public_are_granted_to_nobody_but_service_role(db: asyncpg.Connection) -> None:
    """A later migration's table, sequence or function is closed to anon and authenticated until it grants."""
    transaction = db.transaction()
    await transaction.start()
    try:
        await db.execute(
            "create table public.contract_probe (id bigint generated always as identity primary key);"
            "create function public.contract_probe_fn() returns int language sql as 'select 1';"
        )
        rows = await db.fetch(
            "select r.rolname, has_table_privilege(r.rolname, 'public.contract_probe', 'select, insert') as t, "
            "has_sequence_privilege(r.rolname, pg_get_serial_sequence('public.contract_probe', 'id'), 'usage') "
            "as s, has_function_privilege(r.rolname, 'public.contract_probe_fn()', 'execute') as f "
            "from pg_roles r where r.rolname = any($1::text[]) order by 1",
            list(API_ROLES),
        )
        public_fn = await db.fetchval(
            "select coalesce(bool_or(a.grantee = 0), false) from pg_proc p, aclexplode(coalesce(p.proacl, "
            "acldefault('f', p.proowner))) a where p.oid = 'public.contract_probe_fn()'::regprocedure"
        )
    finally:
        await transaction.rollback()
    assert {r["rolname"]: (r["t"], r["s"], r["f"]) for r in rows} == {
        "ald_agent": (False, False, False),
        "anon": (False, False, False),
        "authenticated": (False, False, False),
        "service_role": (True, True, True),
    }
    assert public_fn is False, "PUBLIC must not get EXECUTE on new functions"
