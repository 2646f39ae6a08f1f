"""Whole-system fixtures: the real agent against the local stack (through a cuttable proxy) and the simulator."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from agent.app import Agent
from agent.config import load_settings
from agent.plc.sim import Simulator
from supalocal.stack import BackgroundStack
from supalocal.testing import SEED_MACHINE_ID
from tests.support.browser import Browser, browser_missing
from tests.support.poll import eventually
from tests.support.proxy import TcpProxy


@pytest.fixture
async def cloud_proxy(clean_db: BackgroundStack) -> AsyncIterator[TcpProxy]:
    """The stack's API behind a proxy the test can cut: Supabase disappearing and coming back."""
    host, port = clean_db.url.removeprefix("http://").rsplit(":", 1)
    async with TcpProxy(host, int(port)) as proxy:
        yield proxy


def agent_env(proxy: TcpProxy, stack: BackgroundStack, sim: Simulator, spool: Path, **extra: Any) -> dict[str, Any]:
    return {
        "SUPABASE_URL": proxy.url,
        "SUPABASE_KEY": stack.service_key,
        "MACHINE_ID": SEED_MACHINE_ID,
        "PLC_HOST": sim.host,
        "PLC_PORT": sim.port,
        "PLC_TIMEOUT_S": 0.5,
        "SPOOL_PATH": spool,
        "HTTP_PORT": 0,
        "PARAMETER_LOGGING_INTERVAL": 0.2,
        # Unpaced: the tests wait for "everything so far has shipped" (spool depth 0), which pacing makes a
        # moment between ticks rather than a state at 5-10 Hz. test_telemetry's pacing test sets the gap itself.
        "TELEMETRY_SHIP_GAP": 0,
        "SHUTDOWN_TIMEOUT": 5,
        "STATUS_LOG_INTERVAL": 30,
    } | extra


ProcessEnv = Callable[..., dict[str, str]]


@pytest.fixture
def process_env(clean_db: BackgroundStack, cloud_proxy: TcpProxy, simulator: Simulator, tmp_path: Path) -> ProcessEnv:
    """The environment of an agent run as its own process (`python -m agent run`, for signals and kill -9):
    this process's without its own PLC, Supabase and machine settings, then `agent_env`'s for this test's stack,
    proxy, simulator and spool (`tmp_path/spool.sqlite`), with `extra` on top."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PLC_", "SUPABASE_", "MACHINE_"))}

    def make(**extra: Any) -> dict[str, str]:
        env = agent_env(cloud_proxy, clean_db, simulator, tmp_path / "spool.sqlite", **extra)
        return base | {k: str(v) for k, v in env.items()}

    return make


StartAgent = Callable[..., Awaitable[Agent]]

#: The paths out of a run (finish, pause, stop, error, interlock, lost PLC, SIGTERM, crash, map change) hold over
#: one PLC connection, the default, and over two (`PLC_CONNECTIONS=2`), where a recipe's write and a sampler
#: read travel side by side and the loss of either socket drops both.
over_plc_connections = pytest.mark.parametrize("plc_connections", [1, 2], ids=["1-connection", "2-connections"])


@pytest.fixture
async def start_agent(
    clean_db: BackgroundStack, cloud_proxy: TcpProxy, simulator: Simulator, tmp_path: Path
) -> AsyncIterator[StartAgent]:
    """Run `Agent`s in this event loop; each is stopped (cleanly) after the test."""
    running: list[tuple[Agent, asyncio.Task[None]]] = []

    async def start(**overrides: Any) -> Agent:
        # One spool per agent (a second agent in a test is another machine's container, with its own volume);
        # a restarted agent (same color) reuses its spool, as after a real restart.
        spool = tmp_path / f"spool-{overrides.get('AGENT_COLOR', 'blue')}.sqlite"
        env = agent_env(cloud_proxy, clean_db, simulator, spool, **overrides)

        agent = Agent(load_settings(**env))
        task = asyncio.create_task(agent.run())
        running.append((agent, task))
        await eventually(lambda: agent.serving or task.done(), within=20)
        if task.done():
            task.result()  # raise what stopped it
        return agent

    yield start
    for agent, task in running:
        agent.stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 30)


async def stop(agent: Agent) -> None:
    agent.stop.set()
    await eventually(
        lambda: not agent.serving and agent.parts.spool is not None and agent.parts.spool.state.value == "closed",
        within=30,
    )


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A headless Chromium (tests/support/browser.py); skips, naming the package, where it is not installed."""
    missing = browser_missing()
    if missing:
        pytest.skip(missing)
    page = await asyncio.to_thread(Browser)
    try:
        yield page
    finally:
        await asyncio.to_thread(page.quit)
