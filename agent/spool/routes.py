"""Where each kind of spooled record goes in Supabase, and how a batch of them collapses. Pure.

Every route is idempotent so a replay after a crash (records shipped but not yet removed) changes nothing:
upserts on the primary key, or updates by id. Kinds are shipped in `SHIP_ORDER`; the kinds of a run's story
(`CAUSAL`) also respect each other's append order: a record of one of them waits for every older record of
the kinds before it. So a step never reaches Supabase before its run row (foreign key), and a command never
reads `succeeded` before its run row and steps are there — even when the run record was appended after the
shipper had already looked at the run queue, or sits behind a batch limit during a replay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["CAUSAL", "ROUTES", "SHIP_ORDER", "Route", "collapse", "column_groups", "waits_for"]


@dataclass(frozen=True, slots=True)
class Route:
    """`on_conflict` set → bulk upsert of row payloads; None → per-record update `{id, values}` by id.

    `key` (upserts): rows with the same key in one batch collapse to the last one, which is all the database
    would keep anyway. `merge`: consecutive payloads of one key (or id, for updates) merge their values in
    order, so a partial payload (progress) keeps what an earlier full one said. `paced`: once the kind is caught
    up, its next request waits for the shipper's pacing gap, so a fast sampler's frames travel several to a
    request (telemetry only: a run's story and commands are never held back).
    """

    table: str
    on_conflict: str | None = None
    key: tuple[str, ...] | None = None
    merge: bool = False
    batch: int = 500
    paced: bool = False


ROUTES: dict[str, Route] = {
    "machine": Route("machines", merge=True, batch=100),
    # a run row is written whole at start and end; progress in between carries only what changed (merged)
    "run": Route("process_runs", on_conflict="id", key=("id",), merge=True, batch=100),
    "step": Route("run_steps", on_conflict="run_id,seq", key=("run_id", "seq")),
    "command": Route("machine_commands", batch=100),  # status moves are ordered: never merged
    # every alarm record is the whole row (agent/alarms/model.py alarm_row): the last one of an id wins
    "alarm": Route("alarms", on_conflict="id", key=("id",), batch=100),
    "history": Route("parameter_history", on_conflict="machine_id,ts", key=("machine_id", "ts"), paced=True),
    "latest": Route(
        "parameter_latest", on_conflict="machine_id,parameter_id", key=("machine_id", "parameter_id"), paced=True
    ),
    "heartbeat": Route("agent_instances", on_conflict="instance_id", key=("instance_id",), batch=50),
}
# A run row lands before its steps and before machines.current_run_id points at it (foreign keys); an alarm
# acknowledged by an ack_alarm command reads acknowledged before that command reads succeeded.
SHIP_ORDER = ("run", "step", "machine", "alarm", "command", "history", "latest", "heartbeat")
#: Kinds kept in append order relative to each other; telemetry is independent and never waits behind them.
CAUSAL = ("run", "step", "machine", "alarm", "command")


def waits_for(kind: str) -> tuple[str, ...]:
    """The kinds whose older pending records must ship before a record of `kind` may."""
    return CAUSAL[: CAUSAL.index(kind)] if kind in CAUSAL else ()


def collapse(route: Route, payloads: Sequence[Any]) -> list[dict[str, Any]]:
    """The requests one batch needs: rows for an upsert (a payload may be a list of rows), or updates."""
    if route.on_conflict is None:
        if not route.merge:
            return [dict(p) for p in payloads]
        merged: dict[Any, dict[str, Any]] = {}
        for p in payloads:
            entry = merged.setdefault(p["id"], {"id": p["id"], "values": {}})
            entry["values"].update(p["values"])
        return list(merged.values())
    rows: list[dict[str, Any]] = []
    for p in payloads:
        rows.extend(p if isinstance(p, list) else [p])
    if route.key is None:
        return rows
    last: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[k] for k in route.key)
        previous = last.pop(key, None)  # re-insert so the order follows the latest occurrence
        last[key] = {**previous, **row} if route.merge and previous else row
    return list(last.values())


def column_groups(rows: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Rows split by their set of columns, order kept within each group.

    One bulk upsert sends one column list; a row that lacks a column would have it set to NULL/DEFAULT on
    conflict. So partial rows (e.g. run progress without the recipe snapshot) go in their own request.
    """
    groups: dict[frozenset[str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(frozenset(row), []).append(row)
    return list(groups.values())
