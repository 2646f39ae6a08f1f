"""The quarantine seen from outside the agent: list, show, replay (after a fix) and discard refused records.

The shipper moves a record Supabase refused permanently (a 4xx: foreign key, check constraint, permission)
into the spool's `quarantine` table with the error, so it never blocks its queue. An engineer then fixes the
cause (registers the machine, applies a migration, corrects the payload) and replays the record, or discards
it. These functions open the spool file directly, so they work whether the agent is running or not:

- every change is one `begin immediate` transaction (SQLite's file lock) with a busy timeout, so it waits for
  the agent's own write instead of failing, and the agent never sees half of it;
- a replayed record goes back into the outbox under its original id: it keeps its place in its kind's FIFO
  and relative to the run/step/command records around it (ids are never reused: AUTOINCREMENT);
- the running agent notices the change (SQLite's `data_version`) and recounts its depth and quarantine, so
  /health and the metrics follow (`Spool._follow_external_changes`).

Blocking (sqlite3): call from a thread when on an event loop (`asyncio.to_thread`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import ConfigError, ValidationError

__all__ = ["QuarantinedRecord", "discard_quarantined", "list_quarantined", "replay_quarantined", "show_quarantined"]

#: How long a change waits for the running agent's own transaction (it holds the lock for milliseconds).
BUSY_TIMEOUT_MS = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class QuarantinedRecord:
    id: int
    kind: str
    payload: Any
    created: float  # when the agent spooled it (Unix time)
    moved: float  # when the shipper quarantined it
    error: str
    code: str | None  # PostgREST / SQLSTATE code, e.g. 23503 for a foreign key

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "code": self.code,
            "error": self.error,
            "created": self.created,
            "moved": self.moved,
            "payload": self.payload,
        }


@contextmanager
def _open(path: Path) -> Iterator[sqlite3.Connection]:
    """The spool file, never created: a wrong SPOOL_PATH must not leave an empty spool behind."""
    if not path.is_file():
        raise ConfigError(f"SPOOL_PATH: no spool at {path}")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise ConfigError(f"SPOOL_PATH: cannot open {path}: {exc}") from exc
    try:
        db.execute(f"pragma busy_timeout = {BUSY_TIMEOUT_MS}")
        tables = {r[0] for r in db.execute("select name from sqlite_master where type = 'table'")}
        if not {"outbox", "quarantine"} <= tables:
            raise ConfigError(f"SPOOL_PATH: {path} is not an agent spool (no outbox/quarantine tables)")
        yield db
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"SPOOL_PATH: {path}: {exc}") from exc
    finally:
        db.close()


_COLUMNS = "id, kind, payload, created, moved, error, code"


def _record(row: tuple[Any, ...]) -> QuarantinedRecord:
    return QuarantinedRecord(
        id=row[0], kind=row[1], payload=json.loads(row[2]), created=row[3], moved=row[4], error=row[5], code=row[6]
    )


def list_quarantined(path: Path, *, kind: str | None = None) -> list[QuarantinedRecord]:
    """Every quarantined record (of `kind`, when given), oldest first."""
    with _open(path) as db:
        if kind is None:
            rows = db.execute(f"select {_COLUMNS} from quarantine order by id").fetchall()
        else:
            rows = db.execute(f"select {_COLUMNS} from quarantine where kind = ? order by id", (kind,)).fetchall()
    return [_record(r) for r in rows]


def show_quarantined(path: Path, record_id: int) -> QuarantinedRecord:
    """One quarantined record; `ValidationError` when there is none with that id."""
    with _open(path) as db:
        row = db.execute(f"select {_COLUMNS} from quarantine where id = ?", (record_id,)).fetchone()
    if row is None:
        raise ValidationError(f"no quarantined record {record_id}")
    return _record(row)


def _selected(db: sqlite3.Connection, ids: Sequence[int] | None, kind: str | None) -> list[tuple[Any, ...]]:
    """The rows `ids` names (all of them must exist) or, with ids None, every row (of `kind`)."""
    if ids is None:
        query = f"select {_COLUMNS} from quarantine" + (" where kind = ?" if kind else "") + " order by id"
        return db.execute(query, (kind,) if kind else ()).fetchall()
    rows = [db.execute(f"select {_COLUMNS} from quarantine where id = ?", (i,)).fetchone() for i in ids]
    missing = [str(i) for i, row in zip(ids, rows, strict=True) if row is None]
    if missing:
        raise ValidationError(f"no quarantined record {', '.join(missing)}")
    return [r for r in rows if r is not None]


def replay_quarantined(
    path: Path, ids: Sequence[int] | None = None, *, kind: str | None = None, payload: Any = None
) -> list[int]:
    """Move records back to the outbox (their original ids) for the shipper to try again; returns their ids.

    `ids` None means every record (of `kind`). `payload`: a corrected payload for one record (exactly one id);
    it must be JSON-serialisable. Nothing moves if any id is unknown (`ValidationError`).
    """
    if payload is not None and (ids is None or len(ids) != 1):
        raise ValidationError("a corrected payload replaces exactly one record: give one id")
    with _open(path) as db:
        db.execute("begin immediate")
        try:
            rows = _selected(db, ids, kind)
            for row in rows:
                text = row[2] if payload is None else json.dumps(payload, separators=(",", ":"))
                db.execute(
                    "insert into outbox (id, kind, payload, created, size) values (?, ?, ?, ?, ?)",
                    (row[0], row[1], text, row[3], len(text)),
                )
                db.execute("delete from quarantine where id = ?", (row[0],))
            db.execute("commit")
        except BaseException:
            db.execute("rollback")
            raise
    return [int(r[0]) for r in rows]


def discard_quarantined(path: Path, ids: Sequence[int] | None = None, *, kind: str | None = None) -> list[int]:
    """Delete quarantined records for good (`ids` None: every record, of `kind`); returns their ids."""
    with _open(path) as db:
        db.execute("begin immediate")
        try:
            rows = _selected(db, ids, kind)
            db.executemany("delete from quarantine where id = ?", [(r[0],) for r in rows])
            db.execute("commit")
        except BaseException:
            db.execute("rollback")
            raise
    return [int(r[0]) for r in rows]
