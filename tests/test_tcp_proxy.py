"""The test proxy's cut is total: no connection outlives it, even one still being wired when it came.

The e2e suites trust `cut()` to mean "Supabase is gone"; a connection that slipped through once let the spool ship
during a cut and turned an alarm test red for the wrong reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.support.proxy import TcpProxy


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


async def test_a_connection_whose_upstream_leg_is_connecting_during_the_cut_is_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    upstream = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = upstream.sockets[0].getsockname()[1]
    connecting, release = asyncio.Event(), asyncio.Event()
    real_open: Callable[..., Awaitable[Any]] = asyncio.open_connection

    async def slow_upstream(host: str, target_port: int, **kw: Any) -> Any:
        if target_port == port:
            connecting.set()
            await release.wait()
        return await real_open(host, target_port, **kw)

    proxy = TcpProxy("127.0.0.1", port)
    await proxy.restore()
    monkeypatch.setattr(asyncio, "open_connection", slow_upstream)
    reader, writer = await real_open("127.0.0.1", proxy.port)
    await asyncio.wait_for(connecting.wait(), 5)
    await proxy.cut()
    release.set()
    writer.write(b"ping")
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await asyncio.wait_for(reader.readexactly(4), 5)
    writer.close()
    upstream.close()


async def test_a_restored_proxy_carries_bytes_again() -> None:
    upstream = await asyncio.start_server(echo, "127.0.0.1", 0)
    async with TcpProxy("127.0.0.1", upstream.sockets[0].getsockname()[1]) as proxy:
        await proxy.cut()
        await proxy.restore()
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"ping")
        assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
        writer.close()
    upstream.close()
