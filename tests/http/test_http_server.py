"""HttpServer over real TCP on port 0: endpoints follow the live snapshot, /metrics parses, lifecycle is guarded."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from datetime import UTC, datetime

import aiohttp
import pytest
from http_support import ADMIN_TOKEN, LiveSnapshot, ServerFactory
from prometheus_client.parser import text_string_to_metric_families

import agent.http
from agent.http import HttpServer, ServerState
from agent.metrics import CONTENT_TYPE, AgentMetrics
from agent.status import AgentSnapshot


def test_public_surface() -> None:
    assert sorted(agent.http.__all__) == sorted(
        ["DEFAULT_THRESHOLDS", "AuthOutcome", "ConsoleSource", "HealthStatus", "HealthThresholds", "HttpServer",
         "ServerState", "assess", "authorize", "basic_health", "full_health", "require_admin"]
    )  # fmt: skip


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, str, str]:
    async with session.get(url) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def test_basic_health_follows_serving(
    server: HttpServer, live: LiveSnapshot, session: aiohttp.ClientSession
) -> None:
    async with session.get(f"{server.url}/health/basic") as response:
        assert (response.status, await response.json()) == (200, {"status": "ok"})
        assert response.headers["Cache-Control"] == "no-store"
    live.update(serving=False)
    async with session.get(f"{server.url}/health/basic") as response:
        assert (response.status, await response.json()) == (503, {"status": "unavailable"})


async def test_health_is_the_live_state_not_a_constant(
    server: HttpServer, live: LiveSnapshot, session: aiohttp.ClientSession
) -> None:
    async with session.get(f"{server.url}/health") as response:
        first = await response.json()
        assert response.status == 200
    assert first["status"] == "healthy"
    assert set(first) >= {"status", "role", "color", "version", "services", "metrics", "current_run"}
    assert set(first["services"]) == {"plc", "database", "realtime", "parameter_logger"}

    started = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
    live.update(
        plc_connected=False,
        spool_depth=42,
        memory_mb=77.0,
        role="standby",
        current_run={"id": "run-9", "started_at": started, "completed_steps": 3},
    )
    async with session.get(f"{server.url}/health") as response:
        second = await response.json()
        assert response.status == 200
    assert second["status"] == "degraded"
    assert second["role"] == "standby"
    assert second["services"]["plc"]["status"] == "down"
    assert (second["metrics"]["spool_depth"], second["metrics"]["memory_mb"]) == (42, 77.0)
    assert second["current_run"] == {"id": "run-9", "started_at": "2026-05-06 07:08:09+00:00", "completed_steps": 3}

    live.update(serving=False)
    async with session.get(f"{server.url}/health") as response:
        assert response.status == 503
        assert (await response.json())["status"] == "unhealthy"


async def test_metrics_follow_the_snapshot(
    server: HttpServer, live: LiveSnapshot, session: aiohttp.ClientSession
) -> None:
    status, content_type, text = await _get(session, f"{server.url}/metrics")
    assert status == 200
    assert content_type == CONTENT_TYPE
    values = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    snap = live.current
    assert values["ald_plc_connected"] == 1.0
    assert values["ald_spool_depth"] == snap.spool_depth
    assert values["ald_memory_usage_mb"] == snap.memory_mb
    assert values["ald_plc_errors_total"] == snap.errors["plc"]

    live.update(plc_connected=False, spool_depth=9001, memory_mb=512.5, errors={"plc": 40})
    _, _, text = await _get(session, f"{server.url}/metrics")
    values = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert (values["ald_plc_connected"], values["ald_spool_depth"], values["ald_memory_usage_mb"]) == (0, 9001, 512.5)
    assert values["ald_plc_errors_total"] == 40


async def test_histogram_hooks_reach_metrics(
    make_server: ServerFactory, live: LiveSnapshot, session: aiohttp.ClientSession
) -> None:
    metrics = AgentMetrics(snapshot=live)
    server = await make_server(live, metrics=metrics)
    metrics.observe_command_latency(0.08)
    metrics.observe_step_timing_error(0.0015)
    _, _, text = await _get(session, f"{server.url}/metrics")
    samples = {(s.name, s.labels.get("le")): s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples[("ald_command_latency_seconds_count", None)] == 1
    assert samples[("ald_command_latency_seconds_bucket", "0.075")] == 0
    assert samples[("ald_command_latency_seconds_bucket", "0.1")] == 1
    assert samples[("ald_step_timing_error_seconds_bucket", "0.001")] == 0
    assert samples[("ald_step_timing_error_seconds_bucket", "0.002")] == 1


async def test_secrets_never_served(server: HttpServer, live: LiveSnapshot, session: aiohttp.ClientSession) -> None:
    live.update(plc_connected=False, plc_last_error="connection refused [127.0.0.1:502]")
    for path in ("/", "/health", "/health/basic", "/metrics"):
        status, _, text = await _get(session, f"{server.url}{path}")
        assert status == 200, path
        assert ADMIN_TOKEN not in text, path


async def test_the_console_page_is_served_without_a_console(server: HttpServer, session: aiohttp.ClientSession) -> None:
    """The page and its assets are files in the package; with no console connected its view says 503."""
    status, content_type, text = await _get(session, f"{server.url}/")
    assert (status, content_type) == (200, "text/html; charset=utf-8")
    assert '<script src="/static/console.js"' in text and "http" + "s://" not in text  # every asset is local
    assert (await _get(session, f"{server.url}/console.json"))[0] == 503
    assert (await _get(session, f"{server.url}/events"))[0] == 503


async def test_broken_snapshot_fails_closed(make_server: ServerFactory, session: aiohttp.ClientSession) -> None:
    def broken() -> AgentSnapshot:
        raise RuntimeError("spool closed")

    server = await make_server(broken)  # type: ignore[arg-type]
    assert (await _get(session, f"{server.url}/health/basic"))[0] == 503
    status, _, text = await _get(session, f"{server.url}/health")
    assert (status, "agent snapshot failed" in text) == (503, True)
    assert (await _get(session, f"{server.url}/metrics"))[0] == 500


async def test_two_servers_side_by_side(make_server: ServerFactory, session: aiohttp.ClientSession) -> None:
    blue, green = LiveSnapshot(), LiveSnapshot()
    green.update(color="green", role="standby", version="1.4.3")
    servers = [await make_server(blue), await make_server(green)]
    assert servers[0].port != servers[1].port
    for server, color in zip(servers, ("blue", "green"), strict=True):
        async with session.get(f"{server.url}/health") as response:
            assert (await response.json())["color"] == color
        _, _, text = await _get(session, f"{server.url}/metrics")
        assert f'agent_build_info{{color="{color}"' in text


async def test_lifecycle_misuse(make_server: ServerFactory, live: LiveSnapshot) -> None:
    server = await make_server(live, start=False)
    assert server.state is ServerState.NEW
    with pytest.raises(RuntimeError, match="no bound port while new"):
        _ = server.port
    async with server:
        assert server.state is ServerState.RUNNING
        with pytest.raises(RuntimeError, match="cannot start: it is running"):
            await server.start()
        with pytest.raises(RuntimeError, match="before start"):
            server.add_admin_route("POST", "/admin/drain", _noop)
        port = server.port
    assert server.state is ServerState.CLOSED
    await server.close()  # idempotent
    with pytest.raises(RuntimeError, match="cannot start: it is closed"):
        await server.start()
    with pytest.raises(RuntimeError, match="no bound port while closed"):
        _ = server.port
    with socket.socket() as probe:  # the port is really released
        assert probe.connect_ex(("127.0.0.1", port)) != 0


async def test_port_in_use_raises_and_closes(live: LiveSnapshot) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = HttpServer(snapshot=live, metrics=AgentMetrics(snapshot=live), host="127.0.0.1",
                            port=taken.getsockname()[1])  # fmt: skip
        with pytest.raises(OSError):
            await server.start()
    assert server.state is ServerState.CLOSED


async def _noop(request: object) -> None:  # never called: registration must fail first
    raise AssertionError


PROMTOOL = shutil.which("promtool")
# The contract name docs/DESIGN.md §6 fixes; promtool's lint prefers base units (bytes) but we keep the contract.
ALLOWED_LINT = {"ald_memory_usage_mb metric names should not contain abbreviated units"}


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install -y prometheus provides it)")
async def test_promtool_accepts_metrics(
    make_server: ServerFactory, live: LiveSnapshot, session: aiohttp.ClientSession
) -> None:
    metrics = AgentMetrics(snapshot=live)
    server = await make_server(live, metrics=metrics)
    live.update(errors={"plc": 1, "Real-time": 2}, current_run={"id": "r"})
    metrics.observe_command_latency(0.2)
    metrics.observe_step_timing_error(0.003)
    _, _, text = await _get(session, f"{server.url}/metrics")
    result = subprocess.run(  # noqa: ASYNC221 - a 20 ms lint of a local string, in a test
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30, check=False
    )
    problems = {line.strip() for line in (result.stdout + result.stderr).splitlines() if line.strip()}
    assert problems <= ALLOWED_LINT, problems
    assert result.returncode in (0, 3) and (result.returncode == 0) == (not problems)


async def test_wildcard_bind_is_reached_through_loopback(live: LiveSnapshot, session: aiohttp.ClientSession) -> None:
    async with HttpServer(snapshot=live, metrics=AgentMetrics(snapshot=live), port=0) as server:  # default host
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert (await _get(session, f"{server.url}/health/basic"))[0] == 200


@pytest.mark.parametrize("path", ["/metrics", "/health", "/"], ids=["metrics", "health", "status-page"])
async def test_heavy_endpoints_wait_for_quiet_and_the_basic_probe_does_not(
    make_server: ServerFactory, live: LiveSnapshot, session: aiohttp.ClientSession, path: str
) -> None:
    """The agent's quiet gate is "no PLC read in flight": a render never lands between a read's round trips."""
    gate = asyncio.Event()

    async def quiet() -> None:
        await gate.wait()

    server = await make_server(live, quiet=quiet)
    pending = asyncio.create_task(session.get(server.url + path))
    basic = await session.get(server.url + "/health/basic")  # answered while the gate is closed
    assert basic.status == 200 and not pending.done()
    gate.set()
    response = await pending
    assert response.status in (200, 503)
