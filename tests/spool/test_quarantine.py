"""The way out of the quarantine (agent/spool/quarantine.py) on real spool files, beside an open `Spool` as the
running agent holds it, and the whole story against the local stack: refused → fixed → replayed → landed."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from agent.cloud import CloudClient
from agent.errors import ConfigError, ValidationError
from agent.onboarding import register_machine
from agent.plc import load_default_map
from agent.spool import Shipper, Spool, list_quarantined
from agent.spool import discard_quarantined as discard
from agent.spool import replay_quarantined as replay
from agent.spool import show_quarantined as show
from supalocal.stack import BackgroundStack

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC).isoformat()


async def quarantined_spool(path: Path, *, kinds: tuple[str, ...] = ("history", "run", "history")) -> list[int]:
    """A spool whose records of `kinds` were all refused (with distinct errors); their ids."""
    async with Spool(path) as spool:
        for n, kind in enumerate(kinds):
            await spool.append(kind, {"n": n})
        ids = []
        for kind in dict.fromkeys(kinds):
            for record in await spool.peek(kind, 10):
                await spool.quarantine(record, error=f"refused {record.payload['n']}", code="23503")
                ids.append(record.id)
    return sorted(ids)


async def test_list_and_show(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    ids = await quarantined_spool(path)
    assert [(r.id, r.kind, r.payload) for r in list_quarantined(path)] == [
        (ids[0], "history", {"n": 0}), (ids[1], "run", {"n": 1}), (ids[2], "history", {"n": 2})]  # fmt: skip
    assert [r.id for r in list_quarantined(path, kind="run")] == [ids[1]]
    record = show(path, ids[1])
    assert (record.error, record.code, record.moved >= record.created) == ("refused 1", "23503", True)
    with pytest.raises(ValidationError, match="no quarantined record 999"):
        show(path, 999)


async def test_a_replayed_record_goes_back_in_its_old_place(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    ids = await quarantined_spool(path, kinds=("history",))
    async with Spool(path) as spool:
        newer = await spool.append("history", {"n": "newer"})
        assert replay(path, ids) == ids
        records = await spool.peek("history", 10)
        # the open spool (the running agent) recounted what the other process changed
        assert (spool.stats.depth, spool.stats.quarantined) == (2, 0)
    assert [(r.id, r.payload) for r in records] == [(ids[0], {"n": 0}), (newer, {"n": "newer"})]
    assert list_quarantined(path) == []


async def test_replay_with_a_corrected_payload(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    (record_id,) = await quarantined_spool(path, kinds=("run",))
    replay(path, [record_id], payload={"n": "fixed"})
    async with Spool(path) as spool:
        (record,) = await spool.peek("run", 10)
    assert (record.id, record.payload) == (record_id, {"n": "fixed"})
    with pytest.raises(ValidationError, match="exactly one record"):
        replay(path, None, payload={"n": 1})


@pytest.mark.parametrize(
    ("ids", "kind", "left"),
    [([0], None, [1, 2]), (None, "history", [1]), (None, None, [])],
    ids=["one-id", "all-of-a-kind", "all"],
)
async def test_discard(tmp_path: Path, ids: list[int] | None, kind: str | None, left: list[int]) -> None:
    path = tmp_path / "s.sqlite"
    all_ids = await quarantined_spool(path)
    async with Spool(path) as spool:
        discard(path, None if ids is None else [all_ids[i] for i in ids], kind=kind)
        await spool.peek("history", 1)
        assert (spool.stats.depth, spool.stats.quarantined) == (0, len(left))
    assert [r.id for r in list_quarantined(path)] == [all_ids[i] for i in left]


async def test_an_unknown_id_moves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    ids = await quarantined_spool(path)
    for operation in (replay, discard):
        with pytest.raises(ValidationError, match="no quarantined record 999"):
            operation(path, [ids[0], 999])
    assert [r.id for r in list_quarantined(path)] == ids


@pytest.mark.parametrize("content", [None, b"not a database at all, just text"], ids=["missing", "not-sqlite"])
def test_a_wrong_spool_path_is_a_config_error_and_creates_nothing(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "nowhere.sqlite"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match="SPOOL_PATH"):
        list_quarantined(path)
    assert path.exists() == (content is not None)


def test_an_sqlite_file_that_is_no_spool_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    sqlite3.connect(path).execute("create table t (x)").connection.close()
    with pytest.raises(ConfigError, match="not an agent spool"):
        list_quarantined(path)


async def test_refused_then_fixed_then_replayed_lands(clean_db: BackgroundStack, tmp_path: Path) -> None:
    """A frame for a machine Supabase does not know yet (foreign key): quarantined; the machine is registered;
    the frame replayed, shipped, and in parameter_history."""
    path = tmp_path / "s.sqlite"
    async with CloudClient(clean_db.url, clean_db.service_key) as cloud:
        machine = await register_machine(cloud, name="t", serial="ALD-0005", register_map=load_default_map())
        db = await asyncpg.connect(clean_db.db_url)
        try:
            await db.execute("delete from machines where id = $1", machine.machine_id)  # not there yet
            frame = {"machine_id": machine.machine_id, "ts": T0, "run_id": None, "values": {"mfc_1.flow": 1.0}}
            async with Spool(path) as spool:
                shipper = Shipper(spool, cloud)
                await spool.append("history", frame)
                assert await shipper.ship_once() == 1
                (refused,) = list_quarantined(path)
                assert (refused.code, spool.stats.quarantined) == ("23503", 1)

                await db.execute(
                    "insert into machines (id, name, serial_number) values ($1, 't', 'ALD-0005')", machine.machine_id
                )  # the fix
                assert replay(path, [refused.id]) == [refused.id]
                assert await shipper.ship_once() == 1
                assert (spool.stats.depth, spool.stats.quarantined) == (0, 0)
            landed = await db.fetchval(
                "select count(*) from parameter_history where machine_id = $1", machine.machine_id
            )
        finally:
            await db.close()
    assert landed == 1
