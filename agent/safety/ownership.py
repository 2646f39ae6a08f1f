"""Who commands the machine: what happens when this agent becomes the lease holder, and when it stops being one.

Becoming active (`take_over`) settles the machine before the first claim of a command:

1. the PLC is waited for, and the machine claimed at the PLC (agent.safety.fence): while another agent still
   owns it — a holder cut off from Supabase, finishing its run — this one writes nothing and keeps trying;
2. the watchdog is kicked at once (a PLC that tripped while nobody owned it releases its forced safe state only
   when the watchdog moves, so a command claimed before would fail its read-back);
3. what a dead holder left half-done is settled: runs left running are marked interrupted (else a new run would
   collide with them), and commands left `claimed`/`running` end `failed` with what is known — the run was
   interrupted at step N of M; for a write, the value the PLC reads back now;
4. the machine status is refreshed and intake resumes.

Losing the lease does not stop a run (a run rides through a cloud outage, docs/DESIGN.md §5): no new command is
claimed, every record waits in the spool, and the machine stays this agent's until the run ends (the watchdog
duty then releases it, so the next holder takes over without a watchdog trip).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from loguru import logger

from agent.cloud import CloudClient
from agent.errors import CloudError, PlcError
from agent.plc import PlcConnection
from agent.safety.fence import MachineFence
from agent.safety.handover import Handover, HandoverState, Intake
from agent.safety.lease import Lease, LeaseRole
from agent.safety.runs import RunController
from agent.safety.watchdog import Watchdog
from agent.spool import CAUSAL, Spool, SpoolWriter

__all__ = ["Ownership", "run_records_shipped", "wants_machine"]

#: How long a new lease holder waits for the PLC before its first watchdog kick and first claim. A PLC that stays
#: away longer fails the commands for what it is: unreachable.
PLC_SETTLE_S = 5.0
SETTLE_ATTEMPTS = 5


def wants_machine(lease: Lease, runs: RunController, fence: MachineFence) -> bool:
    """Whether this agent should own the machine (claim it, kick its watchdog): it holds the lease; or it runs a
    recipe (a run rides through a cloud outage); or the PLC names it already (it owned it, or it is the same
    agent restarted) and nobody else holds the lease. Supabase being unreachable is no reason to drop the
    machine and its telemetry; a hand-over (`lease.hold` False) or another holder is."""
    if lease.valid() or runs.active is not None:
        return True
    named = fence.owns or (fence.holder is not None and fence.holder == fence.id)
    return named and lease.hold and not lease.held_elsewhere


async def run_records_shipped(spool: Spool, writer: SpoolWriter) -> bool:
    """True when no run, step, machine or command record waits in this agent's spool (or its writer's queue)."""
    if writer.pending(CAUSAL):
        return False
    return not set(await spool.kinds()) & set(CAUSAL)


class Ownership:
    """Reacts to lease role changes (`on_lease_change` is the lease's `on_change`)."""

    def __init__(
        self,
        *,
        machine_id: str,
        cloud: CloudClient,
        spool: Spool,
        writer: SpoolWriter,
        connection: PlcConnection,
        runs: RunController,
        watchdog: Watchdog,
        fence: MachineFence,
        intake: Intake,
        handover: Handover,
        holds_lease: Callable[[], bool],
        in_flight: Callable[[], set[int]] = set,
        on_role: Callable[[LeaseRole], None] = lambda _r: None,
        settle_s: float = PLC_SETTLE_S,
    ) -> None:
        self.machine_id, self.cloud, self.spool, self.writer = machine_id, cloud, spool, writer
        self.connection, self.runs, self.watchdog, self.fence = connection, runs, watchdog, fence
        self.intake, self.handover, self.on_role, self.settle_s = intake, handover, on_role, settle_s
        self.holds_lease, self.in_flight = holds_lease, in_flight
        self.tasks: set[asyncio.Task[None]] = set()
        #: Commands a dead holder left, settled since start.
        self.settled_commands = 0

    def on_lease_change(self, role: LeaseRole) -> None:
        self.on_role(role)  # the dashboard sees the role change now, not at the next heartbeat
        if role is LeaseRole.ACTIVE:
            self.intake.paused = True  # no claim before what the previous holder left is settled
            self._spawn(self.take_over())
        elif self.runs.active is not None:
            logger.warning(
                "lease lost during run {}: no new commands; the run goes on while this agent owns the machine",
                self.runs.active.id,
            )

    async def take_over(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.settle_s):
                await self.connection.connected.wait()
        while not await self.fence.claim():
            if not self.holds_lease():
                return  # lost the lease while another agent kept the machine
            await asyncio.sleep(self.watchdog.period_s)
        await self.watchdog.kick()
        await self.writer.drain()
        for attempt in range(SETTLE_ATTEMPTS):
            try:
                await self._settle_commands(await self._settle_runs())
                break
            except CloudError as exc:
                logger.warning("could not check for interrupted runs (attempt {}): {}", attempt + 1, exc)
                await asyncio.sleep(1 + attempt)
        if self.runs.active is None:
            self.writer.submit("machine", {"id": self.machine_id, "values": {"status": "idle"}})
        if self.handover.state is HandoverState.HOLDING:
            self.intake.paused = False
        self.intake.poke()

    async def _settle_runs(self) -> list[dict[str, Any]]:
        """Supabase's rows first, then the run records still in the local spool (newer: merged after); the runs
        marked interrupted."""
        rows = [
            row
            for row in await self.cloud.select("process_runs", eq={"machine_id": self.machine_id})
            if row.get("status") in ("running", "paused")
        ]
        rows.extend(record.payload for record in await self.spool.peek("run", 10_000))
        return self.runs.mark_interrupted(rows)

    async def _settle_commands(self, interrupted: list[dict[str, Any]]) -> None:
        """Commands a dead holder left `claimed`/`running` end `failed`, saying what is known. The active run's
        command and the commands this process is handling now are ours, not leftovers."""
        ours = set(self.in_flight())
        if self.runs.active is not None and self.runs.active.command_id is not None:
            ours.add(self.runs.active.command_id)
        runs_by_command = {r.get("command_id"): r for r in interrupted if r.get("command_id") is not None}
        for status in ("claimed", "running"):
            for row in await self.cloud.select(
                "machine_commands", eq={"machine_id": self.machine_id, "status": status}
            ):
                if row["id"] in ours:
                    continue
                reason = await self._leftover_reason(row, runs_by_command.get(row["id"]))
                logger.warning("command {}: left {} by a previous agent: {}", row["id"], status, reason)
                self.runs.finish_command(int(row["id"]), "failed", error=reason)
                self.settled_commands += 1

    async def _leftover_reason(self, row: dict[str, Any], run: dict[str, Any] | None) -> str:
        lost = f"the agent handling it stopped (crash or kill) while it was {row.get('status')}"
        kind, payload = row.get("type"), row.get("payload") or {}
        if kind == "start_recipe":
            if run is None:
                run_rows = await self.cloud.select("process_runs", eq={"command_id": row["id"]})
                run = run_rows[0] if run_rows else None
            if run is None:
                return f"{lost}, before its run started"
            done, total = run.get("completed_steps"), run.get("total_steps")
            return f"{lost}: run {run.get('id')} was interrupted at step {done} of {total} and not resumed"
        if kind == "set_parameter" and isinstance(payload, dict) and isinstance(payload.get("key"), str):
            key = payload["key"]
            try:
                now = (await self.runs.device.read([key])).values.get(key)
            except (PlcError, KeyError):
                return f"{lost}; {key} could not be read back (wanted {payload.get('value')!r})"
            return f"{lost}; the PLC reads {key} = {now!r} now (wanted {payload.get('value')!r})"
        return lost

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro, name="take-over")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
