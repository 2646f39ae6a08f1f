"""`runs list|show`: the machine's recipe runs as the dashboard records them (status, progress, step timings).

Reads `process_runs` and `run_steps` for MACHINE_ID (a machine key is enough). Formatting lives in
agent/cli/progress.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from agent.cli.progress import duration, progress_line, run_plan, run_times, step_timings
from agent.cloud import CloudClient, cloud_for
from agent.config import Settings
from agent.errors import ValidationError

__all__ = ["add_parsers", "run"]

LIST_COLUMNS = "id,status,started_at,finished_at,completed_steps,total_steps,current_step,error,recipe_snapshot"


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    runs = sub.add_parser("runs", help="list and show the machine's recipe runs")
    actions = runs.add_subparsers(dest="runs_action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="newest first: id, status, progress, started, duration, recipe")
    listing.add_argument("--limit", type=int, default=20, metavar="N", help="how many (20)")
    listing.add_argument("--json", action="store_true")
    one = actions.add_parser("show", help="one run: status, progress, step timings by type (--steps: every step)")
    one.add_argument("run_id", metavar="RUN_ID", help="the run's id (a unique prefix of at least 8 characters)")
    one.add_argument("--steps", action="store_true", help="every executed step with planned and actual time")
    one.add_argument("--json", action="store_true")


def _recipe_name(row: dict[str, Any]) -> str:
    snapshot = row.get("recipe_snapshot") or {}
    return f"{snapshot.get('name', '?')} v{snapshot.get('version', '?')}" if isinstance(snapshot, dict) else "?"


async def run(args: argparse.Namespace, settings: Settings) -> int:
    now = datetime.now(UTC)
    async with cloud_for(settings) as cloud:
        machine = str(settings.MACHINE_ID)
        if args.runs_action == "list":
            if args.limit < 1:
                raise ValidationError("--limit must be at least 1")
            rows = await cloud.select(
                "process_runs", columns=LIST_COLUMNS, eq={"machine_id": machine}, order="started_at",
                descending=True, limit=args.limit,
            )  # fmt: skip
            if args.json:
                print(json.dumps([{k: v for k, v in r.items() if k != "recipe_snapshot"} for r in rows], indent=2))
                return 0
            print(f"{'RUN':<36}  {'STATUS':<11} {'STEPS':>11}  {'STARTED (UTC)':<19}  {'TIME':>8}  RECIPE")
            for r in rows:
                done = f"{r['completed_steps']}/{r['total_steps']}"
                started = str(r["started_at"])[:19].replace("T", " ")
                took = duration(run_times(r, now=now, plan=None).elapsed_s)
                print(f"{r['id']:<36}  {r['status']:<11} {done:>11}  {started:<19}  {took:>8}  {_recipe_name(r)}")
            return 0
        row = await _find_run(cloud, machine, args.run_id)
        steps = await cloud.select("run_steps", eq={"run_id": row["id"]}, order="seq")
    timings = step_timings(steps)
    if args.json:
        body = {k: v for k, v in row.items() if k != "recipe_snapshot"}
        body["recipe"] = _recipe_name(row)
        body["timings"] = [dataclasses.asdict(t) for t in timings]
        body["steps"] = steps if args.steps else None
        print(json.dumps(body, indent=2, default=str))
        return 0
    print(progress_line(row, now=now, plan=run_plan(row)))
    print(f"recipe   {_recipe_name(row)}")
    print(f"started  {row['started_at']}   finished {row.get('finished_at') or '-'}")
    if row.get("error"):
        print(f"error    {row['error']}")
    if timings:
        print(f"\n{'TYPE':<10} {'STEPS':>6} {'PLANNED':>10} {'ACTUAL':>10} {'MEAN DEV':>10} {'MAX DEV':>10}")
        for t in timings:
            print(
                f"{t.type:<10} {t.steps:>6} {duration(t.planned_ms / 1000):>10} {duration(t.actual_ms / 1000):>10}"
                f" {_ms(t.mean_deviation_ms):>10} {_ms(t.max_deviation_ms):>10}"
            )
    if args.steps:
        print(f"\n{'SEQ':>6}  {'PATH':<12} {'TYPE':<9} {'STATUS':<10} {'PLANNED':>10} {'ACTUAL':>10}  NAME")
        for s in steps:
            print(
                f"{s['seq']:>6}  {s['path']:<12} {s['type']:<9} {s['status']:<10} {_ms(s.get('planned_ms')):>10}"
                f" {_ms(s.get('actual_ms')):>10}  {s.get('name') or ''}"
            )
    return 0


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


async def _find_run(cloud: CloudClient, machine: str, run_id: str) -> dict[str, Any]:
    """The run with id `run_id`, or the only recent run whose id starts with it (copying 8 characters from
    `runs list` is enough). `ValidationError` when none or several match."""
    run_id = run_id.strip().lower()
    if len(run_id) == 36:
        try:
            uuid.UUID(run_id)
        except ValueError:
            raise ValidationError(f"RUN_ID: {run_id!r} is not a run id") from None
        rows = await cloud.select("process_runs", eq={"id": run_id, "machine_id": machine})
    else:
        if len(run_id) < 8:
            raise ValidationError("RUN_ID: give the run's id, or at least its first 8 characters")
        recent = await cloud.select(
            "process_runs", columns="id", eq={"machine_id": machine}, order="started_at", descending=True, limit=500
        )
        ids = [r["id"] for r in recent if str(r["id"]).startswith(run_id)]
        if len(ids) > 1:
            raise ValidationError(f"RUN_ID: {run_id} matches {len(ids)} runs; give more characters")
        rows = await cloud.select("process_runs", eq={"id": ids[0]}) if ids else []
    if not rows:
        raise ValidationError(f"RUN_ID: no run {run_id} on machine {machine}")
    return dict(rows[0])
