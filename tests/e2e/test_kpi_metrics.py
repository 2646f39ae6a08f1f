"""The KPIs on a real agent's /metrics (simulator over Modbus TCP, local stack over HTTP): CPU %, database
response times, the logging interval and read → row cycle as distributions, recipe outcomes, commands by type
and outcome, the spool volume, and realtime errors counted when the socket is lost."""

from __future__ import annotations

import gc
import time

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from supalocal.testing import SEED_MACHINE_ID
from tests.e2e.conftest import StartAgent
from tests.e2e.recipes import insert_command, insert_recipe, loop, valve, wait
from tests.e2e.test_commands import active_agent, until_final
from tests.support.poll import eventually
from tests.support.proxy import TcpProxy


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}  # fmt: skip


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), float("nan"))


async def test_the_kpis_are_exported_by_a_real_agent(start_agent: StartAgent, db: asyncpg.Connection) -> None:
    agent = await active_agent(start_agent)
    recipe_id = await insert_recipe(db, "kpi", [loop(2, valve(1, 20), wait(20))])
    start = await insert_command(db, SEED_MACHINE_ID, "start_recipe", {"recipe_id": recipe_id})
    assert (await until_final(db, start))["status"] == "succeeded"
    pause = await insert_command(db, SEED_MACHINE_ID, "pause_recipe", {})  # nothing to pause: rejected
    assert (await until_final(db, pause))["status"] == "rejected"
    await eventually(lambda: agent.parts is not None and agent.parts.spool.stats.depth == 0)
    url = f"http://127.0.0.1:{agent.http_port}/metrics"
    async with httpx.AsyncClient() as http:

        async def frames_shipped() -> bool:
            text = (await http.get(url)).text
            return value(text, "ald_read_to_row_seconds_count") >= 3

        await eventually(frames_shipped, within=10, every=0.2)
        text = (await http.get(url)).text
        assert value(text, "ald_recipe_runs_total", outcome="succeeded") == 1
        assert value(text, "ald_recipe_runs_total", outcome="failed") == 0
        assert value(text, "ald_commands_total", type="start_recipe", outcome="succeeded") == 1
        assert value(text, "ald_commands_total", type="pause_recipe", outcome="rejected") == 1
        assert value(text, "ald_database_request_seconds_count", operation="upsert", answered="true") > 0
        assert value(text, "ald_database_request_seconds_count", operation="rpc", answered="true") > 0
        assert value(text, "ald_parameter_logging_interval_seconds_count") >= 2  # frames − 1
        assert value(text, "ald_read_to_row_seconds_count") >= 3
        assert value(text, "ald_cpu_usage_percent") >= 0
        assert value(text, "ald_spool_disk_free_bytes") > 0
        assert value(text, "ald_realtime_errors_total") == 0  # exported from the client's real counter
        assert value(text, "ald_plc_read_duration_seconds_count") >= 3  # every full read, by the agent itself
        assert agent.parts is not None
        for block in agent.parts.device.plan:  # and each planned address range of it
            assert value(text, "ald_plc_block_read_duration_seconds_count", block=str(block)) >= 3, block
    assert gc.get_freeze_count() > 0  # the start-up objects are out of the collector's reach


async def test_a_stalled_loop_shows_as_late_ticks_on_a_real_agents_metrics(start_agent: StartAgent) -> None:
    """The loop blocked for over two intervals (as by a long GC pause or a CPU hog): the tick due meanwhile
    starts late, and `SamplerStats.late` reaches /metrics and /health through the agent's own snapshot."""
    agent = await start_agent()  # PARAMETER_LOGGING_INTERVAL 0.2 s
    await eventually(lambda: agent.parts is not None and agent.parts.sampler.stats.ticks >= 3)
    assert agent.parts is not None
    stats = agent.parts.sampler.stats
    before = stats.late
    # Blocking the loop on purpose, the stall under test. Whatever the sampler was doing (sleeping up to one
    # interval before its deadline, or reading), it plans its next tick ≥ 0.3 s after that tick's deadline: the
    # tick is late (and maybe some skipped) by construction, not by timing.
    time.sleep(0.5)  # noqa: ASYNC251
    await eventually(lambda: stats.late > before)
    base = f"http://127.0.0.1:{agent.http_port}"
    async with httpx.AsyncClient() as http:
        exported = value((await http.get(f"{base}/metrics")).text, "ald_late_ticks_total")
        health = (await http.get(f"{base}/health")).json()
    assert before < exported <= stats.late
    assert before < health["metrics"]["late_ticks"] <= stats.late
    assert health["services"]["parameter_logger"]["late_ticks"] == health["metrics"]["late_ticks"]


# realtime-py logs the close code and reason through attributes websockets deprecates; the suite turns warnings into
# errors, which would kill realtime-py's reconnect task (in production the warning is ignored by default).
@pytest.mark.filterwarnings("ignore:ConnectionClosed.* is deprecated:DeprecationWarning")
async def test_realtime_errors_are_counted_when_the_socket_is_lost(
    start_agent: StartAgent, cloud_proxy: TcpProxy
) -> None:
    agent = await start_agent()
    await eventually(lambda: agent.snapshot().realtime_connected, within=20)
    url = f"http://127.0.0.1:{agent.http_port}/metrics"
    async with httpx.AsyncClient() as http:
        assert value((await http.get(url)).text, "ald_realtime_errors_total") == 0
        await cloud_proxy.cut()  # Supabase goes away: the websocket is reset
        try:
            await eventually(lambda: agent.parts is not None and agent.parts.cloud.realtime_errors > 0, within=20)
        finally:
            await cloud_proxy.restore()
        await eventually(lambda: agent.snapshot().realtime_connected, within=30)  # and it comes back
        errors = value((await http.get(url)).text, "ald_realtime_errors_total")
    assert errors >= 2  # both subscriptions lost, at least
