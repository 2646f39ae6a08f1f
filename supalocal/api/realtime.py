"""``/realtime/v1/websocket``: the Phoenix channel server for ``postgres_changes`` (docs/LOCAL_STACK.md §4),
broadcast and presence.

Broadcast: a ``broadcast`` push reaches every channel joined to the same topic on any socket, the
sender's own only with ``config.broadcast.self``; with ``config.broadcast.ack`` the sender gets an ``ok``
reply. One sent as a binary frame (supabase-js sends every broadcast so) reaches V2 members as a binary
frame and V1 members as JSON. Presence: see :mod:`supalocal.api.rtpresence`. Private channels
(``config.private``, authorised by RLS on ``realtime.messages``) are refused at join: supalocal does not
emulate them.

Per socket: one reader (this handler) and one writer task draining an ordered queue, so a change is
queued for every subscriber in commit order without waiting on any socket. Per channel: the join's
bindings with their ids, the subscriber's claims, and whether its role bypasses RLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import jwt
from aiohttp import WSMsgType, web

from supalocal.api.capture import Change, ChangeCapture
from supalocal.api.catalog import Table
from supalocal.api.errors import AuthError
from supalocal.api.phoenix import Frame, FrameError, Serializer, serializer_for
from supalocal.api.rtfilter import FilterError, RowFilter, parse_row_filter
from supalocal.api.rtpayload import changes_payload
from supalocal.api.rtpresence import Meta, diff, state_of, tracked
from supalocal.api.sql import quote_ident
from supalocal.auth import is_opaque_key, verify_token

__all__ = ["RealtimeHub"]

log = logging.getLogger(__name__)

PHOENIX_TOPIC = "phoenix"
CHANNEL_PREFIX = "realtime:"
MAX_FRAME_BYTES = 1 << 20  # the client's websockets max_size
EXTENSION = "postgres_changes"
EVENTS = frozenset({"INSERT", "UPDATE", "DELETE", "*"})
_OK_EMPTY = '{"status":"ok","response":{}}'


@dataclass(frozen=True)
class Binding:
    id: int
    event: str
    schema: str
    table: str
    filter: RowFilter

    def matches(self, change: Change, types: dict[str, str]) -> bool:
        if change.schema != self.schema or change.table != self.table:
            return False
        if self.event not in ("*", change.type):
            return False
        row = change.row("old_record" if change.type == "DELETE" else "record")
        return self.filter.matches(row, types)


@dataclass
class Channel:
    topic: str
    join_ref: str | None
    claims: dict[str, Any]
    bypass_rls: bool = True
    bindings: list[Binding] = field(default_factory=list)
    broadcast_self: bool = False
    broadcast_ack: bool = False
    presence_key: str = ""
    presence_enabled: bool = False
    presence_meta: Meta | None = None

    @property
    def name(self) -> str:
        return self.topic.removeprefix(CHANNEL_PREFIX)


def binding_id(params: dict[str, Any]) -> int:
    """A stable non-negative id from the binding's params (the real server uses ``phash2``)."""
    return zlib.crc32(json.dumps(params, sort_keys=True).encode())


class Socket:
    """One websocket: its serializer, socket-level claims, channels and ordered outbound queue."""

    def __init__(self, ws: web.WebSocketResponse, serializer: Serializer, claims: dict[str, Any]) -> None:
        self.ws = ws
        self.serializer = serializer
        self.claims = claims
        self.channels: dict[str, Channel] = {}
        self._queue: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_loop(), name="supalocal-realtime-writer")

    def send(self, *, topic: str, event: str, payload_json: str, ref: str | None, join_ref: str | None) -> None:
        frame = self.serializer.encode(topic=topic, event=event, payload_json=payload_json, ref=ref, join_ref=join_ref)
        self._queue.put_nowait(frame)

    def send_frame(self, frame: str | bytes) -> None:
        """Queue an encoded frame (text or binary)."""
        self._queue.put_nowait(frame)

    def reply(self, frame: Frame, payload_json: str) -> None:
        self.send(
            topic=frame.topic, event="phx_reply", payload_json=payload_json, ref=frame.ref, join_ref=frame.join_ref
        )

    def system(self, channel: Channel, *, status: str, message: str, extension: str = EXTENSION) -> None:
        payload = {"channel": channel.name, "extension": extension, "message": message, "status": status}
        self.send(
            topic=channel.topic, event="system", payload_json=json.dumps(payload), ref=None, join_ref=channel.join_ref
        )

    async def _write_loop(self) -> None:
        while (frame := await self._queue.get()) is not None:
            if len(frame) > MAX_FRAME_BYTES:
                log.warning("supalocal realtime dropped a %d-byte frame", len(frame))
                continue
            try:
                await (self.ws.send_bytes(frame) if isinstance(frame, bytes) else self.ws.send_str(frame))
            except (ConnectionError, RuntimeError):
                return

    async def close(self) -> None:
        self._queue.put_nowait(None)
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
            await asyncio.wait_for(self._writer, timeout=1.0)
        self._writer.cancel()


def _token_reason(token: str, exc: AuthError) -> str:
    if exc.code == "PGRST303":
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp", 0)
        return f"InvalidJWTToken: Token has expired {max(0, int(time.time() - exp))} seconds ago"
    return f"InvalidJWTToken: {exc.message}"


class RealtimeHub:
    """Every socket of the app; :meth:`dispatch` is the capture's callback."""

    def __init__(self, *, capture: ChangeCapture, pool: asyncpg.Pool, jwt_secret: str) -> None:
        self._capture = capture
        self._pool = pool
        self._secret = jwt_secret
        self._sockets: set[Socket] = set()
        # who listens to which table, rebuilt when a socket, channel or binding changes (`_changed`): a change
        # to a table nobody subscribed to (most of them, under a fleet's telemetry) then costs one dict lookup
        self._generation = 0
        self._listeners: dict[tuple[str, str], list[tuple[Socket, Channel]]] = {}
        self._listeners_generation = -1
        self._columns_json: dict[tuple[str, str], tuple[Table, str]] = {}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        token = request.query.get("apikey") or request.headers.get("x-api-key")
        try:
            claims = verify_token(token, secret=self._secret)
        except AuthError as exc:
            return web.json_response({"message": exc.message}, status=403)
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES, autoping=True)
        await ws.prepare(request)
        sock = Socket(ws, serializer_for(request.query.get("vsn")), claims)
        self._sockets.add(sock)
        self._changed()
        try:
            async for msg in ws:
                try:
                    if msg.type == WSMsgType.TEXT:
                        frame = sock.serializer.decode(msg.data)
                    elif msg.type == WSMsgType.BINARY:
                        frame = sock.serializer.decode_binary(msg.data)
                    else:
                        continue
                except FrameError:
                    continue
                await self._on_frame(sock, frame)
        finally:
            self._sockets.discard(sock)
            self._changed()
            for channel in list(sock.channels.values()):
                self._presence_leave(channel)
            await sock.close()
        return ws

    async def _on_frame(self, sock: Socket, frame: Frame) -> None:
        if frame.topic == PHOENIX_TOPIC and frame.event == "heartbeat":
            sock.reply(frame, _OK_EMPTY)
        elif frame.event == "phx_join":
            await self._join(sock, frame)
        elif frame.topic not in sock.channels:
            sock.reply(frame, '{"status":"error","response":{"reason":"unmatched topic"}}')
        elif frame.event == "phx_leave":
            channel = sock.channels.pop(frame.topic)
            self._changed()
            self._presence_leave(channel)
            sock.reply(frame, _OK_EMPTY)
            sock.send(
                topic=frame.topic, event="phx_close", payload_json="{}", ref=channel.join_ref, join_ref=channel.join_ref
            )
        elif frame.event == "access_token":
            self._refresh_token(sock, sock.channels[frame.topic], frame.payload.get("access_token"))
        elif frame.event == "broadcast":
            self._broadcast(sock, sock.channels[frame.topic], frame)
        elif frame.event == "presence":
            self._presence(sock, sock.channels[frame.topic], frame)

    def _members(self, topic: str) -> list[tuple[Socket, Channel]]:
        return [(s, s.channels[topic]) for s in list(self._sockets) if topic in s.channels]

    def _broadcast(self, sender: Socket, channel: Channel, frame: Frame) -> None:
        payload_json = json.dumps(frame.payload)
        for sock, member in self._members(channel.topic):
            if member is channel and not channel.broadcast_self:
                continue
            if frame.user_broadcast is None:
                sock.send(
                    topic=member.topic, event="broadcast", payload_json=payload_json, ref=None, join_ref=member.join_ref
                )
            elif encoded := sock.serializer.encode_user_broadcast(topic=member.topic, broadcast=frame.user_broadcast):
                sock.send_frame(encoded)
        if channel.broadcast_ack:
            sender.reply(frame, _OK_EMPTY)

    def _push_diff(self, topic: str, payload: dict[str, Any]) -> None:
        payload_json = json.dumps(payload)
        for sock, member in self._members(topic):
            if member.presence_enabled:  # Realtime drops presence_diff for channels without presence
                sock.send(
                    topic=topic, event="presence_diff", payload_json=payload_json, ref=None, join_ref=member.join_ref
                )

    def _presence(self, sock: Socket, channel: Channel, frame: Frame) -> None:
        event = frame.payload.get("event")
        previous = channel.presence_meta
        if event == "track":
            channel.presence_enabled = True  # a track turns presence on for its channel, as Realtime does
            meta = frame.payload.get("payload")
            channel.presence_meta = tracked(meta if isinstance(meta, dict) else {}, previous=previous)
            sock.reply(frame, _OK_EMPTY)
            self._push_diff(channel.topic, diff(channel.presence_key, joined=channel.presence_meta, left=previous))
        elif event == "untrack":
            sock.reply(frame, _OK_EMPTY)
            self._presence_leave(channel)
        else:
            sock.reply(frame, '{"status":"error","response":{"reason":"unknown presence event"}}')

    def _presence_leave(self, channel: Channel) -> None:
        left, channel.presence_meta = channel.presence_meta, None
        if left is not None:
            self._push_diff(channel.topic, diff(channel.presence_key, left=left))

    def _claims_for(self, sock: Socket, token: Any) -> dict[str, Any]:
        if isinstance(token, str) and token and not is_opaque_key(token):
            return verify_token(token, secret=self._secret)
        return sock.claims

    def _refresh_token(self, sock: Socket, channel: Channel, token: Any) -> None:
        try:
            channel.claims = self._claims_for(sock, token)
        except AuthError as exc:
            reason = _token_reason(str(token), exc).removeprefix("InvalidJWTToken: ")
            sock.system(channel, status="error", message=reason, extension="system")
            sock.channels.pop(channel.topic, None)
            self._changed()
            self._presence_leave(channel)
            sock.send(
                topic=channel.topic,
                event="phx_close",
                payload_json="{}",
                ref=channel.join_ref,
                join_ref=channel.join_ref,
            )

    async def _join(self, sock: Socket, frame: Frame) -> None:
        token = frame.payload.get("access_token")
        try:
            claims = self._claims_for(sock, token)
        except AuthError as exc:
            sock.reply(frame, json.dumps({"status": "error", "response": {"reason": _token_reason(str(token), exc)}}))
            return
        config = frame.payload.get("config") or {}
        if config.get("private"):
            reason = "private channels (RLS on realtime.messages) are not supported by supalocal"
            sock.reply(frame, json.dumps({"status": "error", "response": {"reason": reason}}))
            return
        raw_bindings = config.get("postgres_changes") or []
        echoed = [{**b, "id": binding_id(b)} for b in raw_bindings if isinstance(b, dict)]
        broadcast = config.get("broadcast") or {}
        presence = config.get("presence") or {}
        old = sock.channels.get(frame.topic)
        if old is not None:
            self._presence_leave(old)  # a rejoin replaces the member
        channel = Channel(
            frame.topic,
            frame.join_ref or frame.ref,
            claims,
            broadcast_self=bool(broadcast.get("self")),
            broadcast_ack=bool(broadcast.get("ack")),
            presence_key=str(presence.get("key") or uuid.uuid4()),
            presence_enabled=bool(presence.get("enabled")),
        )
        sock.channels[frame.topic] = channel
        self._changed()
        sock.reply(frame, json.dumps({"status": "ok", "response": {"postgres_changes": echoed}}))
        if channel.presence_enabled:
            state = state_of((m.presence_key, m.presence_meta) for _, m in self._members(frame.topic))
            sock.send(
                topic=frame.topic,
                event="presence_state",
                payload_json=json.dumps(state),
                ref=None,
                join_ref=channel.join_ref,
            )
        if not echoed:
            return
        try:
            channel.bindings, channel.bypass_rls = await self._subscribe(echoed, claims)
            self._changed()
        except _SubscribeError as exc:
            sock.system(channel, status="error", message=str(exc))
            return
        sock.system(channel, status="ok", message="Subscribed to PostgreSQL")

    async def _subscribe(self, params: list[dict[str, Any]], claims: dict[str, Any]) -> tuple[list[Binding], bool]:
        await self._capture.sync()  # the triggers are live before we say "Subscribed"
        role = str(claims.get("role", "anon"))
        bindings = []
        async with self._pool.acquire() as conn:
            bypass = bool(await conn.fetchval("select rolbypassrls or rolsuper from pg_roles where rolname = $1", role))
            for p in params:
                schema, table_name = p.get("schema", "public"), p.get("table")
                event, text_filter = p.get("event", "*"), p.get("filter")
                table = self._capture.tables.get((schema, table_name)) if isinstance(table_name, str) else None
                if table is None or event not in EVENTS:
                    raise _SubscribeError(
                        "Unable to subscribe to changes with given parameters. Please check Realtime is enabled "
                        f"for the given connect parameters: [event: {event}, schema: {schema}, table: {table_name}, "
                        f"filters: [{text_filter or ''}], select: nil]"
                    )
                allowed = await conn.fetchval(
                    "select has_table_privilege($1, $2::regclass, 'SELECT')",
                    role,
                    f"{quote_ident(table.schema)}.{quote_ident(table.name)}",  # the names the lookup matched
                )
                if not allowed:
                    raise _SubscribeError(f"Unable to subscribe: role {role} may not select from {schema}.{table_name}")
                try:
                    row_filter = parse_row_filter(text_filter, columns={c.name: c.typname for c in table.columns})
                except FilterError as exc:
                    raise _SubscribeError(f'Error parsing `filter` params: ["{exc}"]') from exc
                bindings.append(Binding(p["id"], event, table.schema, table.name, row_filter))
        return bindings, bypass

    def _changed(self) -> None:
        self._generation += 1

    def _listening(self, schema: str, table: str) -> list[tuple[Socket, Channel]]:
        if self._listeners_generation != self._generation:
            listeners: dict[tuple[str, str], list[tuple[Socket, Channel]]] = {}
            for sock in self._sockets:
                for channel in sock.channels.values():
                    for key in dict.fromkeys((b.schema, b.table) for b in channel.bindings):
                        listeners.setdefault(key, []).append((sock, channel))
            self._listeners, self._listeners_generation = listeners, self._generation
        return self._listeners.get((schema, table), [])

    async def dispatch(self, change: Change) -> None:
        """Queue one ``postgres_changes`` frame per matching channel, in the order changes arrive."""
        listening = self._listening(change.schema, change.table)
        if not listening:
            return
        table = self._capture.tables.get((change.schema, change.table))
        if table is None:
            return
        types = {c.name: c.typname for c in table.columns}
        for sock, channel in listening:
            ids = [b.id for b in channel.bindings if b.matches(change, types)]
            if not ids:
                continue
            if not channel.bypass_rls and not await self._visible(change, table, channel):
                continue
            sock.send(
                topic=channel.topic,
                event="postgres_changes",
                payload_json=changes_payload(change, table, ids),
                ref=None,
                join_ref=channel.join_ref,
            )

    async def _visible(self, change: Change, table: Table, channel: Channel) -> bool:
        """Row security for non-bypass subscribers: can their role/claims SELECT the new row?"""
        if change.type == "DELETE":
            return True  # Realtime skips RLS for deletes (only the primary key is sent)
        if not table.primary_key:
            return False
        target = f"{quote_ident(table.schema)}.{quote_ident(table.name)}"
        keys = ", ".join(f"_s.{quote_ident(k)}" for k in table.primary_key)
        rkeys = ", ".join(f"_r.{quote_ident(k)}" for k in table.primary_key)
        query = (
            f"select exists(select 1 from {target} as _s where ({keys}) = "
            f"(select {rkeys} from json_populate_record(null::{target}, $1::json) as _r))"
        )
        try:
            async with self._pool.acquire() as conn, conn.transaction(readonly=True):
                await conn.execute(
                    "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)",
                    str(channel.claims.get("role", "anon")),
                    json.dumps(channel.claims),
                )
                return bool(await conn.fetchval(query, change.record))
        except asyncpg.PostgresError:
            return False

    async def disconnect_all(self, *, code: int = 1001) -> None:
        """Close every socket from the server side (shutdown; tests of client reconnects)."""
        for sock in list(self._sockets):
            await sock.ws.close(code=code, message=b"server going away")

    async def close(self) -> None:
        await self.disconnect_all()


class _SubscribeError(Exception):
    """A binding Realtime would refuse; reported as a ``system`` error push, never raised to callers."""
