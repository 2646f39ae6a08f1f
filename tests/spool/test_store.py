"""The SQLite spool: durable FIFO per kind, quarantine, and a size bound that only ever drops telemetry."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent.spool import Spool, SpoolState


async def test_fifo_per_kind_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    async with Spool(path) as spool:
        for i in range(5):
            await spool.append("history", {"n": i})
        await spool.append("run", {"id": "r1"})
        assert spool.stats.depth == 6
    async with Spool(path) as spool:
        assert spool.stats.depth == 6
        assert [r.payload["n"] for r in await spool.peek("history", 10)] == [0, 1, 2, 3, 4]
        assert [r.payload for r in await spool.peek("run", 10)] == [{"id": "r1"}]
        assert sorted(await spool.kinds()) == ["history", "run"]


async def test_remove_and_counters(tmp_path: Path) -> None:
    async with Spool(tmp_path / "s.sqlite") as spool:
        await spool.append_many([("history", {"n": i}) for i in range(3)])
        records = await spool.peek("history", 2)
        await spool.remove([r.id for r in records])
        assert [r.payload["n"] for r in await spool.peek("history", 10)] == [2]
        assert (spool.stats.depth, spool.stats.shipped, spool.stats.appended) == (1, 2, 3)
        assert spool.stats.bytes == len('{"n":2}')


async def test_quarantine_keeps_the_record_and_its_error(tmp_path: Path) -> None:
    async with Spool(tmp_path / "s.sqlite") as spool:
        await spool.append("latest", [{"parameter_id": "gone"}])
        (record,) = await spool.peek("latest", 1)
        await spool.quarantine(record, error="foreign key violation", code="23503")
        assert spool.stats.depth == 0 and spool.stats.quarantined == 1
        assert await spool.quarantined() == [
            {
                "id": record.id,
                "kind": "latest",
                "payload": [{"parameter_id": "gone"}],
                "error": "foreign key violation",
                "code": "23503",
            }
        ]


async def test_bound_drops_oldest_telemetry_but_never_runs_or_commands(tmp_path: Path) -> None:
    big = "x" * 1000
    async with Spool(tmp_path / "s.sqlite", max_bytes=20_000) as spool:
        await spool.append("run", {"id": "run-1", "pad": big})
        await spool.append("command", {"id": 7, "values": {"status": "succeeded"}, "pad": big})
        for i in range(40):
            await spool.append("history", {"n": i, "pad": big})
        assert spool.stats.bytes <= 20_000
        assert spool.stats.dropped > 0
        kept = [r.payload["n"] for r in await spool.peek("history", 100)]
        assert kept == list(range(40 - len(kept), 40))  # the newest survive, in order
        assert len(await spool.peek("run", 10)) == 1 and len(await spool.peek("command", 10)) == 1


async def test_lifecycle_misuse_is_a_clear_error(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite")
    async with spool:
        with pytest.raises(RuntimeError, match="cannot be opened when open"):
            await spool.__aenter__()
    assert spool.state is SpoolState.CLOSED
    with pytest.raises(RuntimeError, match="closed"):
        await spool.append("history", {})


async def test_wal_and_full_sync_are_on(tmp_path: Path) -> None:
    import sqlite3

    async with Spool(tmp_path / "s.sqlite") as spool:
        await spool.append("history", {})
        mode = sqlite3.connect(tmp_path / "s.sqlite").execute("pragma journal_mode").fetchone()[0]
    assert mode == "wal"


async def test_peek_caps_a_batch_by_payload_size_but_never_returns_nothing(tmp_path: Path) -> None:
    async with Spool(tmp_path / "s.sqlite") as spool:
        await spool.append_many([("history", {"pad": "x" * 1000}) for _ in range(10)])
        await spool.append("run", {"pad": "y" * 5000})
        assert len(await spool.peek("history", 100, max_bytes=3500)) == 3
        assert len(await spool.peek("run", 100, max_bytes=100)) == 1  # oversized alone still goes out
        assert len(await spool.peek("history", 100)) == 10


async def test_peek_behind_other_kinds_returns_only_records_older_than_their_oldest(tmp_path: Path) -> None:
    async with Spool(tmp_path / "s.sqlite") as spool:
        await spool.append_many([("step", {"n": 0}), ("run", {"n": 1}), ("step", {"n": 2})])
        assert [r.payload["n"] for r in await spool.peek("step", 10, behind=("run",))] == [0]
        assert [r.payload["n"] for r in await spool.peek("step", 10, behind=("machine",))] == [0, 2]
        (run,) = await spool.peek("run", 1)
        await spool.remove([run.id])
        assert [r.payload["n"] for r in await spool.peek("step", 10, behind=("run",))] == [0, 2]


async def test_dropping_is_true_only_within_a_minute_of_the_last_drop(tmp_path: Path) -> None:
    """/health says degraded while the bound drops telemetry, not forever after one drop."""
    import time

    from agent.spool.store import DROPPING_WINDOW_S

    async with Spool(tmp_path / "s.sqlite", max_bytes=2_000) as spool:
        assert not spool.dropping
        for i in range(100):
            await spool.append("history", {"i": i, "pad": "x" * 50})
        assert spool.stats.dropped > 0 and spool.dropping
        assert spool.stats.last_drop_at is not None
        spool.stats.last_drop_at = time.monotonic() - DROPPING_WINDOW_S - 1
        assert not spool.dropping


async def _counts_match_the_file(spool: Spool) -> dict[str, int]:
    """The spool's own per-kind counts, after checking them against a fresh count of the file."""
    rows = await spool._run(lambda: spool._conn.execute("select kind, count(*) from outbox group by kind").fetchall())
    known = {k: n for k, n in spool.stats.by_kind.items() if n}
    assert known == dict(rows)
    assert sum(known.values()) == spool.stats.depth
    return known


async def test_the_spool_counts_its_records_per_kind_through_every_change(tmp_path: Path) -> None:
    """The shipper skips a kind the counts call empty: a count that drifts to 0 would hold that kind back."""
    big = "x" * 1000
    path = tmp_path / "s.sqlite"
    async with Spool(path, max_bytes=20_000) as spool:
        await spool.append("run", {"id": "run-1"})
        await spool.append_many([("history", {"n": i}) for i in range(3)] + [("latest", [{"p": 1}])])
        assert await _counts_match_the_file(spool) == {"run": 1, "history": 3, "latest": 1}
        shipped = await spool.peek("history", 2)
        await spool.remove([r.id for r in shipped])
        (latest,) = await spool.peek("latest", 1)
        await spool.quarantine(latest, error="refused", code="23503")
        assert await _counts_match_the_file(spool) == {"run": 1, "history": 1}
        assert (spool.pending("history"), spool.pending("latest"), spool.pending("command")) == (1, 0, 0)
        for i in range(40):  # past the bound: the oldest telemetry is dropped
            await spool.append("history", {"n": i, "pad": big})
        assert spool.stats.dropped > 0
        dropped_to = await _counts_match_the_file(spool)
    async with Spool(path) as spool:
        assert await _counts_match_the_file(spool) == dropped_to


async def test_another_process_s_changes_show_in_the_counts_after_the_next_peek(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    async with Spool(path) as spool:
        await spool.append("history", {"n": 0})
        other = sqlite3.connect(path)  # the quarantine CLI's connection, as `spool quarantine replay` makes it
        with other:
            other.execute("insert into outbox (kind, payload, created, size) values ('command', '{}', 0, 2)")
        other.close()
        assert spool.pending("command") == 0  # not known until the spool's thread looks
        await spool.peek("history", 1)
        assert spool.pending("command") == 1
        assert await _counts_match_the_file(spool) == {"history": 1, "command": 1}
