"""Who commands the machine: what happens when this agent becomes the lease holder, and when it stops being one.

Becoming active (`take_over`) settles the machine before the first claim: the PLC is waited for and its
watchdog kicked at once (a PLC that tripped while nobody held the lease releases its forced safe state only when
the watchdog moves, so a command claimed before would fail its read-back), runs a previous holder left running
are marked interrupted (else a new run would collide with them), and the machine status is refreshed. Losing the
lease with a run going stops it into its safe state: another agent may now command this machine.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from loguru import logger

from agent.cloud import CloudClient
from agent.errors import CloudError
from agent.plc import PlcConnection
from agent.safety.handover import Handover, HandoverState, Intake
from agent.safety.lease import LeaseRole
from agent.safety.runs import RunController
from agent.safety.watchdog import Watchdog
from agent.spool import Spool, SpoolWriter

__all__ = ["Ownership"]

#: How long a new lease holder waits for the PLC before its first watchdog kick and first claim. A PLC that stays
#: away longer fails the commands for what it is: unreachable.
PLC_SETTLE_S = 5.0
SETTLE_ATTEMPTS = 5


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
        intake: Intake,
        handover: Handover,
        on_role: Callable[[LeaseRole], None] = lambda _r: None,
        settle_s: float = PLC_SETTLE_S,
    ) -> None:
        self.machine_id, self.cloud, self.spool, self.writer = machine_id, cloud, spool, writer
        self.connection, self.runs, self.watchdog = connection, runs, watchdog
        self.intake, self.handover, self.on_role, self.settle_s = intake, handover, on_role, settle_s
        self.tasks: set[asyncio.Task[None]] = set()

    def on_lease_change(self, role: LeaseRole) -> None:
        self.on_role(role)  # the dashboard sees the role change now, not at the next heartbeat
        if role is LeaseRole.ACTIVE:
            self.intake.paused = True  # no claim before what the previous holder left is settled
            self._spawn(self.take_over())
        elif self.runs.active is not None:
            logger.error("lease lost during run {}: stopping it", self.runs.active.id)
            self.runs.stop("the agent lost its lease (Supabase unreachable or taken over)")

    async def take_over(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.settle_s):
                await self.connection.connected.wait()
        await self.watchdog.kick()
        await self.writer.drain()
        for attempt in range(SETTLE_ATTEMPTS):
            try:
                await self._settle_runs()
                break
            except CloudError as exc:
                logger.warning("could not check for interrupted runs (attempt {}): {}", attempt + 1, exc)
                await asyncio.sleep(1 + attempt)
        if self.runs.active is None:
            self.writer.submit("machine", {"id": self.machine_id, "values": {"status": "idle"}})
        if self.handover.state is HandoverState.HOLDING:
            self.intake.paused = False
        self.intake.poke()

    async def _settle_runs(self) -> None:
        """Supabase's rows first, then the run records still in the local spool (newer: merged after)."""
        rows = [
            row
            for row in await self.cloud.select("process_runs", eq={"machine_id": self.machine_id})
            if row.get("status") in ("running", "paused")
        ]
        rows.extend(record.payload for record in await self.spool.peek("run", 10_000))
        self.runs.mark_interrupted(rows)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro, name="take-over")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
