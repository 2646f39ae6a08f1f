"""Fixtures for the HTTP tests: a snapshot that tests can change between requests, and real servers on port 0."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from http_support import ADMIN_TOKEN, HEALTHY, LiveSnapshot, ServerFactory

from agent.http import HttpServer
from agent.metrics import AgentMetrics
from agent.status import AgentSnapshot


@pytest.fixture
def healthy() -> AgentSnapshot:
    return HEALTHY


@pytest.fixture
def live() -> LiveSnapshot:
    return LiveSnapshot()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as client:
        yield client


@pytest.fixture
async def make_server() -> AsyncIterator[ServerFactory]:
    """Start HttpServers on 127.0.0.1:0; all are closed after the test."""
    started: list[HttpServer] = []

    async def make(live: LiveSnapshot, *, start: bool = True, **options: Any) -> HttpServer:
        options.setdefault("admin_token", ADMIN_TOKEN)
        options.setdefault("metrics", AgentMetrics(snapshot=live))
        server = HttpServer(snapshot=live, host="127.0.0.1", port=0, **options)
        started.append(server)
        if start:
            await server.start()
        return server

    yield make
    for server in reversed(started):
        await server.close()


@pytest.fixture
async def server(make_server: ServerFactory, live: LiveSnapshot) -> HttpServer:
    return await make_server(live)
