"""Phoenix socket frames, V1 JSON objects and V2 JSON arrays: a pure codec.

V1 (``vsn=1.0.0``, realtime-py): ``{"topic","event","payload","ref"}``; the server always emits exactly
these four keys with ``"ref": null`` on pushes, because realtime-py drops frames without ``ref``.
V2 (``vsn=2.0.0``, realtime-js' default): ``[join_ref, ref, topic, event, payload]``.
Payloads are passed around as JSON *text* so large records PostgreSQL rendered are spliced in as is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["V1", "V2", "Frame", "Serializer", "serializer_for"]

V1 = "1.0.0"
V2 = "2.0.0"


@dataclass(frozen=True)
class Frame:
    """An inbound message."""

    topic: str
    event: str
    payload: dict[str, Any]
    ref: str | None
    join_ref: str | None


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


def serializer_for(vsn: str | None) -> Serializer:
    """``vsn=2.x`` selects V2; anything else (including absent) is V1, as Phoenix's ``~> 1.0.0``."""
    return Serializer(V2 if vsn and vsn.startswith("2.") else V1)
