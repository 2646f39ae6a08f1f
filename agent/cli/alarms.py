"""`alarms list`: the machine's open process alarms (or recent ones, with --all) as Supabase records them.

Reads `alarms` for MACHINE_ID (a machine key is enough). Acknowledge with `command ack-alarm ID|all`, which goes
through the command table to the running agent, like the dashboard's button.
"""

from __future__ import annotations

import argparse
import json

from agent.cloud import cloud_for
from agent.config import Settings
from agent.errors import ValidationError

__all__ = ["add_parsers", "run"]

OPEN_STATES = ("active_unacked", "active_acked", "cleared_unacked")
COLUMNS = "id,key,kind,severity,state,value,limit_value,message,raised_at,acked_at,acked_by,cleared_at"


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    alarms = sub.add_parser("alarms", help="the machine's process alarms")
    actions = alarms.add_subparsers(dest="alarms_action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="open alarms, newest first (--all: closed ones too)")
    listing.add_argument("--all", action="store_true", help="include closed alarms")
    listing.add_argument("--limit", type=int, default=50, metavar="N", help="how many (50)")
    listing.add_argument("--json", action="store_true")


async def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.limit < 1:
        raise ValidationError("--limit must be at least 1")
    machine = str(settings.MACHINE_ID)
    async with cloud_for(settings) as cloud:
        if args.all:
            rows = await cloud.select(
                "alarms", columns=COLUMNS, eq={"machine_id": machine}, order="raised_at", descending=True,
                limit=args.limit,
            )  # fmt: skip
        else:
            rows = [
                r
                for state in OPEN_STATES
                for r in await cloud.select(
                    "alarms",
                    columns=COLUMNS,
                    eq={"machine_id": machine, "state": state},
                    order="raised_at",
                    descending=True,
                    limit=args.limit,
                )
            ]
            rows = sorted(rows, key=lambda r: str(r["raised_at"]), reverse=True)[: args.limit]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no open alarms" if not args.all else "no alarms")
        return 0
    print(f"{'ALARM':<36}  {'SEVERITY':<8}  {'STATE':<15}  {'RAISED (UTC)':<19}  MESSAGE")
    for r in rows:
        raised = str(r["raised_at"])[:19].replace("T", " ")
        acked = f" [acked by {r['acked_by']}]" if r.get("acked_by") else ""
        print(f"{r['id']:<36}  {r['severity']:<8}  {r['state']:<15}  {raised:<19}  {r['message']}{acked}")
    return 0
