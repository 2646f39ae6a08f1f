"""Fixtures for the HTTP tests: a snapshot that tests can change between requests, and real servers on port 0."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from agent.http import HttpServer
from agent.metrics import AgentMetrics
from agent.status import AgentSnapshot

ADMIN_TOKEN = "s3cret-admin-token-Zq9"

HEALTHY = AgentSnapshot(
    version="1.4.2",
    color="blue",
    role="active",
    instance_id="blue-7f3a",
    machine_id="6f1c2a4e-0000-4000-8000-000000000001",
    started_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    uptime_s=125.5,
    serving=True,
    plc_connected=True,
    plc_last_error=None,
    plc_response_ms=4.5,
    database_connected=True,
    realtime_connected=True,
    sampling=True,
    logging_interval_s=1.0004,
    frames=120,
    skipped_ticks=1,
    failed_frames=2,
    spool_depth=7,
    spool_bytes=4096,
    quarantined=0,
    dropped=0,
    shipped=300,
    memory_mb=61.25,
    errors={"plc": 3, "database": 1},
    current_run=None,
)


class LiveSnapshot:
    """The `snapshot` callable the app would pass: returns the current state, which a test may change."""

    def __init__(self, snapshot: AgentSnapshot = HEALTHY) -> None:
        self.current = snapshot

    def __call__(self) -> AgentSnapshot:
        return self.current

    def update(self, **changes: Any) -> None:
        self.current = replace(self.current, **changes)


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


ServerFactory = Callable[..., Awaitable[HttpServer]]


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
