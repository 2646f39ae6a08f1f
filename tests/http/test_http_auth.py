"""Admin authorisation: the pure decision as a table, then the 401/200 behaviour and the security log over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import web
from http_support import ADMIN_TOKEN, LiveSnapshot, ServerFactory
from loguru import logger

from agent.http import AuthOutcome, HttpServer, authorize

TOKEN = "tok-123"


@pytest.mark.parametrize(
    ("header", "token", "outcome"),
    [
        ("Bearer tok-123", TOKEN, AuthOutcome.GRANTED),
        ("bearer tok-123", TOKEN, AuthOutcome.GRANTED),
        ("  Bearer   tok-123  ", TOKEN, AuthOutcome.GRANTED),
        ("Bearer tok-123", None, AuthOutcome.DISABLED),
        ("Bearer ", "", AuthOutcome.DISABLED),
        (None, TOKEN, AuthOutcome.MISSING),
        ("   ", TOKEN, AuthOutcome.MISSING),
        ("Basic dG9rLTEyMw==", TOKEN, AuthOutcome.MALFORMED),
        ("Bearer", TOKEN, AuthOutcome.MALFORMED),
        ("tok-123", TOKEN, AuthOutcome.MALFORMED),
        ("Bearer tok-124", TOKEN, AuthOutcome.WRONG),
        ("Bearer tok-123x", TOKEN, AuthOutcome.WRONG),
        ("Bearer tok-12", TOKEN, AuthOutcome.WRONG),
        ("Bearer tök-123", TOKEN, AuthOutcome.WRONG),
    ],
    ids=[
        "granted",
        "scheme-case-insensitive",
        "surrounding-spaces",
        "disabled-none",
        "disabled-empty-never-matches-empty",
        "missing",
        "blank",
        "basic-scheme",
        "scheme-without-token",
        "token-without-scheme",
        "wrong",
        "longer",
        "prefix",
        "non-ascii-no-typeerror",
    ],
)
def test_authorize(header: str | None, token: str | None, outcome: AuthOutcome) -> None:
    assert authorize(header, token) is outcome


async def _handover(request: web.Request) -> web.Response:
    return web.json_response({"handover": "requested"})


@pytest.fixture
def security_log() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m).rstrip("\n")), level="DEBUG", format="{extra[area]}|{message}",
                      filter=lambda r: r["extra"].get("area") == "security")  # fmt: skip
    yield lines
    logger.remove(sink)


async def _admin_server(make_server: ServerFactory, live: LiveSnapshot, token: str | None) -> HttpServer:
    server = await make_server(live, start=False, admin_token=token)
    server.add_admin_route("POST", "/admin/handover", _handover)
    await server.start()
    return server


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, AuthOutcome.MISSING),
        ({"Authorization": "Bearer nope"}, AuthOutcome.WRONG),
        ({"Authorization": f"Basic {ADMIN_TOKEN}"}, AuthOutcome.MALFORMED),
    ],
    ids=["no-header", "wrong-token", "wrong-scheme"],
)
async def test_admin_refused(
    make_server: ServerFactory,
    live: LiveSnapshot,
    session: aiohttp.ClientSession,
    security_log: list[str],
    headers: dict[str, str],
    detail: AuthOutcome,
) -> None:
    server = await _admin_server(make_server, live, ADMIN_TOKEN)
    async with session.post(f"{server.url}/admin/handover", headers=headers) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert await response.json() == {"error": "unauthorized", "detail": detail.value}
    assert len(security_log) == 1
    assert security_log[0].startswith("security|admin request refused: POST /admin/handover from 127.0.0.1")
    assert ADMIN_TOKEN not in security_log[0]
    assert "nope" not in security_log[0]


async def test_admin_granted_with_the_token(
    make_server: ServerFactory, live: LiveSnapshot, session: aiohttp.ClientSession, security_log: list[str]
) -> None:
    server = await _admin_server(make_server, live, ADMIN_TOKEN)
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with session.post(f"{server.url}/admin/handover", headers=auth) as response:
        assert response.status == 200
        assert await response.json() == {"handover": "requested"}
    assert security_log == ["security|admin request: POST /admin/handover from 127.0.0.1"]


@pytest.mark.parametrize("token", [None, ""], ids=["none", "empty"])
async def test_admin_disabled_refuses_everything(
    make_server: ServerFactory, live: LiveSnapshot, session: aiohttp.ClientSession, token: str | None
) -> None:
    server = await _admin_server(make_server, live, token)
    assert not server.admin_enabled
    for header in ("Bearer ", f"Bearer {ADMIN_TOKEN}", "Bearer None"):
        async with session.post(f"{server.url}/admin/handover", headers={"Authorization": header}) as response:
            assert response.status == 401
            assert (await response.json())["detail"] == AuthOutcome.DISABLED.value


async def test_admin_routes_need_the_prefix(make_server: ServerFactory, live: LiveSnapshot) -> None:
    server = await make_server(live, start=False)
    with pytest.raises(ValueError, match="/admin/"):
        server.add_admin_route("POST", "/handover", _handover)
