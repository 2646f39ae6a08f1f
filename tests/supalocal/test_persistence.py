"""`python -m supalocal` keeps its data: stop/start and kill -9 come back on the same database.

Migrations are applied once (new ones at the next start), the seed goes only into a never-seeded database,
``--ephemeral`` keeps the throwaway behaviour and ``reset`` wipes on purpose.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from supalocal.errors import PostgresError
from supalocal.postgres import PostgresServer

pytestmark = pytest.mark.timeout(180)

PROJECT = Path(__file__).resolve().parents[2] / "supabase"
SEED_MACHINE_ID = "00000000-0000-4000-8000-000000000001"
SEED_RECIPES = 2
GONE_TIMEOUT_S = 15.0


@pytest.fixture
def home() -> Iterator[Path]:
    """A home the ``postgres`` OS user can traverse when the tests run as root (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="supalocal-home-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        _cli(path, "stop")
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the Supabase CLI project, so a test may add a migration."""
    copy = tmp_path / "supabase"
    shutil.copytree(PROJECT, copy)
    return copy


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SUPALOCAL_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "supalocal", *args], capture_output=True, text=True, env=env, timeout=90, check=False
    )


def _start(home: Path, *args: str) -> dict[str, str]:
    started = _cli(home, "start", *args)
    assert started.returncode == 0, started.stderr
    return dict(line.split("=", 1) for line in started.stdout.splitlines() if "=" in line)


def _postmasters(home: Path) -> set[int]:
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
    return {int(line.split()[0]) for line in out.splitlines() if "postgres -D" in line and str(home) in line}


def _wait_gone(home: Path) -> None:
    deadline = time.monotonic() + GONE_TIMEOUT_S
    while _postmasters(home) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _postmasters(home), "postgres left behind"


def _rest(env: dict[str, str], method: str, path: str, **kwargs: object) -> httpx.Response:
    key = env["SUPABASE_SERVICE_ROLE_KEY"]
    headers = {"apikey": key, "Authorization": f"Bearer {key}", "Prefer": "return=representation"}
    return httpx.request(method, f"{env['SUPABASE_URL']}/rest/v1/{path}", headers=headers, **kwargs)  # type: ignore[arg-type]


async def _fetch(env: dict[str, str], sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(env["DATABASE_URL"])
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def _recipe_names(env: dict[str, str]) -> list[str]:
    response = _rest(env, "GET", "recipes?select=name&order=name")
    assert response.status_code == 200, response.text
    return [row["name"] for row in response.json()]


async def test_data_survives_stop_start_and_kill_9_without_reseeding(home: Path) -> None:
    env = _start(home)
    assert (home / "default" / "pgdata" / "PG_VERSION").exists()
    history = await _fetch(env, "select version from supabase_migrations.schema_migrations order by version")
    created = _rest(env, "POST", "recipes", json={"name": "kept across restarts"})
    assert created.status_code == 201, created.text
    renamed = _rest(env, "PATCH", f"machines?id=eq.{SEED_MACHINE_ID}", json={"name": "renamed by the user"})
    assert renamed.status_code == 200, renamed.text
    assert _cli(home, "stop").returncode == 0
    _wait_gone(home)

    env = _start(home)
    assert "kept across restarts" in _recipe_names(env)
    assert len(_recipe_names(env)) == SEED_RECIPES + 1, "the seed must not run again"
    machines = _rest(env, "GET", "machines?select=name").json()
    assert machines == [{"name": "renamed by the user"}], "the seed must not overwrite user edits"
    again = await _fetch(env, "select version from supabase_migrations.schema_migrations order by version")
    assert again == history, "migrations are applied once"

    state_pid = int((home / "default" / "state.json").read_text().split('"pid": ')[1].split(",")[0])
    os.kill(state_pid, signal.SIGKILL)
    _wait_gone(home)
    env = _start(home)
    assert "kept across restarts" in _recipe_names(env)
    assert _rest(env, "GET", "machines?select=name").json() == [{"name": "renamed by the user"}]


async def test_a_new_migration_is_applied_at_the_next_start_with_no_default_grants(home: Path, project: Path) -> None:
    env = _start(home, "--project-dir", str(project))
    before = await _fetch(env, "select count(*) as n from supabase_migrations.schema_migrations")
    assert _cli(home, "stop").returncode == 0
    _wait_gone(home)
    (project / "migrations" / "29991231000000_added_later.sql").write_text(
        "create table public.added_later (id int primary key);\n"
    )

    env = _start(home, "--project-dir", str(project))
    rows = await _fetch(
        env,
        "select version, (select count(*) from supabase_migrations.schema_migrations) as n "
        "from supabase_migrations.schema_migrations where name = 'added_later'",
    )
    assert [(r["version"], r["n"]) for r in rows] == [("29991231000000", before[0]["n"] + 1)]
    # the bootstrap (the image's default grants) must not run again on an existing database
    grants = await _fetch(
        env,
        "select r.rolname, has_table_privilege(r.rolname, 'public.added_later', 'select') as can "
        "from pg_roles r where r.rolname in ('anon', 'authenticated') order by 1",
    )
    assert [(g["rolname"], g["can"]) for g in grants] == [("anon", False), ("authenticated", False)]


async def test_ephemeral_is_thrown_away_at_stop(home: Path) -> None:
    env = _start(home, "--ephemeral")
    assert not (home / "default" / "pgdata").exists()
    assert _rest(env, "POST", "recipes", json={"name": "scratch"}).status_code == 201
    assert _cli(home, "stop").returncode == 0
    _wait_gone(home)
    env = _start(home, "--ephemeral")
    assert "scratch" not in _recipe_names(env)


async def test_reset_of_a_stopped_instance_wipes_its_data(home: Path) -> None:
    env = _start(home)
    assert _rest(env, "POST", "recipes", json={"name": "to be wiped"}).status_code == 201
    assert _cli(home, "stop").returncode == 0
    _wait_gone(home)
    reset = _cli(home, "reset")
    assert reset.returncode == 0 and "wiped" in reset.stderr
    assert not (home / "default" / "pgdata").exists()
    env = _start(home)
    assert len(_recipe_names(env)) == SEED_RECIPES and "to be wiped" not in _recipe_names(env)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the cluster to the postgres OS user")
async def test_a_data_dir_the_postgres_user_cannot_reach_is_a_clear_error(tmp_path: Path) -> None:
    await asyncio.to_thread(tmp_path.parent.chmod, 0o700)  # pytest's own dirs are 0700; make sure of it
    server = PostgresServer(data_dir=tmp_path / "pgdata")
    with pytest.raises(PostgresError, match="cannot reach"):
        await server.start()


async def test_a_non_cluster_directory_is_refused(home: Path) -> None:
    data_dir = home / "pgdata"
    await asyncio.to_thread(data_dir.mkdir)
    await asyncio.to_thread((data_dir / "something").write_text, "not postgres")
    with pytest.raises(PostgresError, match="not a PostgreSQL data directory"):
        await PostgresServer(data_dir=data_dir).start()
    assert await asyncio.to_thread((data_dir / "something").exists), "nothing of the user's is deleted"
