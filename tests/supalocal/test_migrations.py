"""supabase/ applies like `supabase db reset` does: from scratch, twice in a row, and stays CLI-valid."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from supalocal import migrate
from supalocal.errors import MigrationError
from supalocal.postgres import PostgresServer
from tests.support.poll import eventually

PROJECT = migrate.DEFAULT_PROJECT_DIR
CLI_VERSION_RE = re.compile(r"^\d{14}_[a-z0-9_]+\.sql$")
SEED_MACHINE_ID = "00000000-0000-4000-8000-000000000001"


@pytest.fixture
async def conn() -> AsyncIterator[asyncpg.Connection]:
    """A fresh, empty cluster of its own: these tests drop and recreate `public`."""
    async with PostgresServer() as pg:
        connection = await pg.connect()
        try:
            yield connection
        finally:
            await connection.close()


async def _fingerprint(conn: asyncpg.Connection) -> dict[str, object]:
    """What a reset must reproduce exactly: objects, history, seed row counts."""
    return {
        "tables": await conn.fetch(
            "select c.relname, c.relkind, c.relrowsecurity, c.relreplident from pg_class c "
            "join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' order by 1"
        ),
        "functions": await conn.fetch(
            "select p.oid::regprocedure::text as f from pg_proc p "
            "join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'public' order by 1"
        ),
        "publication": await conn.fetch("select tablename from pg_publication_tables order by 1"),
        "history": await conn.fetch("select version, name from supabase_migrations.schema_migrations order by 1"),
        "counts": await conn.fetch(
            "select (select count(*) from public.machines) m, (select count(*) from public.parameters) p, "
            "(select count(*) from public.recipes) r, (select count(*) from public.recipe_steps) s"
        ),
    }


def test_migration_files_follow_cli_conventions() -> None:
    files = sorted(p.name for p in (PROJECT / "migrations").iterdir())
    assert files, "no migrations"
    for name in files:
        assert CLI_VERSION_RE.match(name), f"{name}: want <14-digit UTC>_<name>.sql"
    versions = [name.split("_", 1)[0] for name in files]
    assert len(set(versions)) == len(versions), "duplicate migration versions"
    for path in [*(PROJECT / "migrations").iterdir(), PROJECT / "seed.sql"]:
        text = path.read_text()
        assert not re.search(r"^\s*\\", text, re.MULTILINE), f"{path.name}: psql meta-command"
        assert not re.search(r"\bconcurrently\b", text, re.IGNORECASE), f"{path.name}: runs in a transaction"
        assert not re.search(r"\b(begin|commit)\s*;", text, re.IGNORECASE), f"{path.name}: CLI wraps it"
    assert [m.path.name for m in migrate.discover_migrations(PROJECT)] == files


def test_config_toml_declares_the_seed() -> None:
    assert migrate.seed_paths(PROJECT) == [PROJECT / "seed.sql"]


async def test_apply_from_scratch_then_reset_twice_is_identical(conn: asyncpg.Connection) -> None:
    project = migrate.load_project(PROJECT)
    await migrate.migrate_and_seed(conn, project)
    first = await _fingerprint(conn)
    assert [r["version"] for r in first["history"]] == [m.version for m, _ in project.migrations]  # type: ignore[index]
    await conn.execute(
        "insert into public.machine_commands (machine_id, type) values ($1, 'stop_recipe')", SEED_MACHINE_ID
    )

    await migrate.reset_database(conn, project)
    assert await _fingerprint(conn) == first
    assert await conn.fetchval("select count(*) from public.machine_commands") == 0
    await migrate.reset_database(conn, project)
    assert await _fingerprint(conn) == first


async def test_bootstrap_is_idempotent(conn: asyncpg.Connection) -> None:
    project = migrate.load_project(PROJECT)
    await migrate.apply_bootstrap(conn, project)
    await migrate.apply_bootstrap(conn, project)
    roles = {r["rolname"]: r for r in await conn.fetch("select * from pg_roles")}
    assert roles["service_role"]["rolbypassrls"]
    assert roles["authenticator"]["rolcanlogin"] and not roles["authenticator"]["rolinherit"]
    assert not roles["anon"]["rolcanlogin"]
    members = await conn.fetch(
        "select r.rolname from pg_auth_members m join pg_roles r on r.oid = m.roleid "
        "join pg_roles u on u.oid = m.member where u.rolname = 'authenticator'"
    )
    assert {r["rolname"] for r in members} >= {"anon", "authenticated", "service_role"}
    assert await conn.fetchval("select count(*) from pg_publication where pubname = 'supabase_realtime'") == 1
    await conn.execute("select set_config('request.jwt.claims', $1, false)", '{"role": "authenticated", "sub": "x"}')
    assert await conn.fetchval("select auth.role()") == "authenticated"
    assert await conn.fetchval("select auth.jwt() ->> 'sub'") == "x"


async def test_migrations_are_applied_once(conn: asyncpg.Connection) -> None:
    project = migrate.load_project(PROJECT)
    await migrate.apply_bootstrap(conn, project)
    assert len(await migrate.apply_migrations(conn, project)) == len(project.migrations)
    assert await migrate.apply_migrations(conn, project) == []


async def test_clean_database_restores_the_seed(conn: asyncpg.Connection) -> None:
    project = migrate.load_project(PROJECT)
    await migrate.migrate_and_seed(conn, project)
    seeded = await _fingerprint(conn)
    await conn.execute(
        "insert into public.machine_commands (machine_id, type) values ($1, 'stop_recipe')", SEED_MACHINE_ID
    )
    await conn.execute("insert into public.recipes (name) values ('scratch')")
    await migrate.clean_database(conn, project)
    assert await _fingerprint(conn) == seeded
    assert await conn.fetchval("select count(*) from public.machine_commands") == 0
    # identities restart, so ids in tests are predictable
    new_id = await conn.fetchval(
        "insert into public.machine_commands (machine_id, type) values ($1, 'stop_recipe') returning id",
        SEED_MACHINE_ID,
    )
    assert new_id == 1


async def _holds_and_waits(observer: asyncpg.Connection, pid: int, *, holds: str, waits_for: str) -> bool:
    """Whether backend `pid` holds a lock on table `holds` and is waiting for one on `waits_for` (pg_locks)."""
    return bool(
        await observer.fetchval(
            "select coalesce(bool_or(granted and relation = $2::regclass)"
            " and bool_or(not granted and relation = $3::regclass), false) "
            "from pg_locks where pid = $1 and locktype = 'relation'",
            pid,
            holds,
            waits_for,
        )
    )


async def test_a_clean_chosen_as_deadlock_victim_tries_again() -> None:
    """A request still in flight (an agent killed with -9) can lock tables in the other order than the
    clean's TRUNCATE; PostgreSQL then aborts one of the two. The clean must not fail the test run for it.

    The cycle is built from what pg_locks shows, not from a sleep: the request asks for `first` only once
    the clean holds it and waits for `last`. (With a fixed sleep, a clean that took its locks later found
    no cycle at all, and the test passed with the retry removed.) The request's own deadlock_timeout is
    long, so the clean's check is the one that finds the cycle and the clean is the victim."""
    project = migrate.load_project(PROJECT)
    async with PostgresServer() as pg:
        admin, client, observer = await pg.connect(), await pg.connect(), await pg.connect()
        try:
            await migrate.migrate_and_seed(admin, project)
            tables = await migrate.data_tables(admin)
            first, last = tables[0], tables[-1]
            clean_pid = admin.get_server_pid()
            transaction = client.transaction()
            await transaction.start()
            await client.execute("set local deadlock_timeout = '60s'")
            await client.execute(f"lock table {last} in row exclusive mode")  # the request's first write
            clean = asyncio.create_task(migrate.clean_database(admin, project))
            await eventually(
                lambda: _holds_and_waits(observer, clean_pid, holds=first, waits_for=last), within=10, every=0.01
            )
            # …and the request now needs `first`: a cycle, found when the clean's deadlock_timeout (1 s) fires
            # (should this poll ever be later than that, the clean's lock_timeout ends its wait instead: 55P03,
            # also retried; without the retry the clean fails either way)
            await client.execute(f"lock table {first} in access share mode")
            await transaction.commit()
            await asyncio.wait_for(clean, 30)
            assert await admin.fetchval("select count(*) from public.machines") == 1
        finally:
            await observer.close()
            await client.close()
            await admin.close()


async def test_a_failing_migration_names_its_file_and_rolls_back(conn: asyncpg.Connection, tmp_path: Path) -> None:
    project_dir = tmp_path / "supabase"
    shutil.copytree(PROJECT, project_dir)
    (project_dir / "migrations" / "99990101000000_broken.sql").write_text(
        "create table public.half_done (id int);\nselect no_such_function();\n"
    )
    project = migrate.load_project(project_dir)
    with pytest.raises(MigrationError, match=r"99990101000000_broken\.sql"):
        await migrate.migrate_and_seed(conn, project)
    assert await conn.fetchval("select to_regclass('public.half_done')") is None
    assert await conn.fetchval("select to_regclass('public.machines')") is not None


def test_not_a_project_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="not a Supabase CLI project"):
        migrate.load_project(tmp_path)
