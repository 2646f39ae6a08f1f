"""The Phoenix frame codec's binary broadcasts (Supabase Realtime protocol 2.0.0), as supabase-js sends them.

supabase-js encodes every ``broadcast`` it sends on a joined channel as a USER_BROADCAST_PUSH binary frame, and
decodes USER_BROADCAST frames; a V1 client (supabase-py) gets the same broadcast as JSON.
"""

from __future__ import annotations

import json

import pytest

from supalocal.api.phoenix import V1, V2, Frame, FrameError, Serializer, UserBroadcast

TOPIC = "realtime:room"


def push(
    *, join_ref: bytes = b"1", ref: bytes = b"7", topic: bytes = TOPIC.encode(), event: bytes = b"note",
    meta: bytes = b"", encoding: int = 1, payload: bytes = b'{"x":1}',
) -> bytes:  # fmt: skip
    """A USER_BROADCAST_PUSH as realtime-js' serializer builds it."""
    sizes = bytes((3, len(join_ref), len(ref), len(topic), len(event), len(meta), encoding))
    return sizes + join_ref + ref + topic + event + meta + payload


def test_a_json_user_broadcast_push_decodes_to_the_text_frames_broadcast() -> None:
    frame = Serializer(V2).decode_binary(push(meta=b'{"k":1}'))
    assert frame == Frame(
        TOPIC,
        "broadcast",
        {"type": "broadcast", "event": "note", "payload": {"x": 1}},
        "7",
        "1",
        UserBroadcast("note", b'{"x":1}', json_payload=True),
    )


def test_a_binary_user_payload_is_carried_as_bytes() -> None:
    frame = Serializer(V2).decode_binary(push(encoding=0, payload=b"\x00\xff", ref=b""))
    assert frame.payload == {"type": "broadcast", "event": "note"}
    assert frame.user_broadcast == UserBroadcast("note", b"\x00\xff", json_payload=False)
    assert frame.ref is None, "an empty ref is no ref"


@pytest.mark.parametrize(
    ("serializer", "data"),
    [
        (Serializer(V2), b""),
        (Serializer(V2), bytes((0, 1, 1, 1, 1)) + b"1abc"),  # a binary push of Phoenix itself, not a broadcast
        (Serializer(V2), bytes((4, 4, 4, 0, 1)) + b"room" + b"note{}"),  # the server's kind, not a client's
        (Serializer(V2), push()[:12]),
        (Serializer(V2), push(encoding=2)),
        (Serializer(V2), push(payload=b"{not json")),
        (Serializer(V2), push(event=b"\xff")),
        (Serializer(V1), push()),
    ],
    ids=["empty", "phoenix-push", "server-kind", "truncated", "unknown-encoding", "invalid-json", "not-utf8", "v1"],
)
def test_other_binary_frames_are_refused(serializer: Serializer, data: bytes) -> None:
    with pytest.raises(FrameError):
        serializer.decode_binary(data)


def test_a_v2_member_gets_a_user_broadcast_frame() -> None:
    encoded = Serializer(V2).encode_user_broadcast(topic=TOPIC, broadcast=UserBroadcast("note", b'{"x":1}', True))
    assert encoded == bytes((4, len(TOPIC), 4, 0, 1)) + TOPIC.encode() + b'note{"x":1}'
    raw = Serializer(V2).encode_user_broadcast(topic=TOPIC, broadcast=UserBroadcast("b", b"\x00", False))
    assert raw == bytes((4, len(TOPIC), 1, 0, 0)) + TOPIC.encode() + b"b\x00"


def test_a_v1_member_gets_json_or_nothing_for_bytes() -> None:
    text = Serializer(V1).encode_user_broadcast(topic=TOPIC, broadcast=UserBroadcast("note", b'{"x":1}', True))
    assert isinstance(text, str)
    assert json.loads(text) == {
        "topic": TOPIC,
        "event": "broadcast",
        "payload": {"event": "note", "payload": {"x": 1}, "type": "broadcast"},
        "ref": None,
    }
    assert Serializer(V1).encode_user_broadcast(topic=TOPIC, broadcast=UserBroadcast("b", b"\x00", False)) is None
