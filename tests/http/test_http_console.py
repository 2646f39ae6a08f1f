"""The console over real HTTP: its page and local assets, its view as JSON, and the server-sent event stream
(one view a second, a fresh reader per page, bounded pages, a broken view reported, shutdown not held up)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from http_support import LiveSnapshot, ServerFactory

from agent.http.console import MAX_STREAMS, STATIC_DIR


class FakeConsole:
    """A ConsoleSource: each reader counts its own views, as the real one sends trend rows once per page."""

    def __init__(self) -> None:
        self.readers = 0
        self.broken = False

    def view(self) -> Mapping[str, Any]:
        return {"machine": {"name": "tool 4"}, "n": 0}

    def stream(self) -> Callable[[], Mapping[str, Any]]:
        self.readers += 1
        reader, count = self.readers, 0

        def next_view() -> Mapping[str, Any]:
            nonlocal count
            if self.broken:
                raise RuntimeError("view bug")
            count += 1
            return {"reader": reader, "n": count, "text": "a\nb <b>"}

        return next_view


async def events(response: aiohttp.ClientResponse, n: int) -> list[tuple[str, Any]]:
    """The next `n` events of a stream as (event, data), skipping the retry hint."""
    out: list[tuple[str, Any]] = []
    event = "message"
    while len(out) < n:
        line = (await response.content.readline()).decode().rstrip("\n")
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            out.append((event, json.loads(line.removeprefix("data: "))))
            event = "message"
    return out


async def test_the_page_and_its_vendored_chart_library_are_local_files(
    make_server: ServerFactory, live: LiveSnapshot, session: aiohttp.ClientSession
) -> None:
    server = await make_server(live, console=FakeConsole())
    for asset in ("console.js", "console.css", "vendor/uplot/uPlot.iife.min.js", "vendor/uplot/uPlot.min.css"):
        async with session.get(f"{server.url}/static/{asset}") as response:
            assert response.status == 200, asset
            assert await response.read() == (STATIC_DIR / asset).read_bytes()
    assert "MIT" in (STATIC_DIR / "vendor/uplot/LICENSE").read_text()
    assert "1.6.32" in (STATIC_DIR / "vendor/uplot/VERSION").read_text()
    async with session.get(f"{server.url}/console.json") as response:
        assert (response.status, await response.json()) == (200, {"machine": {"name": "tool 4"}, "n": 0})


async def test_the_event_stream_pushes_a_view_each_interval_with_a_reader_per_page(
    make_server: ServerFactory, live: LiveSnapshot, session: aiohttp.ClientSession
) -> None:
    console = FakeConsole()
    server = await make_server(live, console=console, console_interval_s=0.05)
    async with session.get(f"{server.url}/events") as first:
        assert first.headers["Content-Type"] == "text/event-stream"
        assert first.headers["Cache-Control"] == "no-store"
        assert (await first.content.readline()) == b"retry: 2000\n"
        got = await events(first, 3)
        assert got == [("view", {"reader": 1, "n": n, "text": "a\nb <b>"}) for n in (1, 2, 3)]
        async with session.get(f"{server.url}/events") as second:
            assert (await events(second, 1)) == [("view", {"reader": 2, "n": 1, "text": "a\nb <b>"})]


async def test_a_broken_view_is_reported_and_the_stream_goes_on(
    make_server: ServerFactory, live: LiveSnapshot, session: aiohttp.ClientSession
) -> None:
    console = FakeConsole()
    server = await make_server(live, console=console, console_interval_s=0.05)
    async with session.get(f"{server.url}/events") as stream:
        await events(stream, 1)
        console.broken = True
        assert (await events(stream, 1)) == [("failure", {"error": "console view failed"})]
        console.broken = False
        assert (await events(stream, 1))[0][0] == "view"


async def test_pages_are_bounded(make_server: ServerFactory, live: LiveSnapshot) -> None:
    server = await make_server(live, console=FakeConsole(), console_interval_s=0.05)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        streams = [await session.get(f"{server.url}/events") for _ in range(MAX_STREAMS)]
        assert [s.status for s in streams] == [200] * MAX_STREAMS
        async with session.get(f"{server.url}/events") as refused:
            assert refused.status == 503
        streams[0].close()
        await asyncio.sleep(0.3)  # the server notices on its next write
        async with session.get(f"{server.url}/events") as again:
            assert again.status == 200
        for s in streams[1:]:
            s.close()


async def test_an_open_page_does_not_hold_up_shutdown(
    make_server: ServerFactory, live: LiveSnapshot, session: aiohttp.ClientSession
) -> None:
    server = await make_server(live, console=FakeConsole(), console_interval_s=30, shutdown_timeout_s=10)
    async with session.get(f"{server.url}/events") as stream:
        await events(stream, 1)
        started = time.monotonic()
        await server.close()
        assert time.monotonic() - started < 2  # not the 10 s grace period, nor the 30 s interval
        assert (await stream.content.read()).strip() == b""  # the stream ended


def test_every_asset_is_package_data() -> None:
    """A wheel (the image installs one) carries each file of static/: pyproject's package-data covers it."""
    import fnmatch
    import tomllib

    patterns = tomllib.loads((STATIC_DIR.parents[2] / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["agent"]
    package = STATIC_DIR.parents[1]
    files = [p.relative_to(package).as_posix() for p in STATIC_DIR.rglob("*") if p.is_file()]
    assert len(files) >= 7

    def globbed(path: str, pattern: str) -> bool:  # setuptools' glob: "*" never crosses a "/"
        parts, pats = path.split("/"), pattern.split("/")
        return len(parts) == len(pats) and all(fnmatch.fnmatchcase(a, b) for a, b in zip(parts, pats, strict=True))

    assert [f for f in files if not any(globbed(f, pat) for pat in patterns)] == []
