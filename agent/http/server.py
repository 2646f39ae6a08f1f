"""The agent's HTTP server: /health/basic, /health, /metrics, the operator console and the admin route group.

A thin I/O shell: each handler takes one snapshot (a cheap sync call, never blocking the loop) and hands it to
the pure functions in `health.py` and `agent.metrics`; the console's page, view and event stream are
`console.py`'s (the view itself is built by `agent.console`, connected by the app). Shared objects live in
the aiohttp app under typed `AppKey`s.

    async with HttpServer(snapshot=app.snapshot, metrics=metrics, host="0.0.0.0", port=8000,
                          admin_token=token) as server:   # port=0 picks a free port: see server.port
        ...

Lifecycle: NEW → RUNNING → CLOSED, one way. `start()` twice, after close, or `add_admin_route()` after start
raise RuntimeError; `close()` is idempotent so teardown paths need no bookkeeping. Shutdown order (aiohttp's
`AppRunner.cleanup`): stop the listening site, so no new connection is accepted → on_shutdown signals → wait up
to `shutdown_timeout_s` for in-flight requests, then cancel them → on_cleanup. A scrape or /health in progress
therefore finishes, and nothing new arrives once the agent has started tearing down.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any, Self

from aiohttp import web
from loguru import logger

from agent.http.auth import ADMIN_TOKEN_KEY, Handler, require_admin
from agent.http.console import CONSOLE_INTERVAL_S, ConsoleSource, add_console_routes
from agent.http.health import DEFAULT_THRESHOLDS, HealthThresholds, basic_health, full_health
from agent.metrics import CONTENT_TYPE, AgentMetrics
from agent.status import AgentSnapshot

__all__ = ["HttpServer", "ServerState"]

DEFAULT_HOST = "0.0.0.0"  # the container's port is published; the app narrows it when it wants loopback only
DEFAULT_PORT = 8000  # HTTP_PORT
DEFAULT_SHUTDOWN_TIMEOUT_S = 5.0  # in-flight requests are short; SIGTERM's whole budget is SHUTDOWN_TIMEOUT
ADMIN_PREFIX = "/admin/"
NO_STORE = {"Cache-Control": "no-store"}

SNAPSHOT_KEY = web.AppKey[Callable[[], AgentSnapshot]]("snapshot")  # not a class: typed in [ ]
METRICS_KEY = web.AppKey("metrics", AgentMetrics)
THRESHOLDS_KEY = web.AppKey("thresholds", HealthThresholds)
QUIET_KEY = web.AppKey[Callable[[], Awaitable[None]]]("quiet")

_log = logger.bind(area="application")
_dumps = functools.partial(json.dumps, default=str)  # current_run may hold datetimes and UUIDs


class ServerState(StrEnum):
    NEW = "new"
    RUNNING = "running"
    CLOSED = "closed"


def _json(body: dict[str, Any], status: int) -> web.Response:
    return web.json_response(body, status=status, dumps=_dumps, headers=NO_STORE)


def _snapshot(request: web.Request) -> AgentSnapshot:
    return request.app[SNAPSHOT_KEY]()


async def _health_basic(request: web.Request) -> web.Response:
    try:
        status, body = basic_health(_snapshot(request))
    except Exception:  # a broken snapshot means we cannot vouch for anything: answer 503, never crash the probe
        _log.exception("snapshot failed for /health/basic")
        return _json({"status": "unavailable"}, 503)
    return _json(body, status)


async def _quiet(request: web.Request) -> None:
    """Wait for the server's quiet gate (the agent's: no PLC read in flight) before CPU-heavy work: a /metrics
    render takes several ms of Python, which would otherwise land between the Modbus round trips of a read."""
    await request.app[QUIET_KEY]()


async def _no_wait() -> None:
    return None


async def _health(request: web.Request) -> web.Response:
    await _quiet(request)
    try:
        status, body = full_health(_snapshot(request), thresholds=request.app[THRESHOLDS_KEY])
    except Exception:
        _log.exception("snapshot failed for /health")
        return _json({"status": "unhealthy", "reasons": ["agent snapshot failed"]}, 503)
    return _json(body, status)


async def _metrics(request: web.Request) -> web.Response:
    await _quiet(request)
    try:
        text = request.app[METRICS_KEY].render()
    except Exception:
        _log.exception("snapshot failed for /metrics")
        return web.Response(status=500, text="agent snapshot failed\n", headers=NO_STORE)
    return web.Response(body=text, headers={"Content-Type": CONTENT_TYPE, **NO_STORE})


class HttpServer:
    """One aiohttp `AppRunner` + `TCPSite` serving the agent's endpoints; an `async with` object.

    `admin_token` None or "" disables admin: every admin route answers 401. Routes added with
    `add_admin_route` before start are wrapped by `require_admin`. Without a `console` source the page is
    served but its view answers 503 (the page says so). `quiet`, when given, is awaited before /metrics,
    /health and the console's views are built (not /health/basic, the load balancer's cheap probe).
    """

    def __init__(
        self,
        *,
        snapshot: Callable[[], AgentSnapshot],
        metrics: AgentMetrics,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        admin_token: str | None = None,
        thresholds: HealthThresholds = DEFAULT_THRESHOLDS,
        shutdown_timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S,
        console: ConsoleSource | None = None,
        console_interval_s: float = CONSOLE_INTERVAL_S,
        quiet: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._host = host
        self._requested_port = port
        self._shutdown_timeout_s = shutdown_timeout_s
        self._state = ServerState.NEW
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._app = web.Application()
        self._app[SNAPSHOT_KEY] = snapshot
        self._app[METRICS_KEY] = metrics
        self._app[THRESHOLDS_KEY] = thresholds
        self._app[QUIET_KEY] = quiet or _no_wait
        self._app[ADMIN_TOKEN_KEY] = admin_token or ""
        add_console_routes(self._app, console, interval_s=console_interval_s, quiet=self._app[QUIET_KEY])
        self._app.router.add_get("/health/basic", _health_basic)
        self._app.router.add_get("/health", _health)
        self._app.router.add_get("/metrics", _metrics)

    @property
    def state(self) -> ServerState:
        return self._state

    @property
    def admin_enabled(self) -> bool:
        return bool(self._app[ADMIN_TOKEN_KEY])

    @property
    def port(self) -> int:
        """The bound TCP port (the real one when constructed with port=0). RuntimeError unless running."""
        if self._state is not ServerState.RUNNING or self._port is None:
            raise RuntimeError(f"HttpServer has no bound port while {self._state.value}")
        return self._port

    @property
    def url(self) -> str:
        """Base URL to reach the server; a wildcard bind is reached through loopback."""
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(self._host, self._host)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"  # IPv6 literal
        return f"http://{host}:{self.port}"

    def add_admin_route(self, method: str, path: str, handler: Handler) -> None:
        """Register `handler` under /admin/…, behind the admin token. Only before start (the router freezes)."""
        if self._state is not ServerState.NEW:
            raise RuntimeError(f"admin routes must be added before start (server is {self._state.value})")
        if not path.startswith(ADMIN_PREFIX):
            raise ValueError(f"admin route {path!r} must start with {ADMIN_PREFIX!r}")
        self._app.router.add_route(method, path, require_admin(handler))

    async def start(self) -> None:
        """Bind and serve. RuntimeError if already started or closed; OSError (e.g. port in use) after cleanup."""
        if self._state is not ServerState.NEW:
            raise RuntimeError(f"HttpServer cannot start: it is {self._state.value}")
        self._state = ServerState.RUNNING
        # aiohttp's access log would log every HAProxy probe (twice a second); requests worth a line log themselves.
        runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=self._shutdown_timeout_s)
        self._runner = runner
        try:
            await runner.setup()
            site = web.TCPSite(runner, self._host, self._requested_port)
            await site.start()
        except BaseException:
            await self.close()
            raise
        self._port = int(runner.addresses[0][1])
        _log.info("http serving on {}:{} (admin {})", self._host, self._port,
                  "enabled" if self.admin_enabled else "disabled")  # fmt: skip

    async def close(self) -> None:
        """Stop serving in aiohttp's order (module docstring). Idempotent; a never-started server just closes."""
        if self._state is ServerState.CLOSED:
            return
        was_running = self._state is ServerState.RUNNING
        self._state = ServerState.CLOSED
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        if was_running:
            _log.info("http server closed")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
