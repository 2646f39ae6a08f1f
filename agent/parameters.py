"""Where the register map comes from: the machine's `parameters` rows, cached locally for cloud outages.

At start the map is loaded from Supabase; a copy is written next to the spool so an agent restarted while
Supabase is down still samples with the map it last knew. With neither (a brand-new agent offline), the
packaged/`PLC_MAP_FILE` map is used for sampling, without parameter ids (no `parameter_latest`), until the
cloud answers.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loguru import logger

from agent.cloud import CloudClient
from agent.errors import CloudError, MapError
from agent.plc import RegisterMap, map_from_rows

__all__ = ["MapSource", "load_map"]


@dataclass(frozen=True)
class MapSource:
    register_map: RegisterMap
    parameter_ids: dict[str, str] = field(default_factory=dict)
    origin: str = "database"  # database | cache | file


def _from_rows(rows: list[dict[str, Any]], origin: str) -> MapSource:
    return MapSource(map_from_rows(rows), {r["key"]: str(r["id"]) for r in rows if r.get("id")}, origin)


async def load_map(cloud: CloudClient, *, machine_id: str, cache: Path, fallback: RegisterMap) -> MapSource:
    """The map from the database (refreshing the cache), else the cache, else `fallback`.

    Raises `MapError` if the database's map is invalid (the offending key named): sampling with a wrong
    map would publish wrong values, so that one is not papered over.
    """
    try:
        rows = await cloud.load_parameters(machine_id)
    except CloudError as exc:
        logger.warning("parameters: cannot load from Supabase ({}); trying the local cache", exc)
    else:
        if rows:
            source = _from_rows(rows, "database")
            await asyncio.to_thread(_write_cache, cache, rows)
            return source
        logger.warning("parameters: no rows for machine {} in Supabase", machine_id)
    cached = await asyncio.to_thread(_read_cache, cache)
    if cached:
        try:
            return _from_rows(cached, "cache")
        except MapError as exc:
            logger.error("parameters: cached map {} is invalid: {}", cache, exc)
    logger.warning("parameters: using the packaged map ({} parameters) until Supabase answers", len(fallback))
    return MapSource(fallback, {}, "file")


def _write_cache(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows, default=str))
    tmp.replace(path)  # atomic: a crash never leaves half a cache


def _read_cache(path: Path) -> list[dict[str, Any]] | None:
    try:
        rows: list[dict[str, Any]] = json.loads(path.read_text())  # what `_write_cache` wrote
        return rows
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.error("parameters: unreadable cache {}: {}", path, exc)
        return None
