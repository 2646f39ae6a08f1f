"""Realtime frames on the wire (raw aiohttp websocket): V1 objects with exactly four keys, V2 arrays,
heartbeat, join replies with binding ids, system pushes, leave/close, unmatched topics, bad tokens."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from supalocal.auth import make_api_key

FRAME_KEYS = {"topic", "event", "payload", "ref"}
RECV_TIMEOUT_S = 10.0
MACHINE_A = "00000000-0000-4000-8000-0000000000aa"


@pytest.fixture
async def ws(api_tables: Any) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    url = f"{api_tables.url.replace('http', 'ws', 1)}/realtime/v1/websocket"
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, params={"apikey": api_tables.service_key, "vsn": "1.0.0"}) as sock,
    ):
        yield sock


async def recv(sock: aiohttp.ClientWebSocketResponse) -> Any:
    frame = json.loads(await asyncio.wait_for(sock.receive_str(), RECV_TIMEOUT_S))
    if isinstance(frame, dict):
        assert set(frame) == FRAME_KEYS
    return frame


def join(topic: str, bindings: list[dict[str, Any]], *, ref: str = "1", token: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"config": {"postgres_changes": bindings, "private": False}}
    if token is not None:
        payload["access_token"] = token
    return {"topic": topic, "event": "phx_join", "payload": payload, "ref": ref, "join_ref": ref}


async def test_heartbeat_and_unmatched_topic(ws: aiohttp.ClientWebSocketResponse) -> None:  # items 12, 14
    await ws.send_json({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": None, "join_ref": None})
    assert await recv(ws) == {
        "topic": "phoenix",
        "event": "phx_reply",
        "payload": {"status": "ok", "response": {}},
        "ref": None,
    }
    await ws.send_json({"topic": "realtime:nope", "event": "access_token", "payload": {}, "ref": "7"})
    reply = await recv(ws)
    assert reply["payload"] == {"status": "error", "response": {"reason": "unmatched topic"}} and reply["ref"] == "7"


async def test_join_system_change_leave(api_tables: Any, ws: aiohttp.ClientWebSocketResponse) -> None:  # 13-15
    binding = {"event": "INSERT", "schema": "public", "table": "api_plain", "filter": f"machine_id=eq.{MACHINE_A}"}
    await ws.send_json(join("realtime:w", [binding, {**binding, "event": "*"}], token=api_tables.service_key))
    reply = await recv(ws)
    assert (reply["event"], reply["ref"], reply["payload"]["status"]) == ("phx_reply", "1", "ok")
    echoed = reply["payload"]["response"]["postgres_changes"]
    assert [{k: v for k, v in b.items() if k != "id"} for b in echoed] == [binding, {**binding, "event": "*"}]
    assert all(isinstance(b["id"], int) and b["id"] >= 0 for b in echoed)
    system = await recv(ws)
    assert system == {
        "topic": "realtime:w",
        "event": "system",
        "ref": None,
        "payload": {
            "channel": "w",
            "extension": "postgres_changes",
            "message": "Subscribed to PostgreSQL",
            "status": "ok",
        },
    }
    async with aiohttp.ClientSession(headers={"apikey": api_tables.service_key}) as http:
        await http.post(f"{api_tables.url}/rest/v1/api_plain", json={"machine_id": MACHINE_A, "seq": 3})
    change = await recv(ws)
    assert (change["event"], change["ref"]) == ("postgres_changes", None)
    assert sorted(change["payload"]["ids"]) == sorted(b["id"] for b in echoed)
    data = change["payload"]["data"]
    assert data["record"] == {"id": 1, "machine_id": MACHINE_A, "seq": 3} and data["errors"] is None
    assert data["columns"] == [
        {"name": "id", "type": "int8"},
        {"name": "machine_id", "type": "uuid"},
        {"name": "seq", "type": "int4"},
    ]
    await ws.send_json({"topic": "realtime:w", "event": "phx_leave", "payload": {}, "ref": "2", "join_ref": "1"})
    assert (await recv(ws))["payload"] == {"status": "ok", "response": {}}
    assert await recv(ws) == {"topic": "realtime:w", "event": "phx_close", "payload": {}, "ref": "1"}


@pytest.mark.parametrize(
    ("binding", "message"),
    [
        ({"event": "*", "schema": "public", "table": "api_plain", "filter": "seq=between.1"}, "Error parsing `filter`"),
        ({"event": "*", "schema": "public", "table": "api_plain", "filter": "nope=eq.1"}, "Error parsing `filter`"),
        ({"event": "*", "schema": "public", "table": "api_secret"}, "Unable to subscribe to changes"),
    ],
    ids=["bad-operator", "bad-column", "not-published"],
)
async def test_refused_binding_is_system_error(
    ws: aiohttp.ClientWebSocketResponse, binding: dict[str, Any], message: str
) -> None:  # item 13
    await ws.send_json(join("realtime:bad", [binding]))
    assert (await recv(ws))["payload"]["status"] == "ok"
    system = await recv(ws)
    assert system["event"] == "system" and system["payload"]["status"] == "error"
    assert system["payload"]["message"].startswith(message)


async def test_join_with_expired_token_is_refused(api_tables: Any, ws: aiohttp.ClientWebSocketResponse) -> None:
    expired = make_api_key("service_role", secret=api_tables.jwt_secret, lifetime_s=-30)
    await ws.send_json(join("realtime:t", [], token=expired))
    reply = await recv(ws)
    assert reply["payload"]["status"] == "error"
    assert reply["payload"]["response"]["reason"].startswith("InvalidJWTToken: Token has expired")


async def test_v2_array_frames(api_tables: Any) -> None:  # SHOULD: realtime-js' default serializer
    url = f"{api_tables.url.replace('http', 'ws', 1)}/realtime/v1/websocket"
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, params={"apikey": api_tables.service_key, "vsn": "2.0.0"}) as sock,
    ):
        await sock.send_str(
            json.dumps(
                [
                    "3",
                    "3",
                    "realtime:v2",
                    "phx_join",
                    {"config": {"postgres_changes": [{"event": "*", "schema": "public", "table": "api_plain"}]}},
                ]
            )
        )
        reply = await recv(sock)
        assert reply[:4] == ["3", "3", "realtime:v2", "phx_reply"] and reply[4]["status"] == "ok"
        system = await recv(sock)
        assert system[1:4] == [None, "realtime:v2", "system"] and system[4]["status"] == "ok"


async def test_bad_apikey_refuses_the_socket(api_tables: Any) -> None:
    url = f"{api_tables.url.replace('http', 'ws', 1)}/realtime/v1/websocket"
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await http.ws_connect(url, params={"apikey": "x.y.z", "vsn": "1.0.0"})
        assert err.value.status == 403


async def test_a_channel_subscribing_while_changes_stream_gets_every_change_after_its_subscribed(
    api_tables: Any, ws: aiohttp.ClientWebSocketResponse
) -> None:
    """The hub matches a change only against the channels listening to its table, an index it rebuilds when a
    socket, channel or binding changes: a channel whose join landed while changes were being dispatched (the
    index rebuilt before its bindings existed) must still be in it once it is subscribed."""
    binding = {"event": "INSERT", "schema": "public", "table": "api_plain"}
    url = f"{api_tables.url}/rest/v1/api_plain"
    streaming = asyncio.Event()

    async def insert(http: aiohttp.ClientSession, seq: int) -> None:
        async with http.post(url, json={"machine_id": MACHINE_A, "seq": seq}) as response:
            assert response.status == 201, await response.text()

    async def stream(http: aiohttp.ClientSession) -> None:
        seq = 0
        while True:
            seq += 1
            await insert(http, seq)
            streaming.set()

    async with aiohttp.ClientSession(headers={"apikey": api_tables.service_key}) as http:
        task = asyncio.create_task(stream(http))
        try:
            await asyncio.wait_for(streaming.wait(), RECV_TIMEOUT_S)
            for attempt in range(1, 6):  # joins that interleave with the dispatches of the stream
                topic = f"realtime:late-{attempt}"
                await ws.send_json(join(topic, [binding], ref=str(attempt), token=api_tables.service_key))
                subscribed = False
                while not subscribed:
                    frame = await recv(ws)
                    subscribed = frame["event"] == "system" and frame["topic"] == topic
                    assert frame["event"] != "system" or frame["payload"]["status"] == "ok", frame
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await insert(http, 1_000_000)  # after every channel said "Subscribed": each of them must get it
    seen: set[str] = set()
    while len(seen) < 5:
        frame = await recv(ws)
        if frame["event"] == "postgres_changes" and frame["payload"]["data"]["record"]["seq"] == 1_000_000:
            seen.add(frame["topic"])
    assert seen == {f"realtime:late-{n}" for n in range(1, 6)}
