"""The aiohttp application serving ``/rest/v1`` and ``/realtime/v1/websocket`` on one port.

Start-up order (``cleanup_ctx``, exited in reverse): asyncpg pool → schema cache and the
``pgrst`` reload listener → change capture (schema ``_supalocal``, triggers, LISTEN) → realtime hub.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web
from aiohttp.typedefs import Handler

from supalocal.api.capture import ChangeCapture
from supalocal.api.realtime import RealtimeHub
from supalocal.api.rest import RestApi, error_middleware

__all__ = ["CAPTURE_KEY", "POOL_KEY", "REALTIME_KEY", "REST_KEY", "create_app"]

POOL_KEY = web.AppKey("supalocal_pool", asyncpg.Pool)
REST_KEY = web.AppKey("supalocal_rest", RestApi)
CAPTURE_KEY = web.AppKey("supalocal_capture", ChangeCapture)
REALTIME_KEY = web.AppKey("supalocal_realtime", RealtimeHub)
POOL_MIN_SIZE = 2
POOL_MAX_SIZE = 10
PGRST_CHANNEL = "pgrst"  # PostgREST reloads its schema cache on NOTIFY pgrst
# The API renders timestamps as hosted Supabase does (UTC) whatever the cluster's default is.
SERVER_SETTINGS = {"TimeZone": "UTC", "application_name": "supalocal-api"}
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, POST, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": (
        "authorization, apikey, content-type, prefer, accept-profile, content-profile, x-client-info, range"
    ),
    "Access-Control-Expose-Headers": "Content-Range, Content-Location, Proxy-Status",
}


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Preflight and CORS headers so a browser dashboard can call ``/rest/v1`` directly."""
    if request.method == "OPTIONS":
        return web.Response(status=200, headers=CORS_HEADERS)
    response = await handler(request)
    if not response.prepared:
        response.headers.update(CORS_HEADERS)
    return response


def create_app(*, dsn: str, jwt_secret: str) -> web.Application:
    """The app; it connects to ``dsn`` (a superuser) on start-up and installs ``_supalocal`` there.

    Example::

        runner = web.AppRunner(create_app(dsn=pg.dsn(), jwt_secret=secret))
    """
    app = web.Application(middlewares=[cors_middleware, error_middleware])

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(
            dsn, min_size=POOL_MIN_SIZE, max_size=POOL_MAX_SIZE, server_settings=SERVER_SETTINGS
        )
        try:
            rest = RestApi(pool=pool, jwt_secret=jwt_secret)
            await rest.reload_schema()
            capture = ChangeCapture(dsn=dsn, server_settings=SERVER_SETTINGS)
            hub = RealtimeHub(capture=capture, pool=pool, jwt_secret=jwt_secret)
            listener = await asyncpg.connect(dsn, server_settings=SERVER_SETTINGS)
            try:
                reloads: set[asyncio.Task[object]] = set()

                def on_reload(*_: object) -> None:
                    task = asyncio.get_running_loop().create_task(rest.reload_schema())
                    reloads.add(task)
                    task.add_done_callback(reloads.discard)

                await listener.add_listener(PGRST_CHANNEL, on_reload)
                await capture.start(on_change=hub.dispatch)
                app[POOL_KEY], app[REST_KEY], app[CAPTURE_KEY], app[REALTIME_KEY] = pool, rest, capture, hub
                yield
            finally:
                with contextlib.suppress(Exception):
                    await hub.close()
                with contextlib.suppress(Exception):
                    await capture.stop()
                await listener.close()
        finally:
            await pool.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/realtime/v1/websocket", _websocket)
    app.router.add_route("*", "/rest/v1/", _delegate("handle_root"))
    app.router.add_route("*", "/rest/v1/rpc/{name}", _delegate("handle"))
    app.router.add_route("*", "/rest/v1/{name}", _delegate("handle"))
    return app


def _delegate(method: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        respond: Handler = getattr(request.app[REST_KEY], method)
        return await respond(request)

    return handler


async def _websocket(request: web.Request) -> web.StreamResponse:
    return await request.app[REALTIME_KEY].handle(request)
