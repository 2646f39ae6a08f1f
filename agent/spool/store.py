"""The durable local outbox (SQLite, WAL): every outbound write is appended here first, then shipped.

Why SQLite with `synchronous=FULL`: the spool is the source of truth until a record is shipped (docs/DESIGN.md §9:
edges lose power). In WAL mode FULL fsyncs the log at each commit, so an appended record survives a power
cut, not only a crashed process (NORMAL would only guarantee the latter). The cost is one fsync per append
transaction: ~1–3 per second at 1 Hz, measured in bench/telemetry.py, and it happens on the spool's own
thread, never on the event loop.

Layout: one `outbox` table with a `kind` column; strict FIFO per kind by the autoincrement id. A record the
cloud refuses permanently moves to `quarantine` with the error, so it never blocks its queue. When the file
grows past its bound, the oldest *telemetry* records go first (`DROPPABLE_KINDS`); run and command records
are never dropped.

All SQLite calls run on one dedicated worker thread (SQLite connections are thread-bound); the public
methods are coroutines. Another process may change the file (`python -m agent spool quarantine replay|discard`,
agent/spool/quarantine.py): each peek checks SQLite's `data_version` and recounts the stats when it moved.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, TypeVarTuple

from loguru import logger

from agent.spool import jsontext

__all__ = ["DROPPABLE_KINDS", "Record", "Spool", "SpoolState", "SpoolStats"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

#: Telemetry may be dropped (oldest first) when the spool is full; runs and commands never.
#: How long after its last drop the spool still counts as dropping (/health degraded): a minute of frames.
DROPPING_WINDOW_S = 60.0
DROPPABLE_KINDS = frozenset({"history", "latest", "heartbeat"})

_SCHEMA = """
create table if not exists outbox (
    id integer primary key autoincrement,
    kind text not null,
    payload text not null,
    created real not null,
    size integer not null
);
create index if not exists outbox_kind_id on outbox (kind, id);
create table if not exists quarantine (
    id integer primary key,
    kind text not null,
    payload text not null,
    created real not null,
    error text not null,
    code text,
    moved real not null
);
"""


@dataclass(frozen=True, slots=True)
class Record:
    id: int
    kind: str
    payload: Any
    created: float


@dataclass(slots=True)
class SpoolStats:
    depth: int = 0
    bytes: int = 0
    quarantined: int = 0
    dropped: int = 0
    appended: int = 0
    shipped: int = 0
    last_drop_at: float | None = None  # time.monotonic() of the last drop at the size bound
    #: Pending records per kind (the sum is `depth`), so the shipper asks the spool's thread only about kinds
    #: that have records: at 10 Hz, peeking all eight kinds per frame was 8 thread round trips for one record.
    by_kind: Counter[str] = field(default_factory=Counter)


class SpoolState(Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


class Spool:
    """``async with Spool(path, max_bytes=...) as spool: await spool.append("history", row)``."""

    def __init__(self, path: Path | str, *, max_bytes: int = 512 * 1024 * 1024) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.state = SpoolState.NEW
        self.stats = SpoolStats()
        self._db: sqlite3.Connection | None = None
        self._data_version: int | None = None  # SQLite's counter of commits by *other* connections
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool")
        self.changed = asyncio.Event()  # set on every append: wakes the shipper

    async def __aenter__(self) -> Spool:
        if self.state is not SpoolState.NEW:
            raise RuntimeError(f"Spool cannot be opened when {self.state.value}")
        await self._run(self._open)
        self.state = SpoolState.OPEN
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self.state is not SpoolState.OPEN:
            self.state = SpoolState.CLOSED
            return
        self.state = SpoolState.CLOSED
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=True)

    @property
    def dropping(self) -> bool:
        """True while the spool is at its size bound: it dropped telemetry within the last `DROPPING_WINDOW_S`."""
        last = self.stats.last_drop_at
        return last is not None and time.monotonic() - last < DROPPING_WINDOW_S

    # --- public API (coroutines; the work happens on the spool thread) ----------------------------

    async def append(self, kind: str, payload: Any) -> int:
        """Persist one record durably; returns its id. Enforces the size bound by dropping old telemetry."""
        record_id = await self._run(self._append_many, kind, [payload])
        self.changed.set()
        return record_id

    async def append_many(self, items: Sequence[tuple[str, Any]]) -> None:
        """Several records in one transaction (one fsync), in order."""
        if items:
            await self._run(self._append_items, list(items))
            self.changed.set()

    async def peek(
        self, kind: str, limit: int, *, max_bytes: int | None = None, behind: Sequence[str] = ()
    ) -> list[Record]:
        """The oldest records of `kind`, in order (FIFO): at most `limit`, and no more than `max_bytes` of
        payload (but always at least one, so an oversized record still reaches the cloud and is judged).

        `behind`: only records older than every pending record of those kinds. The barrier and the read are
        one step on the spool's thread, so no append can slip in between them.
        """
        return await self._run(self._peek, kind, limit, max_bytes, tuple(behind))

    def pending(self, kind: str) -> int:
        """Records of `kind` waiting, as this process knows it: exact for its own appends, removals, drops and
        quarantines; a change by another process (the quarantine CLI) shows after the next `peek` of any kind."""
        return self.stats.by_kind[kind]

    async def kinds(self) -> list[str]:
        """Kinds with pending records."""
        return await self._run(lambda: [r[0] for r in self._conn.execute("select distinct kind from outbox")])

    async def remove(self, ids: Sequence[int]) -> None:
        """Forget shipped records."""
        await self._run(self._remove, list(ids))

    async def quarantine(self, record: Record, *, error: str, code: str | None) -> None:
        """Move a record the cloud refused permanently out of the queue, keeping the error for an engineer."""
        await self._run(self._quarantine, record, error, code)

    async def quarantined(self) -> list[dict[str, Any]]:
        rows = await self._run(
            lambda: self._conn.execute("select id, kind, payload, error, code from quarantine order by id").fetchall()
        )
        return [{"id": r[0], "kind": r[1], "payload": jsontext.loads(r[2]), "error": r[3], "code": r[4]} for r in rows]

    # --- worker-thread side -----------------------------------------------------------------------

    async def _run(self, fn: Callable[[*Ts], T], *args: *Ts) -> T:
        if self.state is SpoolState.CLOSED:
            raise RuntimeError("Spool is closed")
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    @property
    def _conn(self) -> sqlite3.Connection:
        assert self._db is not None
        return self._db

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("pragma journal_mode=wal")
        db.execute("pragma synchronous=full")
        db.executescript(_SCHEMA)
        self._db = db
        self._recount()
        if self.stats.depth:
            logger.info("spool {}: {} records waiting from a previous run", self.path, self.stats.depth)

    def _recount(self) -> None:
        db = self._conn
        self._data_version = db.execute("pragma data_version").fetchone()[0]
        counted = db.execute("select kind, count(*), sum(size) from outbox group by kind").fetchall()
        self.stats.by_kind = Counter({kind: count for kind, count, _ in counted})
        self.stats.depth = sum(count for _, count, _ in counted)
        self.stats.bytes = sum(size for _, _, size in counted)
        self.stats.quarantined = db.execute("select count(*) from quarantine").fetchone()[0]

    def _recount_after_rollback(self) -> None:
        """The counts ran ahead of a transaction that did not happen: take them from the file again (a wrong
        per-kind count of 0 would hold that kind back). A file that cannot even be counted keeps the error
        being raised, not this one."""
        with contextlib.suppress(sqlite3.Error):
            self._recount()

    def _follow_external_changes(self) -> None:
        """Recount when another connection committed (a replay or discard by the CLI): cheap when nothing did."""
        if self._conn.execute("pragma data_version").fetchone()[0] != self._data_version:
            before = (self.stats.depth, self.stats.quarantined)
            self._recount()
            logger.info(
                "spool {} changed outside the agent: depth {} → {}, quarantined {} → {}",
                self.path, before[0], self.stats.depth, before[1], self.stats.quarantined,
            )  # fmt: skip

    def _close(self) -> None:
        if self._db is not None:
            self._db.execute("pragma wal_checkpoint(truncate)")
            self._db.close()
            self._db = None

    def _append_many(self, kind: str, payloads: list[Any]) -> int:
        return self._append_items([(kind, p) for p in payloads])

    def _append_items(self, items: list[tuple[str, Any]]) -> int:
        now = time.time()
        rows = [(kind, text, now, len(text)) for kind, text in ((k, jsontext.dumps(p)) for k, p in items)]
        db = self._conn
        db.execute("begin immediate")
        try:
            cursor = db.executemany("insert into outbox (kind, payload, created, size) values (?, ?, ?, ?)", rows)
            last_id = db.execute("select last_insert_rowid()").fetchone()[0]
            added = sum(r[3] for r in rows)
            self.stats.depth += cursor.rowcount
            self.stats.bytes += added
            self.stats.appended += cursor.rowcount
            self.stats.by_kind.update(kind for kind, *_ in rows)
            if self.stats.bytes > self.max_bytes:
                self._drop_oldest_telemetry()
            db.execute("commit")
        except BaseException:
            db.execute("rollback")
            self._recount_after_rollback()
            raise
        return int(last_id)

    def _drop_oldest_telemetry(self) -> None:
        """Bring the spool back under 90 % of its bound by deleting the oldest droppable records."""
        target = int(self.max_bytes * 0.9)
        excess = self.stats.bytes - target
        marks = ",".join("?" * len(DROPPABLE_KINDS))
        victims = self._conn.execute(
            f"select id, size, kind from outbox where kind in ({marks}) order by id",
            sorted(DROPPABLE_KINDS),
        )
        ids, freed, kinds = [], 0, Counter[str]()
        for record_id, size, kind in victims:
            if freed >= excess:
                break
            ids.append(record_id)
            freed += size
            kinds[kind] += 1
        self._conn.executemany("delete from outbox where id = ?", [(i,) for i in ids])
        self.stats.depth -= len(ids)
        self.stats.bytes -= freed
        self.stats.by_kind.subtract(kinds)
        self.stats.dropped += len(ids)
        if ids:
            self.stats.last_drop_at = time.monotonic()
            logger.warning(
                "spool full ({} MB): dropped the {} oldest telemetry records", self.max_bytes >> 20, len(ids)
            )

    def _peek(self, kind: str, limit: int, max_bytes: int | None, behind: tuple[str, ...] = ()) -> list[Record]:
        self._follow_external_changes()
        barrier = None
        if any(self.stats.by_kind[k] for k in behind):
            marks = ",".join("?" * len(behind))
            barrier = self._conn.execute(f"select min(id) from outbox where kind in ({marks})", behind).fetchone()[0]
        rows = self._conn.execute(
            "select id, kind, payload, created, size from outbox where kind = ? and id < ? order by id limit ?",
            (kind, barrier if barrier is not None else 2**63 - 1, limit),
        )

        records: list[Record] = []
        total = 0
        for record_id, record_kind, payload, created, size in rows:
            total += size
            if records and max_bytes is not None and total > max_bytes:
                break  # sizes are known without decoding: stop before building the record
            records.append(Record(record_id, record_kind, jsontext.loads(payload), created))
        return records

    def _remove(self, ids: list[int]) -> None:
        db = self._conn
        db.execute("begin immediate")
        try:
            sizes, kinds = 0, Counter[str]()
            for chunk in range(0, len(ids), 500):
                part = ids[chunk : chunk + 500]
                marks = ",".join("?" * len(part))
                for kind, count, size in db.execute(
                    f"select kind, count(*), sum(size) from outbox where id in ({marks}) group by kind", part
                ):
                    kinds[kind] += count
                    sizes += size
                removed = db.execute(f"delete from outbox where id in ({marks})", part).rowcount
                self.stats.depth -= removed
                self.stats.shipped += removed
            self.stats.bytes -= sizes
            db.execute("commit")
        except BaseException:
            db.execute("rollback")
            self._recount_after_rollback()
            raise
        self.stats.by_kind.subtract(kinds)

    def _quarantine(self, record: Record, error: str, code: str | None) -> None:
        db = self._conn
        db.execute("begin immediate")
        try:
            size = db.execute("select size, kind from outbox where id = ?", (record.id,)).fetchone()
            db.execute(
                "insert or replace into quarantine (id, kind, payload, created, error, code, moved) "
                "values (?, ?, ?, ?, ?, ?, ?)",
                (record.id, record.kind, jsontext.dumps(record.payload), record.created, error, code, time.time()),
            )
            if size is not None:
                db.execute("delete from outbox where id = ?", (record.id,))
                self.stats.depth -= 1
                self.stats.bytes -= size[0]
                self.stats.by_kind[size[1]] -= 1
            self.stats.quarantined += 1
            db.execute("commit")
        except BaseException:
            db.execute("rollback")
            self._recount_after_rollback()
            raise
