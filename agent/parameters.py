"""Where the machine's configuration comes from: its register map, interlocks and alarm limits, from Supabase,
cached.

At start both are loaded from Supabase; a copy of each is written next to the spool so an agent restarted while
Supabase is down still works with what it last knew. With no map at all (a brand-new agent offline), the
packaged/`PLC_MAP_FILE` map is used for sampling, without parameter ids (no `parameter_latest`), until the
cloud answers.

A map or an interlock set that cannot be used is *refused with a reason*, never a crash: the `problem` of the
source says why, and the caller keeps what it had (at start: the cache, else the packaged map; for interlocks,
with nothing usable, every guarded write is blocked — agent.safety.WriteGate). `watch_rows` reloads on change.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from loguru import logger

from agent.cloud import CloudClient, Watch
from agent.errors import CloudError, MapError
from agent.plc import RegisterMap, map_from_rows

__all__ = [
    "ConfigRows",
    "InterlockRows",
    "MapSource",
    "load_alarm_limit_rows",
    "load_interlock_rows",
    "load_map",
    "remember_machine_name",
    "watch_rows",
]

RELOAD_DEBOUNCE_S = 0.5
_PROBLEM_CHARS = 500


@dataclass(frozen=True)
class MapSource:
    register_map: RegisterMap
    parameter_ids: dict[str, str] = field(default_factory=dict)
    origin: str = "database"  # database | cache | file
    #: Why the database's map was not used (it was invalid), or None.
    problem: str | None = None


@dataclass(frozen=True)
class ConfigRows:
    """A machine's rows of one configuration table (interlocks, alarm limits) and where they came from."""

    rows: list[dict[str, Any]]
    origin: str  # database | cache | none
    problem: str | None = None


#: The interlocks' rows (the name they had before alarm limits were loaded the same way).
InterlockRows = ConfigRows


def _from_rows(rows: list[dict[str, Any]], origin: str) -> MapSource:
    return MapSource(map_from_rows(rows), {r["key"]: str(r["id"]) for r in rows if r.get("id")}, origin)


async def load_map(cloud: CloudClient, *, machine_id: str, cache: Path, fallback: RegisterMap) -> MapSource:
    """The map from the database (refreshing the cache), else the cache, else `fallback`.

    A database map that is invalid (overlapping addresses, a write address on a read-only row…) is not used:
    the result carries the reason in `problem` and comes from the cache or the fallback instead."""
    problem: str | None = None
    try:
        rows = await cloud.load_parameters(machine_id)
    except CloudError as exc:
        logger.warning("parameters: cannot load from Supabase ({}); trying the local cache", exc)
    else:
        if rows:
            try:
                source = _from_rows(rows, "database")
            except MapError as exc:
                problem = f"register map refused: {str(exc)[:_PROBLEM_CHARS]}"
                logger.error("parameters: the machine's map in Supabase is invalid, not used: {}", exc)
            else:
                await asyncio.to_thread(_write_cache, cache, rows)
                return source
        else:
            logger.warning("parameters: no rows for machine {} in Supabase", machine_id)
    cached = await asyncio.to_thread(_read_cache, cache)
    if cached:
        try:
            return replace(_from_rows(cached, "cache"), problem=problem)
        except MapError as exc:
            logger.error("parameters: cached map {} is invalid: {}", cache, exc)
    logger.warning("parameters: using the packaged map ({} parameters) until Supabase answers", len(fallback))
    return MapSource(fallback, {}, "file", problem)


async def load_interlock_rows(cloud: CloudClient, *, machine_id: str, cache: Path) -> ConfigRows:
    """The machine's `interlocks` rows from the database (refreshing the cache), else the cache."""
    return await _load_rows(cloud, table="interlocks", order="name", machine_id=machine_id, cache=cache)


async def load_alarm_limit_rows(cloud: CloudClient, *, machine_id: str, cache: Path) -> ConfigRows:
    """The machine's `alarm_limits` rows from the database (refreshing the cache), else the cache."""
    return await _load_rows(cloud, table="alarm_limits", order="key", machine_id=machine_id, cache=cache)


async def _load_rows(cloud: CloudClient, *, table: str, order: str, machine_id: str, cache: Path) -> ConfigRows:
    try:
        rows = await cloud.select(table, eq={"machine_id": machine_id}, order=order)
    except CloudError as exc:
        logger.warning("{}: cannot load from Supabase ({}); trying the local cache", table, exc)
        cached = await asyncio.to_thread(_read_cache, cache)
        if cached is not None:
            return ConfigRows(cached, "cache")
        return ConfigRows([], "none", f"{table} unknown: Supabase unreachable and no cache ({exc})"[:500])
    await asyncio.to_thread(_write_cache, cache, rows)
    return ConfigRows(rows, "database")


async def watch_rows(
    cloud: CloudClient, *, table: str, machine_id: str, reload: Callable[[], Awaitable[bool]], fetch_now: bool
) -> None:
    """Call `reload` when the machine's rows of `table` change (debounced: editors save in bursts), and after
    every (re)subscription while `fetch_now` (the last reload did not reach the database). Runs until cancelled."""
    pending = asyncio.Event()
    need_db = fetch_now

    def changed(_payload: dict[str, Any]) -> None:
        pending.set()

    def ready() -> None:
        if need_db:
            pending.set()

    await cloud.watch(Watch(table, f"machine_id=eq.{machine_id}", changed, ready))
    while True:
        await pending.wait()
        await asyncio.sleep(RELOAD_DEBOUNCE_S)
        pending.clear()
        need_db = not await reload()


async def remember_machine_name(name: str | None, *, cache: Path) -> str | None:
    """The machine's name as Supabase gave it at start-up (`require_machine`), kept in `cache` for the next
    start; None from Supabase (unreachable) → the cached name, so the console still names the tool; else None."""
    if name is not None:
        await asyncio.to_thread(_write_cache, cache, [{"name": name}])
        return name
    rows = await asyncio.to_thread(_read_cache, cache)
    cached = rows[0].get("name") if rows and isinstance(rows[0], dict) else None
    return cached if isinstance(cached, str) and cached else None


def _write_cache(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows, default=str))
    tmp.replace(path)  # atomic: a crash never leaves half a cache


def _read_cache(path: Path) -> list[dict[str, Any]] | None:
    try:
        rows = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.error("parameters: unreadable cache {}: {}", path, exc)
        return None
    return rows if isinstance(rows, list) else None
