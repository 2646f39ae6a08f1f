"""Back up and restore the spool file: what the agent has not shipped yet survives a disk or host swap.

`backup_spool` uses SQLite's online backup API, so it is consistent while the agent writes (WAL mode: the agent
never waits for it) and needs no stop. `restore_spool` is for a stopped agent: it checks the backup's integrity,
then replaces SPOOL_PATH in one rename and removes the old file's WAL and shared-memory files, which belong to
the file being replaced. Blocking (sqlite3, file copies): call from a thread on an event loop.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from agent.errors import ConfigError, ValidationError

__all__ = ["SpoolCounts", "backup_spool", "restore_spool"]


@dataclass(frozen=True, slots=True)
class SpoolCounts:
    pending: int  # outbox records not shipped yet
    quarantined: int


def _counts(db: sqlite3.Connection) -> SpoolCounts:
    try:
        pending = db.execute("select count(*) from outbox").fetchone()[0]
        quarantined = db.execute("select count(*) from quarantine").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise ValidationError(f"not an agent spool: {exc}") from exc
    return SpoolCounts(int(pending), int(quarantined))


def backup_spool(spool: Path, destination: Path) -> SpoolCounts:
    """Copy `spool` (running agent or not) to `destination` (must not exist); the counts it holds."""
    if not spool.is_file():
        raise ConfigError(f"SPOOL_PATH: no spool at {spool}")
    if destination.exists():
        raise ValidationError(f"{destination} exists: choose a new file (a backup never overwrites)")
    source = sqlite3.connect(f"{spool.resolve().as_uri()}?mode=ro", uri=True)
    try:
        source.execute("pragma busy_timeout = 10000")
        counts = _counts(source)
        target = sqlite3.connect(destination)
        try:
            source.backup(target)
            target.execute("pragma journal_mode = delete")  # one self-contained file
        finally:
            target.close()
    except sqlite3.Error as exc:
        destination.unlink(missing_ok=True)
        raise ValidationError(f"backup of {spool} failed: {exc}") from exc
    finally:
        source.close()
    return counts


def restore_spool(backup_file: Path, spool: Path) -> SpoolCounts:
    """Replace `spool` by `backup_file` (the agent must be stopped); the counts restored."""
    if not backup_file.is_file():
        raise ValidationError(f"no backup at {backup_file}")
    check = sqlite3.connect(f"{backup_file.resolve().as_uri()}?mode=ro", uri=True)
    try:
        verdict = check.execute("pragma integrity_check").fetchone()[0]
        if verdict != "ok":
            raise ValidationError(f"{backup_file} is damaged: {verdict}")
        counts = _counts(check)
    except sqlite3.DatabaseError as exc:
        raise ValidationError(f"{backup_file} is not a spool backup: {exc}") from exc
    finally:
        check.close()
    spool.parent.mkdir(parents=True, exist_ok=True)
    staged = spool.with_name(spool.name + ".restoring")
    staged.write_bytes(backup_file.read_bytes())
    for leftover in (Path(f"{spool}-wal"), Path(f"{spool}-shm")):
        leftover.unlink(missing_ok=True)
    os.replace(staged, spool)
    return counts
