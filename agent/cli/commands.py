"""`command …`: insert a command exactly as the dashboard does and follow it to its end.

What "its end" means depends on the command: `start-recipe` follows the *run* to its end (a progress line:
steps done / total, current step, elapsed / remaining) and exits with the run's outcome, however long the
recipe (no timeout unless --timeout); `pause` and `resume` answer once the run *is* paused / running again, not
when the agent accepted the request; `stop` once the run ended in its safe state (the agent's own rule);
`ack-alarm` once the agent acknowledged the alarm (the alarm's row reads acknowledged before the command reads
succeeded: the spool ships them in that order).

Every command is inserted through the cloud client into `machine_commands`, exactly as the dashboard does, and
the running agent acts on it: the CLI never goes around the agent. The row names who asked
(`requested_by`: `cli:<user>@<host>`), which an acknowledgement records as the alarm's `acked_by`.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import socket
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any, TextIO

from agent.cli.output import EXIT_FAILED
from agent.cli.progress import FINAL_RUN_STATUSES, progress_line, run_plan, summary_line
from agent.cloud import CloudClient, cloud_for
from agent.config import Settings
from agent.errors import CommandError
from agent.recipes import Plan

__all__ = ["add_parsers", "run"]

FINAL = {"succeeded", "failed", "rejected", "expired"}
POLL_S = 0.2
DEFAULT_TIMEOUT_S = 60.0
#: Without a terminal: a progress line when the run moves, at most every 2 s, and at least every 10 s (a
#: heat-up holds the first step for a minute: silence would look like a hang).
LINE_EVERY_S, HEARTBEAT_S = 2.0, 10.0
#: The run state each run command waits for once the agent accepted it.
AWAITED = {"pause_recipe": "paused", "resume_recipe": "running"}


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = sub.add_parser("command", help="send a command to the machine (like the dashboard) and follow it")
    kinds = command.add_subparsers(dest="command_type", metavar="TYPE", required=True)
    start = kinds.add_parser("start-recipe", help="start a recipe by id and follow the run to its end")
    start.add_argument("recipe_id", metavar="RECIPE_ID")
    kinds.add_parser("stop", help="stop the running recipe (safe state)")
    kinds.add_parser("pause", help="pause at the next step boundary; answers once paused")
    kinds.add_parser("resume", help="resume a paused recipe; answers once running")
    setp = kinds.add_parser("set", help="set a parameter (refused while a recipe runs unless paused)")
    setp.add_argument("key", metavar="KEY")
    setp.add_argument("value", metavar="VALUE", help="a JSON number or true/false")
    ack = kinds.add_parser("ack-alarm", help="acknowledge an alarm by id (`alarms list`), or every one with `all`")
    ack.add_argument("alarm_id", metavar="ALARM_ID|all")
    for name, parser in kinds.choices.items():
        default = "until the run ends" if name == "start-recipe" else f"{DEFAULT_TIMEOUT_S:g} s"
        parser.add_argument("--timeout", type=float, default=None, metavar="S", help=f"how long to follow ({default})")
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
        case "ack-alarm":
            return "ack_alarm", {"alarm_id": args.alarm_id}
    return {"stop": "stop_recipe", "pause": "pause_recipe", "resume": "resume_recipe"}[args.command_type], {}


async def run(args: argparse.Namespace, settings: Settings) -> int:
    kind, payload = _payload(args)
    if args.timeout is not None and args.timeout <= 0:
        raise CommandError("--timeout must be a positive number of seconds")
    timeout_s = args.timeout if args.timeout is not None else None if kind == "start_recipe" else DEFAULT_TIMEOUT_S
    machine = str(settings.MACHINE_ID)
    async with cloud_for(settings) as cloud:
        row = await cloud.insert(
            "machine_commands",
            {
                "machine_id": machine,
                "type": kind,
                "payload": payload,
                "idempotency_key": f"cli-{uuid.uuid4()}",
                "requested_by": requester(),
            },
        )
        print(f"command {row['id']}: {kind} {json.dumps(payload)} inserted", flush=True)
        if args.no_wait:
            return 0
        follower = _Follower(cloud, int(row["id"]), machine=machine, display=_Display(sys.stdout))
        try:
            async with asyncio.timeout(timeout_s):
                return await follower.follow(kind)
        except TimeoutError:
            follower.display.finish()
            print(f"command {row['id']}: still {follower.status} after {timeout_s:g} s (it goes on: `runs list`)")
            return EXIT_FAILED


def requester() -> str:
    """Who runs the CLI, as the command's `requested_by` (the service role may name the operator)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid (a container), no LOGNAME
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"[:200]


class _Display:
    """Progress lines: redrawn in place on a terminal, else printed when the run moves (throttled)."""

    def __init__(self, out: TextIO) -> None:
        self.out, self.tty = out, out.isatty()
        self._last_text, self._last_at, self._drawn, self._pending = "", 0.0, False, False

    def show(self, text: str, *, moved: bool) -> None:
        now = time.monotonic()
        if self.tty:
            self.out.write("\r\x1b[K" + text)
            self.out.flush()
            self._drawn = True
            return
        self._pending = self._pending or moved  # a move not yet printed is printed when its turn comes
        due = (self._pending and now - self._last_at >= LINE_EVERY_S) or now - self._last_at >= HEARTBEAT_S
        if due or not self._last_text:
            print(text, file=self.out, flush=True)
            self._last_text, self._last_at, self._pending = text, now, False

    def line(self, text: str) -> None:
        self.finish()
        print(text, file=self.out, flush=True)

    def finish(self) -> None:
        if self._drawn:
            self.out.write("\n")
            self._drawn = False


class _Follower:
    def __init__(self, cloud: CloudClient, command_id: int, *, machine: str, display: _Display) -> None:
        self.cloud, self.command_id, self.machine, self.display = cloud, command_id, machine, display
        self.status = "pending"
        self._progress: tuple[Any, ...] | None = None
        self._plan: Plan | None = None
        self._planned_for: str | None = None

    async def follow(self, kind: str) -> int:
        command = await self._until_final()
        if command["status"] != "succeeded" and kind != "start_recipe":
            return EXIT_FAILED
        if kind == "start_recipe":
            runs = await self.cloud.select("process_runs", eq={"command_id": self.command_id})
            if runs:
                self.display.line(summary_line(runs[0], now=datetime.now(UTC)))
            ok = command["status"] == "succeeded" and (not runs or runs[0]["status"] == "succeeded")
            return 0 if ok else EXIT_FAILED
        awaited = AWAITED.get(kind)
        return 0 if awaited is None else await self._until_run(awaited)

    async def _until_final(self) -> dict[str, Any]:
        while True:
            (row,) = await self.cloud.select("machine_commands", eq={"id": self.command_id})
            if row["type"] == "start_recipe":
                runs = await self.cloud.select("process_runs", eq={"command_id": self.command_id})
                if runs:
                    self._show(runs[0])
            if row["status"] != self.status:
                self.status = row["status"]
                error = f": {row['error']}" if row.get("error") else ""
                self.display.line(f"command {self.command_id}: {self.status}{error}")
            if self.status in FINAL:
                return dict(row)
            await asyncio.sleep(POLL_S)

    async def _until_run(self, awaited: str) -> int:
        """After pause/resume was accepted: wait until the machine's run is `awaited` (or has ended)."""
        while True:
            runs = [
                r
                for status in ("running", "paused")
                for r in await self.cloud.select("process_runs", eq={"machine_id": self.machine, "status": status})
            ]
            if not runs:
                self.display.line("no active run any more: it ended before it was " + awaited)
                return EXIT_FAILED
            if runs[0]["status"] == awaited:
                run = runs[0]
                where = f"{run['completed_steps']}/{run['total_steps']} steps"
                self.display.line(f"run {run['id']}: {awaited} ({where})")
                return 0
            await asyncio.sleep(POLL_S)

    def _show(self, run: dict[str, Any]) -> None:
        if self._planned_for != run["id"]:  # compile once per run: its snapshot does not change
            self._plan, self._planned_for = run_plan(run), run["id"]
        progress = (run["status"], run["completed_steps"], json.dumps(run.get("current_step"), sort_keys=True))
        moved, self._progress = progress != self._progress, progress
        if run["status"] in FINAL_RUN_STATUSES:
            return  # the summary line says it
        self.display.show(progress_line(run, now=datetime.now(UTC), plan=self._plan), moved=moved)
