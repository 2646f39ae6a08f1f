"""Presence state and diffs of Phoenix channels, as Supabase Realtime sends them (pure).

Each channel member tracks at most one meta under its presence key (``config.presence.key``, else a
UUID, as Realtime picks one). The state of a topic is ``{key: {"metas": [meta, …]}}`` over its members;
each meta carries a ``phx_ref`` (and ``phx_ref_prev`` when it replaces an earlier one). A track, an
untrack, a leave or a dropped socket is pushed as ``presence_diff`` ``{"joins": {…}, "leaves": {…}}`` to every
member with presence enabled (``config.presence.enabled``, or since its own first track); a member joining with
presence enabled first gets ``presence_state``.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Meta", "diff", "new_phx_ref", "state_of", "tracked"]

Meta = dict[str, Any]
PHX_REF_BYTES = 9  # base64 of 9 bytes: 12 characters, like Phoenix's refs


def new_phx_ref() -> str:
    return base64.urlsafe_b64encode(os.urandom(PHX_REF_BYTES)).decode()


def tracked(payload: Mapping[str, Any], *, previous: Meta | None) -> Meta:
    """The meta a ``track`` stores: the client's payload plus its ``phx_ref`` (and the one it replaces)."""
    meta: Meta = {**payload, "phx_ref": new_phx_ref()}
    if previous is not None:
        meta["phx_ref_prev"] = previous["phx_ref"]
    return meta


def state_of(members: Iterable[tuple[str, Meta | None]]) -> dict[str, dict[str, list[Meta]]]:
    """``presence_state`` of a topic from its members' ``(key, meta)``."""
    state: dict[str, dict[str, list[Meta]]] = {}
    for key, meta in members:
        if meta is not None:
            state.setdefault(key, {"metas": []})["metas"].append(meta)
    return state


def diff(key: str, *, joined: Meta | None = None, left: Meta | None = None) -> dict[str, Any]:
    """A ``presence_diff`` payload for one key."""
    return {
        "joins": {key: {"metas": [joined]}} if joined is not None else {},
        "leaves": {key: {"metas": [left]}} if left is not None else {},
    }
