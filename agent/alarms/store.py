"""Where the alarm book comes from at start, and the local copy that lets it survive a restart offline.

An agent restarted with alarms open must not forget them (an unacknowledged alarm stays unacknowledged) nor
raise them a second time. At start the open alarms are read from, in order of precedence:

1. Supabase (`alarms` rows of this machine not `closed`) — or, when Supabase cannot be reached, the local
   cache `<SPOOL_PATH>.alarms.json` (the book as it was last saved, written after every change);
2. then the spool's unshipped `alarm` records on top, oldest first: they are newer than anything Supabase has.

Views of one alarm merge by what happened (`agent.alarms.model.merge_alarms`: acknowledged in one, back to
normal in the other → closed), so the order of the sources cannot undo an acknowledgement.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from loguru import logger

from agent.alarms.book import AlarmBook
from agent.alarms.model import ActiveAlarm, AlarmState, alarm_from_row, alarm_row, merge_alarms
from agent.cloud import CloudClient
from agent.errors import CloudError
from agent.spool import Spool

__all__ = ["keep_cached", "keep_in_sync", "load_open_alarms"]

OPEN_STATES = (AlarmState.ACTIVE_UNACKED, AlarmState.ACTIVE_ACKED, AlarmState.CLEARED_UNACKED)
#: Rows read per state (PostgREST's max_rows on Supabase): more open alarms than that is a flood nobody reads.
MAX_ROWS = 1000
MAX_SPOOLED = 10_000
#: Saving the book at most this often: a burst of moves is one write.
SAVE_EVERY_S = 0.5


async def load_open_alarms(cloud: CloudClient, spool: Spool, *, machine_id: str, cache: Path) -> list[ActiveAlarm]:
    """The machine's open alarms, oldest first, from the sources above (never raises for a source that fails)."""
    rows: list[Any] | None
    try:
        rows = [
            row
            for state in OPEN_STATES
            for row in await cloud.select(
                "alarms", eq={"machine_id": machine_id, "state": state.value}, order="raised_at", limit=MAX_ROWS
            )
        ]
    except CloudError as exc:
        logger.warning("alarms: cannot read open alarms from Supabase ({}); using the local cache", exc)
        rows = await asyncio.to_thread(_read_cache, cache)
    pending = [record.payload for record in await spool.peek("alarm", MAX_SPOOLED)]
    found: dict[str, ActiveAlarm] = {}
    for row in [*(rows or []), *pending]:
        try:
            alarm = alarm_from_row(row)
        except (KeyError, TypeError, ValueError) as exc:
            logger.error("alarms: ignoring an unreadable alarm record ({}): {}", exc, str(row)[:200])
            continue
        known = found.get(alarm.id)
        found[alarm.id] = alarm if known is None else merge_alarms(known, alarm)
    return sorted((a for a in found.values() if a.open), key=lambda a: a.raised_at)


async def keep_in_sync(book: AlarmBook, load: Callable[[], Awaitable[list[ActiveAlarm]]]) -> None:
    """Reload the book whenever it asks (`AlarmBook.resync_needed`: it became the publisher). Runs until
    cancelled; `load` never raises for a source that fails (`load_open_alarms`)."""
    while True:
        await book.resync_needed.wait()
        alarms = await load()
        book.restore(alarms)
        logger.info("alarms: book resynchronised ({} open)", len(alarms))


async def keep_cached(book: AlarmBook, cache: Path) -> None:
    """Save the book's open alarms to `cache` after every change (off the event loop). Runs until cancelled."""
    while True:
        await book.changed.wait()
        book.changed.clear()
        rows = [alarm_row(a, machine_id=book.machine_id) for a in book.active()]
        try:
            await asyncio.to_thread(_write_cache, cache, rows)
        except OSError as exc:
            logger.error("alarms: cannot save the alarm cache {}: {}", cache, exc)
        await asyncio.sleep(SAVE_EVERY_S)


def _write_cache(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows))
    tmp.replace(path)  # atomic: a crash never leaves half a cache


def _read_cache(path: Path) -> list[Any] | None:
    try:
        rows = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.error("alarms: unreadable cache {}: {}", path, exc)
        return None
    return rows if isinstance(rows, list) else None
