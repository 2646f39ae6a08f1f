"""The operator console's HTTP side: the page and its assets (local files), its view as JSON, and a
server-sent event stream of that view (docs/DESIGN.md §6 "Operator console").

Thin I/O: the view comes from a `ConsoleSource` (the app connects `agent.console.Console`); this module only
serves it. `GET /events` is `text/event-stream`: a `retry:` hint, then one `view` event every
`interval_s` until the client goes or the server shuts down (`on_shutdown` sets `closing`, so a page left
open never holds shutdown for the whole grace period). Each stream asks its source for a fresh
`stream()` reader, so a reconnecting page gets the trend history once, then only new rows. At most
`MAX_STREAMS` pages stream at once: memory and work stay bounded whoever opens the page.

Every asset is a file in the package (`static/`, uPlot vendored under `static/vendor/uplot/`): an edge
box may have no internet, and the page must work there.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web
from loguru import logger

__all__ = [
    "CONSOLE_INTERVAL_S",
    "MAX_STREAMS",
    "STATIC_DIR",
    "ConsoleSource",
    "add_console_routes",
]

STATIC_DIR = Path(__file__).with_name("static")
CONSOLE_INTERVAL_S = 1.0  # one view a second: what a person reads; frames may come faster
MAX_STREAMS = 16  # pages streaming at once; more get 503 (an edge box serves a few screens, not a crowd)
RETRY_MS = 2000  # EventSource's reconnect delay after the agent restarts
NO_STORE = {"Cache-Control": "no-store"}

_log = logger.bind(area="application")
_dumps = functools.partial(json.dumps, default=str, separators=(",", ":"))  # one line: SSE data has no newlines


class ConsoleSource(Protocol):
    """Where the console's view comes from."""

    def view(self) -> Mapping[str, Any]: ...

    def stream(self) -> Callable[[], Mapping[str, Any]]:
        """A reader for one page: each call is the next view (trend rows not sent before by this reader)."""
        ...


class _Streams:
    """The open event streams, and the signal that ends them at shutdown."""

    def __init__(self) -> None:
        self.open = 0
        self.closing = asyncio.Event()


SOURCE_KEY = web.AppKey[ConsoleSource]("console_source")  # a Protocol: typed in [ ]
STREAMS_KEY = web.AppKey("console_streams", _Streams)
INTERVAL_KEY = web.AppKey("console_interval", float)
#: Awaited before a view is built: the agent's gate "no PLC read in flight" (agent/http/server.py `quiet`).
QUIET_KEY = web.AppKey[Callable[[], Awaitable[None]]]("console_quiet")


async def _index(_request: web.Request) -> web.FileResponse:
    headers = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache"}
    return web.FileResponse(STATIC_DIR / "index.html", headers=headers)


def _unavailable(why: str) -> web.Response:
    return web.json_response({"error": why}, status=503, headers=NO_STORE)


async def _view(request: web.Request) -> web.Response:
    source = request.app.get(SOURCE_KEY)
    if source is None:
        return _unavailable("the console is not connected")
    await request.app[QUIET_KEY]()
    try:
        view = source.view()
    except Exception:  # a broken view must not take the page's server down with it
        _log.exception("console view failed")
        return _unavailable("console view failed")
    return web.json_response(view, dumps=_dumps, headers=NO_STORE)


async def _events(request: web.Request) -> web.StreamResponse:
    source = request.app.get(SOURCE_KEY)
    streams = request.app[STREAMS_KEY]
    if source is None:
        return _unavailable("the console is not connected")
    if streams.open >= MAX_STREAMS:
        return _unavailable(f"{MAX_STREAMS} consoles are open already")
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no", **NO_STORE})
    streams.open += 1
    try:
        await response.prepare(request)
        await response.write(f"retry: {RETRY_MS}\n\n".encode())
        reader = source.stream()
        failing = False
        while not streams.closing.is_set():
            await request.app[QUIET_KEY]()
            try:
                payload = f"event: view\ndata: {_dumps(reader())}\n\n"
                failing = False
            except Exception:
                if not failing:  # once per outage, not once a second
                    _log.exception("console view failed")
                failing = True
                payload = f"event: failure\ndata: {_dumps({'error': 'console view failed'})}\n\n"
            await response.write(payload.encode())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(streams.closing.wait(), request.app[INTERVAL_KEY])
    except ConnectionResetError:  # the page went away (aiohttp's ClientConnectionResetError is one)
        pass
    finally:
        streams.open -= 1
    return response


async def _close_streams(app: web.Application) -> None:
    app[STREAMS_KEY].closing.set()


def add_console_routes(
    app: web.Application,
    source: ConsoleSource | None,
    *,
    interval_s: float,
    quiet: Callable[[], Awaitable[None]],
) -> None:
    """`/` (the page), `/static/…` (its assets), `/console.json` and `/events` (its view)."""
    app[QUIET_KEY] = quiet
    if source is not None:
        app[SOURCE_KEY] = source
    app[STREAMS_KEY] = _Streams()
    app[INTERVAL_KEY] = interval_s
    app.on_shutdown.append(_close_streams)
    app.router.add_get("/", _index)
    app.router.add_get("/console.json", _view)
    app.router.add_get("/events", _events)
    app.router.add_static("/static/", STATIC_DIR, append_version=False)
