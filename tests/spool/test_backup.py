"""Spool backup and restore (agent/spool/backup.py) on real files: a backup taken while the spool is open and
written, restored into a new place, holds every pending and quarantined record, and ships from there."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent.cloud import CloudClient
from agent.errors import ConfigError, ValidationError
from agent.spool import Shipper, Spool, SpoolCounts
from agent.spool import backup_spool as backup
from agent.spool import restore_spool as restore
from supalocal.stack import BackgroundStack
from tests.spool.test_shipper import frame


async def test_a_backup_of_an_open_spool_restores_every_record(tmp_path: Path) -> None:
    live, saved, restored = tmp_path / "live.sqlite", tmp_path / "saved.sqlite", tmp_path / "new/spool.sqlite"
    async with Spool(live) as spool:
        await spool.append_many([("history", frame(i)) for i in range(5)])
        (first,) = await spool.peek("history", 1)
        await spool.quarantine(first, error="refused", code="23503")
        assert backup(live, saved) == SpoolCounts(pending=4, quarantined=1)  # while the agent holds it open
        await spool.append("history", frame(9))  # after the backup: not in it
    assert restore(saved, restored) == SpoolCounts(pending=4, quarantined=1)
    async with Spool(restored) as spool:
        assert (spool.stats.depth, spool.stats.quarantined) == (4, 1)
        assert [r.payload for r in await spool.peek("history", 10)] == [frame(i) for i in range(1, 5)]


async def test_a_restore_replaces_the_old_spool_and_its_wal(tmp_path: Path) -> None:
    old, saved = tmp_path / "spool.sqlite", tmp_path / "saved.sqlite"
    async with Spool(tmp_path / "other.sqlite") as spool:
        await spool.append("run", {"id": "r"})
    backup(tmp_path / "other.sqlite", saved)
    async with Spool(old) as spool:
        await spool.append_many([("history", frame(i)) for i in range(3)])
    wal = Path(f"{old}-wal")
    await asyncio.to_thread(wal.write_bytes, b"stale")
    restore(saved, old)
    assert not await asyncio.to_thread(wal.exists)
    async with Spool(old) as spool:
        assert spool.stats.depth == 1 and await spool.kinds() == ["run"]


def test_bad_input(tmp_path: Path) -> None:
    (tmp_path / "exists.sqlite").write_bytes(b"")
    (tmp_path / "junk.sqlite").write_bytes(b"this is not a database file at all......")
    with pytest.raises(ConfigError, match="no spool at"):
        backup(tmp_path / "none.sqlite", tmp_path / "b.sqlite")
    with pytest.raises(ValidationError, match="never overwrites"):
        backup(tmp_path / "exists.sqlite", tmp_path / "exists.sqlite")
    with pytest.raises(ValidationError, match="no backup at"):
        restore(tmp_path / "none.sqlite", tmp_path / "s.sqlite")
    with pytest.raises(ValidationError, match=r"not a spool backup|damaged"):
        restore(tmp_path / "junk.sqlite", tmp_path / "s.sqlite")
    assert not (tmp_path / "s.sqlite").exists()


async def test_restored_records_ship(clean_db: BackgroundStack, tmp_path: Path) -> None:
    live, saved, restored = tmp_path / "a.sqlite", tmp_path / "b.sqlite", tmp_path / "c.sqlite"
    async with Spool(live) as spool:
        await spool.append_many([("history", frame(i)) for i in range(3)])
    backup(live, saved)
    restore(saved, restored)
    async with Spool(restored) as spool, CloudClient(clean_db.url, clean_db.service_key) as cloud:
        assert await Shipper(spool, cloud).ship_once() == 3
        assert spool.stats.depth == 0
