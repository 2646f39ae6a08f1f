"""Apply the Supabase CLI project (``supabase/``) to a database the way ``supabase db reset`` does.

The order is the CLI's: bootstrap (what the supabase/postgres image provides) → every
``migrations/<version>_<name>.sql`` in lexical filename order, each in one transaction and recorded in
``supabase_migrations.schema_migrations`` → the seed files of ``[db.seed] sql_paths`` in
``config.toml``. Files are executed verbatim (asyncpg runs multi-statement SQL with the simple query
protocol), so they stay valid for the real CLI: no psql meta-commands are supported or needed.

On a database that already has a history (a persistent stack restarting) :func:`migrate_and_seed` applies
only what is new: the bootstrap runs on a fresh database only (re-running it would re-grant the image's
default privileges the migrations revoked), migrations not yet recorded are applied, and the seed goes
only into a database that has never been seeded (``supabase_migrations.seed_files`` is empty) — as
``supabase start`` does on an existing volume.

Two ways back to a known state:
- :func:`reset_database` — from scratch: drop ``public``, re-bootstrap, migrate, seed (seconds).
- :func:`clean_database` — keep the schema, truncate the data tables and re-seed (tens of ms); what the
  per-test fixture uses.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from supalocal.errors import MigrationError

__all__ = [
    "BOOTSTRAP_PATH",
    "DEFAULT_PROJECT_DIR",
    "Migration",
    "Opened",
    "Project",
    "SqlFile",
    "apply_bootstrap",
    "apply_migrations",
    "apply_seed",
    "clean_database",
    "data_tables",
    "discover_migrations",
    "load_project",
    "migrate_and_seed",
    "reset_database",
    "seed_paths",
]

BOOTSTRAP_PATH = Path(__file__).with_name("bootstrap.sql")
DEFAULT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "supabase"
MIGRATION_FILE_RE = re.compile(r"^([0-9]+)_(.*)\.sql$")  # supabase/cli pkg/migration/file.go
# The CLI skips a first "<ts>_init.sql" older than this (a legacy initial-schema dump).
LEGACY_INIT_CUTOFF = "20211209000000"
DEFAULT_SEED_PATHS = ("./seed.sql",)
# A reset must not hang forever behind a client holding a lock on a table it drops.
RESET_LOCK_TIMEOUT = "10s"
#: A clean takes every table's exclusive lock while requests may still be in flight (an agent killed with -9
#: leaves its last requests running): PostgreSQL may pick the clean as the deadlock victim. It rolled back
#: whole, so trying again is safe.
CLEAN_ATTEMPTS = 5
RETRYABLE_LOCK_ERRORS = ("40P01", "55P03")  # deadlock_detected, lock_not_available


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file: ``version`` is the digits before the first underscore."""

    version: str
    name: str
    path: Path


@dataclass(frozen=True, slots=True)
class SqlFile:
    """A SQL file's text, read once; ``name`` is its path relative to the project (for messages)."""

    name: str
    sql: str


@dataclass(frozen=True, slots=True)
class Opened:
    """What :func:`migrate_and_seed` did: for the start-up line and for tests."""

    bootstrapped: bool
    migrations: tuple[str, ...]
    seeded: bool


@dataclass(frozen=True, slots=True)
class Project:
    """Everything a reset applies, read from disk once: bootstrap, migrations (in order), seeds."""

    bootstrap: SqlFile
    migrations: tuple[tuple[Migration, SqlFile], ...]
    seeds: tuple[SqlFile, ...]


def load_project(project_dir: Path = DEFAULT_PROJECT_DIR) -> Project:
    """Read the bootstrap and the CLI project's migrations and seeds.

    Raises:
        MigrationError: ``project_dir`` has no ``migrations/`` directory.
    """
    if not (project_dir / "migrations").is_dir():
        raise MigrationError(f"not a Supabase CLI project (no migrations/): {project_dir}")
    return Project(
        bootstrap=SqlFile(name=BOOTSTRAP_PATH.name, sql=BOOTSTRAP_PATH.read_text()),
        migrations=tuple(
            (m, SqlFile(name=f"migrations/{m.path.name}", sql=m.path.read_text()))
            for m in discover_migrations(project_dir)
        ),
        seeds=tuple(SqlFile(name=str(p.relative_to(project_dir)), sql=p.read_text()) for p in seed_paths(project_dir)),
    )


def discover_migrations(project_dir: Path = DEFAULT_PROJECT_DIR) -> list[Migration]:
    """The migrations of ``project_dir/migrations`` in the order the Supabase CLI applies them."""
    migrations_dir = project_dir / "migrations"
    found: list[Migration] = []
    for path in sorted(migrations_dir.glob("*.sql"), key=lambda p: p.name):
        match = MIGRATION_FILE_RE.match(path.name)
        if match is None:
            continue
        version, name = match.groups()
        if not found and name == "init" and version < LEGACY_INIT_CUTOFF:
            continue
        found.append(Migration(version=version, name=name, path=path))
    return found


def seed_paths(project_dir: Path = DEFAULT_PROJECT_DIR) -> list[Path]:
    """Seed files from ``config.toml`` ``[db.seed]`` (globs allowed, relative to ``project_dir``)."""
    config_path = project_dir / "config.toml"
    patterns: Sequence[str] = DEFAULT_SEED_PATHS
    enabled = True
    if config_path.exists():
        seed = tomllib.loads(config_path.read_text()).get("db", {}).get("seed", {})
        enabled = bool(seed.get("enabled", True))
        patterns = seed.get("sql_paths", DEFAULT_SEED_PATHS)
    if not enabled:
        return []
    paths: list[Path] = []
    for pattern in patterns:
        paths.extend(sorted(p for p in project_dir.glob(pattern) if p.is_file()))
    return paths


async def _execute_file(conn: asyncpg.Connection, file: SqlFile, *, what: str) -> None:
    try:
        await conn.execute(file.sql)
    except asyncpg.PostgresError as exc:
        detail = f" ({exc.detail})" if getattr(exc, "detail", None) else ""
        raise MigrationError(f"{what} {file.name} failed: {exc.sqlstate} {exc}{detail}") from exc


async def apply_bootstrap(conn: asyncpg.Connection, project: Project) -> None:
    """Create the Supabase roles, schemas and publication (idempotent)."""
    async with conn.transaction():
        await _execute_file(conn, project.bootstrap, what="bootstrap")


async def apply_migrations(conn: asyncpg.Connection, project: Project) -> list[str]:
    """Apply the migrations not yet in ``schema_migrations``; returns the versions applied.

    Raises:
        MigrationError: a migration failed (its transaction is rolled back; earlier ones stay).
    """
    applied = {row["version"] for row in await conn.fetch("select version from supabase_migrations.schema_migrations")}
    done: list[str] = []
    for migration, file in project.migrations:
        if migration.version in applied:
            continue
        async with conn.transaction():
            await _execute_file(conn, file, what="migration")
            await conn.execute(
                "insert into supabase_migrations.schema_migrations (version, name, statements) values ($1, $2, $3)",
                migration.version,
                migration.name,
                [file.sql],
            )
        done.append(migration.version)
    return done


async def apply_seed(conn: asyncpg.Connection, project: Project) -> None:
    """Run the seed files in one transaction; records their hashes like the CLI does."""
    async with conn.transaction():
        for file in project.seeds:
            await _execute_file(conn, file, what="seed")
            await conn.execute(
                "insert into supabase_migrations.seed_files (path, hash) values ($1, $2) "
                "on conflict (path) do update set hash = excluded.hash",
                file.name,
                hashlib.sha256(file.sql.encode()).hexdigest(),
            )


async def _has_history(conn: asyncpg.Connection) -> bool:
    if await conn.fetchval("select to_regclass('supabase_migrations.schema_migrations')") is None:
        return False
    return bool(await conn.fetchval("select exists (select 1 from supabase_migrations.schema_migrations)"))


async def _was_seeded(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("select exists (select 1 from supabase_migrations.seed_files)"))


async def migrate_and_seed(conn: asyncpg.Connection, project: Project) -> Opened:
    """Bring a database up to the project: bootstrap (fresh only), new migrations, seed (never-seeded only).

    A fresh database gets all three (what the stack does at its first start and after a reset); a
    database with a history only gets the migrations it lacks.
    """
    fresh = not await _has_history(conn)
    if fresh:
        await apply_bootstrap(conn, project)
    applied = await apply_migrations(conn, project)
    seeded = False
    if not await _was_seeded(conn):
        await apply_seed(conn, project)
        seeded = True
    await _reload_api_schema(conn)
    return Opened(bootstrapped=fresh, migrations=tuple(applied), seeded=seeded)


async def reset_database(conn: asyncpg.Connection, project: Project) -> None:
    """Back to a from-scratch state: drop ``public`` and the migration history, then migrate and seed.

    Roles are cluster-wide and survive (the bootstrap is idempotent). Objects other parts of the stack
    keep in their own schemas survive too; what depended on ``public`` tables goes with them.
    """
    async with conn.transaction():
        await conn.execute(f"set local lock_timeout = '{RESET_LOCK_TIMEOUT}'")
        try:
            await conn.execute(
                "drop schema if exists public cascade;"
                "create schema public authorization pg_database_owner;"
                "grant usage on schema public to public;"
                "comment on schema public is 'standard public schema';"
                "delete from supabase_migrations.schema_migrations;"
                "delete from supabase_migrations.seed_files;"
            )
        except asyncpg.PostgresError as exc:
            raise MigrationError(f"reset failed: {exc.sqlstate} {exc}") from exc
    await migrate_and_seed(conn, project)


async def data_tables(conn: asyncpg.Connection) -> list[str]:
    """Every ordinary or partitioned table in ``public`` (partitions are reached via their parent)."""
    rows = await conn.fetch(
        "select format('public.%I', c.relname) as name from pg_class c "
        "join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relispartition "
        "order by c.relname"
    )
    return [row["name"] for row in rows]


async def clean_database(conn: asyncpg.Connection, project: Project) -> None:
    """Empty every data table and re-apply the seed, keeping the schema (fast per-test cleanup)."""
    for attempt in range(1, CLEAN_ATTEMPTS + 1):
        try:
            await _clean_once(conn, project)
            return
        except MigrationError as exc:
            if exc.__cause__ is None or getattr(exc.__cause__, "sqlstate", None) not in RETRYABLE_LOCK_ERRORS:
                raise
            if attempt == CLEAN_ATTEMPTS:
                raise
            await asyncio.sleep(0.05 * attempt)


async def _clean_once(conn: asyncpg.Connection, project: Project) -> None:
    tables = await data_tables(conn)
    async with conn.transaction():
        try:
            await conn.execute(f"set local lock_timeout = '{RESET_LOCK_TIMEOUT}'")
            if tables:
                await conn.execute(f"truncate table {', '.join(tables)} restart identity cascade")
        except asyncpg.PostgresError as exc:
            raise MigrationError(f"clean failed: {exc.sqlstate} {exc}") from exc
        for file in project.seeds:
            await _execute_file(conn, file, what="seed")


async def _reload_api_schema(conn: asyncpg.Connection) -> None:
    # PostgREST's convention for "the schema changed"; the stand-in API listens for it too.
    await conn.execute("notify pgrst, 'reload schema'")
