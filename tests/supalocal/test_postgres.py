"""The disposable PostgreSQL server: free ports, side by side, settings, and no process left behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import asyncpg
import pytest

from supalocal.errors import PostgresError
from supalocal.postgres import PostgresServer, ServerState, find_pg_bindir, sweep_stale_dirs

GONE_TIMEOUT_S = 10.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); it is gone for our purposes
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def _wait_gone(pid: int) -> bool:
    deadline = time.monotonic() + GONE_TIMEOUT_S
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_finds_postgres_binaries() -> None:
    bindir = find_pg_bindir()
    assert (bindir / "initdb").exists()
    assert (bindir / "postgres").exists()


async def test_two_servers_side_by_side_then_nothing_left() -> None:
    async with PostgresServer() as a, PostgresServer() as b:
        assert a.port != b.port
        assert a.root != b.root
        for server in (a, b):
            conn = await server.connect()
            try:
                assert await conn.fetchval("select 1") == 1
                assert await conn.fetchval("show listen_addresses") == "127.0.0.1"
                assert await conn.fetchval("show wal_level") == "logical"
                assert await conn.fetchval("show fsync") == "off"
                assert await conn.fetchval("show timezone") == "UTC"
            finally:
                await conn.close()
        pids, roots = [a.pid, b.pid], [a.root, b.root]
    assert a.state is ServerState.STOPPED
    for pid, root in zip(pids, roots, strict=True):
        assert _wait_gone(pid)
        assert not root.exists()


async def test_durable_keeps_postgres_defaults() -> None:
    async with PostgresServer(durable=True, max_connections=20) as pg:
        conn = await pg.connect()
        try:
            assert await conn.fetchval("show fsync") == "on"
            assert await conn.fetchval("show max_connections") == "20"
        finally:
            await conn.close()


async def test_exception_inside_block_still_stops_and_cleans_up() -> None:
    server = PostgresServer()
    with pytest.raises(RuntimeError, match="boom"):
        async with server:
            pid, root = server.pid, server.root
            raise RuntimeError("boom")
    assert _wait_gone(pid)
    assert not root.exists()
    with pytest.raises(RuntimeError, match="stopped"):
        server.dsn()


async def test_a_server_starts_once() -> None:
    server = PostgresServer()
    async with server:
        with pytest.raises(RuntimeError, match="cannot start"):
            await server.start()
    await server.stop()  # idempotent


async def test_taken_port_is_a_clear_error() -> None:
    async with PostgresServer() as first:
        with pytest.raises(PostgresError, match="exited"):
            async with PostgresServer(port=first.port):
                pass


def test_owner_killed_takes_postgres_with_it(tmp_path: Path) -> None:
    """SIGKILL of the owning process must not leave a postmaster behind (PR_SET_PDEATHSIG)."""
    script = textwrap.dedent(
        """
        import asyncio, sys
        from supalocal.postgres import PostgresServer

        async def main():
            pg = PostgresServer()
            await pg.start()
            print(pg.pid, pg.root, flush=True)
            await asyncio.sleep(60)

        asyncio.run(main())
        """
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        pid_text, root = owner.stdout.readline().split()
        pid = int(pid_text)
        assert _alive(pid)
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        owner.stdout.close()  # type: ignore[union-attr]
    assert _wait_gone(pid), "postgres outlived its owner"
    # nobody was left to delete the dir: the next start sweeps it
    assert Path(root).exists()
    assert Path(root) in sweep_stale_dirs(Path(root).parent)
    assert not Path(root).exists()


async def test_connections_refused_after_stop() -> None:
    async with PostgresServer() as pg:
        dsn = pg.dsn()
    with pytest.raises((OSError, asyncpg.PostgresError, asyncio.TimeoutError)):
        await asyncpg.connect(dsn, timeout=2)
