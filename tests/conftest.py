"""Shared fixtures. The local Supabase stack fixture lives in `supalocal.testing` (a pytest plugin)."""

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from hypothesis import settings as hypothesis_settings

from agent.plc import PlcConnection, PlcDevice, RegisterMap, WordOrder, load_default_map
from agent.plc.sim import Simulator
from supalocal.stack import BackgroundStack

pytest_plugins = ["supalocal.testing"]

# CI runs the property tests on a fixed sequence of examples, so a red CI always reproduces; locally they keep
# exploring new examples (and hypothesis' database replays any failure it found).
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


SimulatorFactory = Callable[..., Awaitable[Simulator]]

# Tests that measure real timing (pulse widths, deadlines, outage ride-through) or run whole agents and benches:
# scripts/test.sh runs them alone, after the rest has run on two workers, so a neighbour's load never skews them.
SERIAL = ("tests/e2e/", "tests/recipes/test_recipe_executor.py", "tests/test_bench_")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = config.rootpath
    for item in items:
        if item.path.relative_to(root).as_posix().startswith(SERIAL):
            item.add_marker(pytest.mark.serial)


@pytest.fixture
def default_map() -> RegisterMap:
    return load_default_map()


@pytest.fixture
async def make_simulator(default_map: RegisterMap) -> AsyncIterator[SimulatorFactory]:
    """Start simulators on free ports (real Modbus TCP); all are stopped after the test."""
    started: list[Simulator] = []

    async def make(register_map: RegisterMap | None = None, **options: Any) -> Simulator:
        sim = Simulator(register_map or default_map, port=0, **options)
        await sim.__aenter__()
        started.append(sim)
        return sim

    yield make
    for sim in reversed(started):
        await sim.__aexit__(None, None, None)


@pytest.fixture
async def simulator(make_simulator: SimulatorFactory) -> Simulator:
    return await make_simulator()


@pytest.fixture
async def connect() -> AsyncIterator[Callable[..., Awaitable[PlcDevice]]]:
    """Connect a `PlcDevice` to a simulator; connections are closed after the test."""
    opened: list[PlcConnection] = []

    async def make(
        sim: Simulator,
        *,
        word_order: WordOrder = WordOrder.LITTLE,
        timeout_s: float = 0.5,
        connections: int = 1,
        **options: Any,
    ) -> PlcDevice:
        connection = PlcConnection(
            host=sim.host, port=sim.port, timeout_s=timeout_s, backoff_max_s=0.2, connections=connections
        )
        await connection.__aenter__()
        opened.append(connection)
        assert await connection.wait_connected(5)
        return PlcDevice(connection, sim.register_map, word_order=word_order, **options)

    yield make
    for connection in opened:
        await connection.close()


@pytest.fixture
async def device(simulator: Simulator, connect: Callable[..., Awaitable[PlcDevice]]) -> PlcDevice:
    return await connect(simulator)


@pytest.fixture
async def db(clean_db: BackgroundStack) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to the local stack's PostgreSQL (as the superuser: for setting up and reading back)."""
    conn = await asyncpg.connect(clean_db.db_url)
    yield conn
    await conn.close()
