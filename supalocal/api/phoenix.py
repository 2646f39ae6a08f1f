"""Phoenix socket frames, V1 JSON objects and V2 JSON arrays and binary broadcasts: a pure codec.

V1 (``vsn=1.0.0``, realtime-py): ``{"topic","event","payload","ref"}``; the server always emits exactly
these four keys with ``"ref": null`` on pushes, because realtime-py drops frames without ``ref``.
V2 (``vsn=2.0.0``, realtime-js' default): ``[join_ref, ref, topic, event, payload]`` text frames, and the two
binary frames of Supabase Realtime's protocol 2.0.0, which supabase-js uses for every ``broadcast`` it sends:
USER_BROADCAST_PUSH (client → server) and USER_BROADCAST (server → client), each a kind byte, one size byte per
variable field, a payload-encoding byte (0 binary, 1 JSON), the fields, then the user payload as is::

    push:      03 |join_ref| |ref| |topic| |event| |meta| enc  join_ref ref topic event meta payload
    broadcast: 04 |topic| |event| |meta| enc  topic event meta payload

e.g. ``04 0d 04 00 01 "realtime:room" "note" '{"x":1}'``: the event ``note`` with the JSON payload ``{"x":1}``.
Payloads are passed around as JSON *text* so large records PostgreSQL rendered are spliced in as is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["V1", "V2", "Frame", "FrameError", "Serializer", "UserBroadcast", "serializer_for"]

V1 = "1.0.0"
V2 = "2.0.0"
USER_BROADCAST_PUSH = 3
USER_BROADCAST = 4
BINARY_ENCODING = 0
JSON_ENCODING = 1
MAX_FIELD_BYTES = 255  # each size is one byte
_PUSH_HEADER = 7  # kind, five sizes, encoding


@dataclass(frozen=True)
class UserBroadcast:
    """A broadcast that came as a binary frame: relayed as it came (Realtime ignores its metadata)."""

    event: str
    payload: bytes
    json_payload: bool


@dataclass(frozen=True)
class Frame:
    """An inbound message."""

    topic: str
    event: str
    payload: dict[str, Any]
    ref: str | None
    join_ref: str | None
    #: Set for a binary USER_BROADCAST_PUSH; ``payload`` then holds the text frame's equivalent.
    user_broadcast: UserBroadcast | None = None


class FrameError(ValueError):
    """Not a Phoenix frame; the socket ignores it."""


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class Serializer:
    """Encode/decode for one protocol version."""

    def __init__(self, version: str) -> None:
        self.version = version

    def encode(self, *, topic: str, event: str, payload_json: str, ref: str | None, join_ref: str | None) -> str:
        if self.version == V2:
            return f"[{json.dumps(join_ref)},{json.dumps(ref)},{json.dumps(topic)},{json.dumps(event)},{payload_json}]"
        head = f'{{"topic":{json.dumps(topic)},"event":{json.dumps(event)}'
        return f'{head},"payload":{payload_json},"ref":{json.dumps(ref)}}}'

    def decode(self, text: str) -> Frame:
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise FrameError("invalid JSON") from exc
        if isinstance(doc, list) and len(doc) == 5:
            join_ref, ref, topic, event, payload = doc
        elif isinstance(doc, dict):
            join_ref, ref = doc.get("join_ref"), doc.get("ref")
            topic, event, payload = doc.get("topic"), doc.get("event"), doc.get("payload")
        else:
            raise FrameError("not a Phoenix frame")
        if not isinstance(topic, str) or not isinstance(event, str):
            raise FrameError("topic and event must be strings")
        return Frame(topic, event, payload if isinstance(payload, dict) else {}, _text(ref), _text(join_ref))

    def decode_binary(self, data: bytes) -> Frame:
        """A USER_BROADCAST_PUSH as a ``broadcast`` frame; any other binary frame is a :class:`FrameError`.

        Only V2 has binary frames (a V1 socket's serializer refuses them, as Phoenix's does).
        """
        if self.version != V2 or len(data) < _PUSH_HEADER or data[0] != USER_BROADCAST_PUSH:
            raise FrameError("not a user broadcast push")
        sizes, encoding = data[1:6], data[6]
        if len(data) < _PUSH_HEADER + sum(sizes) or encoding not in (BINARY_ENCODING, JSON_ENCODING):
            raise FrameError("truncated user broadcast push")
        fields, at = [], _PUSH_HEADER
        for size in sizes:
            fields.append(data[at : at + size])
            at += size
        try:
            join_ref, ref, topic, event, _meta = (field.decode() for field in fields)
        except UnicodeDecodeError as exc:
            raise FrameError("user broadcast push fields must be UTF-8") from exc
        broadcast = UserBroadcast(event, data[at:], encoding == JSON_ENCODING)
        payload: dict[str, Any] = {"type": "broadcast", "event": event}
        if broadcast.json_payload:
            try:
                payload["payload"] = json.loads(broadcast.payload)
            except ValueError as exc:
                raise FrameError("a JSON-encoded user payload must be JSON") from exc
        return Frame(topic, "broadcast", payload, ref or None, join_ref or None, broadcast)

    def encode_user_broadcast(self, *, topic: str, broadcast: UserBroadcast) -> str | bytes | None:
        """The frame a member gets for a binary broadcast: USER_BROADCAST on V2, a JSON ``broadcast`` on V1,
        nothing on V1 when the payload is not JSON (Realtime drops it: V1 cannot carry bytes)."""
        if self.version == V2:
            topic_bytes, event_bytes = topic.encode(), broadcast.event.encode()
            if len(topic_bytes) > MAX_FIELD_BYTES or len(event_bytes) > MAX_FIELD_BYTES:
                return None
            encoding = JSON_ENCODING if broadcast.json_payload else BINARY_ENCODING
            header = bytes((USER_BROADCAST, len(topic_bytes), len(event_bytes), 0, encoding))
            return header + topic_bytes + event_bytes + broadcast.payload
        if not broadcast.json_payload:
            return None
        payload_json = (
            f'{{"event":{json.dumps(broadcast.event)},"payload":{broadcast.payload.decode()},"type":"broadcast"}}'
        )
        return self.encode(topic=topic, event="broadcast", payload_json=payload_json, ref=None, join_ref=None)


def serializer_for(vsn: str | None) -> Serializer:
    """``vsn=2.x`` selects V2; anything else (including absent) is V1, as Phoenix's ``~> 1.0.0``."""
    return Serializer(V2 if vsn and vsn.startswith("2.") else V1)
