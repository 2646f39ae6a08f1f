"""`command …`: insert a command exactly as the dashboard does and follow it to its end."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from typing import Any

from agent.cli.output import EXIT_FAILED
from agent.cloud import CloudClient, cloud_for
from agent.config import Settings
from agent.errors import CommandError

__all__ = ["add_parsers", "run"]

FINAL = {"succeeded", "failed", "rejected", "expired"}
POLL_S = 0.2


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = sub.add_parser("command", help="send a command to the machine (like the dashboard) and follow it")
    kinds = command.add_subparsers(dest="command_type", metavar="TYPE", required=True)
    start = kinds.add_parser("start-recipe", help="start a recipe by id")
    start.add_argument("recipe_id", metavar="RECIPE_ID")
    kinds.add_parser("stop", help="stop the running recipe (safe state)")
    kinds.add_parser("pause", help="pause at the next step boundary")
    kinds.add_parser("resume", help="resume a paused recipe")
    setp = kinds.add_parser("set", help="set a parameter (refused while a recipe runs unless paused)")
    setp.add_argument("key", metavar="KEY")
    setp.add_argument("value", metavar="VALUE", help="a JSON number or true/false")
    for parser in kinds.choices.values():
        parser.add_argument("--timeout", type=float, default=60.0, metavar="S", help="how long to follow (60 s)")
        parser.add_argument("--no-wait", action="store_true", help="insert and return")


def _payload(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    match args.command_type:
        case "start-recipe":
            return "start_recipe", {"recipe_id": args.recipe_id}
        case "set":
            try:
                value = json.loads(args.value)
            except json.JSONDecodeError:
                raise CommandError(f"VALUE must be a JSON number or true/false, got {args.value!r}") from None
            return "set_parameter", {"key": args.key, "value": value}
    return {"stop": "stop_recipe", "pause": "pause_recipe", "resume": "resume_recipe"}[args.command_type], {}


async def run(args: argparse.Namespace, settings: Settings) -> int:
    kind, payload = _payload(args)
    async with cloud_for(settings) as cloud:
        row = await cloud.insert(
            "machine_commands",
            {
                "machine_id": str(settings.MACHINE_ID),
                "type": kind,
                "payload": payload,
                "idempotency_key": f"cli-{uuid.uuid4()}",
            },
        )
        print(f"command {row['id']}: {kind} {json.dumps(payload)} inserted", flush=True)
        if args.no_wait:
            return 0
        return await _follow(cloud, int(row["id"]), timeout_s=args.timeout)


async def _follow(cloud: CloudClient, command_id: int, *, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    status, progress = "pending", None
    while time.monotonic() < deadline:
        (row,) = await cloud.select("machine_commands", eq={"id": command_id})
        runs = await cloud.select("process_runs", eq={"command_id": command_id})
        if runs and (runs[0]["status"], runs[0]["completed_steps"]) != progress:
            run = runs[0]
            progress = (run["status"], run["completed_steps"])
            step = (run.get("current_step") or {}).get("name", "")
            done = f"{run['completed_steps']}/{run['total_steps']}"
            print(f"  run {run['id']}: {run['status']} {done} {step}", flush=True)

        if row["status"] != status:
            status = row["status"]
            print(f"command {command_id}: {status}" + (f": {row['error']}" if row.get("error") else ""), flush=True)
        if status in FINAL:
            return 0 if status == "succeeded" else EXIT_FAILED
        await asyncio.sleep(POLL_S)

    print(f"command {command_id}: still {status} after {timeout_s:g} s")
    return EXIT_FAILED
