"""`spool quarantine list|show|replay|discard`: the records Supabase refused, and the way out for each;
`spool backup|restore`: the unshipped records across a disk or host swap (agent/spool/backup.py).

Works on the spool file (SPOOL_PATH, or --spool) whether the agent is running or not; in a container:
`docker compose exec agent-blue python -m agent spool quarantine list`. See agent/spool/quarantine.py for how
a change stays safe beside a running agent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.config import Settings
from agent.errors import ValidationError
from agent.spool import (
    QuarantinedRecord,
    backup_spool,
    discard_quarantined,
    list_quarantined,
    replay_quarantined,
    restore_spool,
    show_quarantined,
)

__all__ = ["add_parsers", "run"]

ERROR_WIDTH = 80


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    spool = sub.add_parser("spool", help="the local spool: quarantined records (list, show, replay, discard)")
    spool.add_argument("--spool", type=Path, default=None, metavar="PATH", help="spool file (default SPOOL_PATH)")
    groups = spool.add_subparsers(dest="spool_group", metavar="GROUP", required=True)
    save = groups.add_parser("backup", help="copy the spool to FILE (consistent while the agent runs)")
    save.add_argument("file", type=Path, metavar="FILE")
    load = groups.add_parser("restore", help="replace the spool by a backup FILE (stop the agent first)")
    load.add_argument("file", type=Path, metavar="FILE")
    quarantine = groups.add_parser("quarantine", help="records Supabase refused permanently")
    actions = quarantine.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="one line per record: id, kind, code, when, error")
    listing.add_argument("--kind", default=None, help="only this kind (history, run, step, command, …)")
    listing.add_argument("--json", action="store_true", help="JSON objects with the payloads")
    one = actions.add_parser("show", help="one record with its payload and the whole error, as JSON")
    one.add_argument("id", type=int, metavar="ID")
    again = actions.add_parser("replay", help="after a fix: put records back in the outbox, in their old place")
    again.add_argument("ids", type=int, nargs="*", metavar="ID")
    again.add_argument("--all", action="store_true", help="every quarantined record (of --kind)")
    again.add_argument("--kind", default=None, help="with --all: only this kind")
    again.add_argument("--payload", type=Path, default=None, metavar="FILE.json", help="corrected payload (one ID)")
    drop = actions.add_parser("discard", help="delete records for good (save them first with show/list --json)")
    drop.add_argument("ids", type=int, nargs="*", metavar="ID")
    drop.add_argument("--all", action="store_true", help="every quarantined record (of --kind); needs --yes")
    drop.add_argument("--kind", default=None, help="with --all: only this kind")
    drop.add_argument("--yes", action="store_true", help="confirm --all")


def _targets(args: argparse.Namespace) -> list[int] | None:
    if args.all and args.ids:
        raise ValidationError("give record ids or --all, not both")
    if not args.all and not args.ids:
        raise ValidationError("give the record ids (see `spool quarantine list`) or --all")
    if args.kind and not args.all:
        raise ValidationError("--kind selects with --all only")
    return None if args.all else list(args.ids)


def _payload(path: Path | None) -> Any:
    if path is None:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValidationError(f"--payload: cannot read {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise ValidationError(f"--payload: {path} is not JSON: {exc}") from None


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _line(record: QuarantinedRecord) -> str:
    error = record.error.replace("\n", " ")
    if len(error) > ERROR_WIDTH:
        error = error[: ERROR_WIDTH - 1] + "…"
    return f"{record.id:>8}  {record.kind:<9} {record.code or '-':<8} {_when(record.moved)}  {error}"


async def run(args: argparse.Namespace, settings: Settings) -> int:
    path: Path = args.spool or settings.SPOOL_PATH
    if args.spool_group == "backup":
        counts = await asyncio.to_thread(backup_spool, path, args.file)
        print(f"backed up {path} to {args.file}: {counts.pending} pending, {counts.quarantined} quarantined")
        return 0
    if args.spool_group == "restore":
        counts = await asyncio.to_thread(restore_spool, args.file, path)
        print(f"restored {path} from {args.file}: {counts.pending} pending, {counts.quarantined} quarantined")
        return 0
    match args.action:
        case "list":
            records = await asyncio.to_thread(list_quarantined, path, kind=args.kind)
            if args.json:
                print(json.dumps([r.as_json() for r in records], indent=2))
            else:
                print(f"{'ID':>8}  {'KIND':<9} {'CODE':<8} {'QUARANTINED':<20}  ERROR")
                for record in records:
                    print(_line(record))
                print(f"{len(records)} quarantined record(s) in {path}")
        case "show":
            print(json.dumps((await asyncio.to_thread(show_quarantined, path, args.id)).as_json(), indent=2))
        case "replay":
            ids = _targets(args)
            fix = _payload(args.payload)
            moved = await asyncio.to_thread(replay_quarantined, path, ids, kind=args.kind, payload=fix)
            print(f"replayed {len(moved)} record(s): {_ids(moved)}; the shipper sends them next")
        case "discard":
            ids = _targets(args)
            if ids is None and not args.yes:
                raise ValidationError("discard --all deletes every record for good: add --yes")
            gone = await asyncio.to_thread(discard_quarantined, path, ids, kind=args.kind)
            print(f"discarded {len(gone)} record(s): {_ids(gone)}")
    return 0


def _ids(ids: list[int]) -> str:
    return ", ".join(map(str, ids)) or "none"
