"""Realtime broadcast and presence, as a dashboard uses them ("who is watching this tool", operator notes).

Through the official async client where it can express the behaviour; the ``ack`` reply and the exact frames
are checked on the raw Phoenix socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from supabase import AClientOptions, AsyncClient, acreate_client
from tests.support.poll import eventually

pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")

EVENT_TIMEOUT_S = 10.0
QUIET_S = 0.3


@contextlib.asynccontextmanager
async def async_client(stack: Any) -> AsyncIterator[AsyncClient]:
    options = AClientOptions(realtime={"initial_backoff": 0.1, "max_retries": 10})
    client = await acreate_client(stack.url, stack.service_key, options=options)
    try:
        yield client
    finally:
        await client.remove_all_channels()
        await client.realtime.close()
        await client.postgrest.aclose()


async def _eventually(check: Callable[[], bool]) -> None:
    await eventually(check, within=EVENT_TIMEOUT_S, every=0.02)


async def test_broadcast_reaches_the_others_and_the_sender_only_with_self(clean_db: Any) -> None:
    async with async_client(clean_db) as alice, async_client(clean_db) as bob:
        got: dict[str, asyncio.Queue[dict[str, Any]]] = {"alice": asyncio.Queue(), "bob": asyncio.Queue()}
        a = alice.channel("tool-1")
        a.on_broadcast("note", lambda m: got["alice"].put_nowait(dict(m)))
        b = bob.channel("tool-1", {"config": {"broadcast": {"self": True, "ack": False}, "presence": {"key": ""}}})
        b.on_broadcast("note", lambda m: got["bob"].put_nowait(dict(m)))
        await a.subscribe()
        await b.subscribe()
        await _eventually(lambda: a.is_joined and b.is_joined)

        await a.send_broadcast("note", {"text": "chamber cleaned"})
        message = await asyncio.wait_for(got["bob"].get(), EVENT_TIMEOUT_S)
        assert message["event"] == "note" and message["payload"] == {"text": "chamber cleaned"}
        await b.send_broadcast("note", {"text": "thanks"})
        assert (await asyncio.wait_for(got["alice"].get(), EVENT_TIMEOUT_S))["payload"] == {"text": "thanks"}
        assert (await asyncio.wait_for(got["bob"].get(), EVENT_TIMEOUT_S))["payload"] == {"text": "thanks"}, "self"
        await asyncio.sleep(QUIET_S)
        assert got["alice"].empty(), "without self the sender does not get its own message"


async def test_presence_track_state_diff_and_untrack(clean_db: Any) -> None:
    async with async_client(clean_db) as alice, async_client(clean_db) as bob:
        a = alice.channel("tool-2", {"config": {"presence": {"key": "alice"}, "broadcast": {}}})
        a.on_presence_sync(lambda: None)
        await a.subscribe()
        await _eventually(lambda: a.is_joined)
        await a.track({"user": "alice", "view": "tool-2"})

        b = bob.channel("tool-2", {"config": {"presence": {"key": "bob"}, "broadcast": {}}})
        joins: list[str] = []
        leaves: list[str] = []
        b.on_presence_join(lambda key, _current, _new: joins.append(key))
        b.on_presence_leave(lambda key, _current, _left: leaves.append(key))
        await b.subscribe()
        await _eventually(lambda: "alice" in b.presence_state())  # from presence_state at join
        (meta,) = b.presence_state()["alice"]
        assert meta["user"] == "alice" and meta["view"] == "tool-2" and meta["presence_ref"]

        await b.track({"user": "bob"})
        await _eventually(lambda: set(a.presence_state()) == {"alice", "bob"})  # from presence_diff
        await a.untrack()
        await _eventually(lambda: set(b.presence_state()) == {"bob"})
        assert "alice" in leaves
        await alice.remove_channel(a)
        await b.untrack()
        await _eventually(lambda: b.presence_state() == {})


async def _raw(stack: Any) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    url = stack.url.replace("http", "ws") + "/realtime/v1/websocket"
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, params={"apikey": stack.service_key, "vsn": "1.0.0"}) as sock,
    ):
        yield sock


raw_socket = contextlib.asynccontextmanager(_raw)


async def _recv(sock: aiohttp.ClientWebSocketResponse, *, within: float = EVENT_TIMEOUT_S) -> dict[str, Any]:
    msg = await sock.receive(timeout=within)
    return dict(json.loads(msg.data))


def _join(topic: str, config: dict[str, Any], ref: str = "1") -> dict[str, Any]:
    return {"topic": topic, "event": "phx_join", "payload": {"config": config}, "ref": ref, "join_ref": ref}


async def test_broadcast_ack_replies_to_the_sender_and_leave_untracks(clean_db: Any) -> None:
    async with raw_socket(clean_db) as one, raw_socket(clean_db) as two:
        topic = "realtime:tool-3"
        await one.send_json(_join(topic, {"broadcast": {"ack": True, "self": False}, "presence": {"key": "one"}}))
        assert (await _recv(one))["payload"]["status"] == "ok"
        await two.send_json(_join(topic, {"broadcast": {"ack": False}, "presence": {"key": "two", "enabled": True}}))
        assert (await _recv(two))["payload"]["status"] == "ok"
        assert await _recv(two) == {"topic": topic, "event": "presence_state", "payload": {}, "ref": None}

        note = {"type": "broadcast", "event": "note", "payload": {"n": 1}}
        await one.send_json({"topic": topic, "event": "broadcast", "payload": note, "ref": "7", "join_ref": "1"})
        assert await _recv(one) == {
            "topic": topic,
            "event": "phx_reply",
            "payload": {"status": "ok", "response": {}},
            "ref": "7",
        }
        assert await _recv(two) == {"topic": topic, "event": "broadcast", "payload": note, "ref": None}
        await two.send_json({"topic": topic, "event": "broadcast", "payload": note, "ref": "3", "join_ref": "1"})
        assert (await _recv(one))["event"] == "broadcast"
        with pytest.raises(asyncio.TimeoutError):
            await _recv(two, within=QUIET_S)  # no ack asked: no reply, and no self

        # a channel without presence gets no diffs until it tracks itself
        await one.send_json(_join("realtime:tool-4", {"presence": {"key": "quiet"}}, ref="20"))
        await two.send_json(_join("realtime:tool-4", {"presence": {"key": "loud", "enabled": True}}, ref="21"))
        assert (await _recv(one))["payload"]["status"] == "ok"
        assert [(await _recv(two))["event"] for _ in range(2)] == ["phx_reply", "presence_state"]
        loud = {"type": "presence", "event": "track", "payload": {}}
        await two.send_json({"topic": "realtime:tool-4", "event": "presence", "payload": loud, "ref": "22"})
        assert [(await _recv(two))["event"] for _ in range(2)] == ["phx_reply", "presence_diff"]
        with pytest.raises(asyncio.TimeoutError):
            await _recv(one, within=QUIET_S)

        track = {"type": "presence", "event": "track", "payload": {"user": "one"}}
        await one.send_json({"topic": topic, "event": "presence", "payload": track, "ref": "8", "join_ref": "1"})
        assert (await _recv(one))["event"] == "phx_reply"
        joined = await _recv(two)
        assert joined["event"] == "presence_diff" and joined["payload"]["leaves"] == {}
        (meta,) = joined["payload"]["joins"]["one"]["metas"]
        assert meta["user"] == "one" and meta["phx_ref"]
        await one.close()  # a dropped socket leaves
        left = await _recv(two)
        assert left["event"] == "presence_diff"
        assert left["payload"] == {"joins": {}, "leaves": {"one": {"metas": [meta]}}}


async def test_private_channels_are_refused(clean_db: Any) -> None:
    async with raw_socket(clean_db) as sock:
        await sock.send_json(_join("realtime:secret", {"private": True}))
        reply = await _recv(sock)
        assert reply["payload"]["status"] == "error" and "private" in reply["payload"]["response"]["reason"]


async def test_a_binary_broadcast_reaches_v2_members_as_binary_and_v1_members_as_json(clean_db: Any) -> None:
    """supabase-js sends broadcasts as USER_BROADCAST_PUSH binary frames (Realtime protocol 2.0.0)."""
    url = clean_db.url.replace("http", "ws") + "/realtime/v1/websocket"
    topic = "realtime:tool-5"
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, params={"apikey": clean_db.service_key, "vsn": "2.0.0"}) as js,
        raw_socket(clean_db) as py,
    ):
        join = {"config": {"broadcast": {"ack": True, "self": True}}}
        await js.send_str(json.dumps(["1", "1", topic, "phx_join", join]))
        assert json.loads((await js.receive(timeout=EVENT_TIMEOUT_S)).data)[4]["status"] == "ok"
        await py.send_json(_join(topic, {}))
        assert (await _recv(py))["payload"]["status"] == "ok"

        header = bytes((3, 1, 1, len(topic), 4, 0, 1))
        await js.send_bytes(header + b"1" + b"2" + topic.encode() + b"note" + b'{"text":"hi"}')
        got = [await js.receive(timeout=EVENT_TIMEOUT_S) for _ in range(2)]  # the ack and the own copy, any order
        texts = [json.loads(m.data) for m in got if m.type == aiohttp.WSMsgType.TEXT]
        assert texts == [["1", "2", topic, "phx_reply", {"status": "ok", "response": {}}]], "ack"
        binary = [m.data for m in got if m.type == aiohttp.WSMsgType.BINARY]
        assert binary == [bytes((4, len(topic), 4, 0, 1)) + topic.encode() + b'note{"text":"hi"}'], "self, in binary"
        assert await _recv(py) == {
            "topic": topic,
            "event": "broadcast",
            "payload": {"event": "note", "payload": {"text": "hi"}, "type": "broadcast"},
            "ref": None,
        }
