"""Shared test data for the HTTP tests (conftest.py is not importable by name reliably: pytest swaps it per dir)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from agent.http import HttpServer
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
    late_ticks=4,
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


ServerFactory = Callable[..., Awaitable[HttpServer]]
