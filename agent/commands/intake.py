"""Command intake: find this machine's pending commands and claim each one exactly once.

Three sources feed one queue: realtime INSERT events (filtered to this machine on the server), a catch-up
query after every (re)subscription — the server only captures changes after "Subscribed to PostgreSQL",
so anything inserted before or during a reconnect is found there — and a poll every
COMMAND_POLL_INTERVAL as the safety net. Duplicates between them are harmless: every candidate goes
through `claim_command`, which is atomic and lease-fenced, so a command runs at most once even with a
second agent racing. Only the lease holder claims; a standby leaves commands pending for the holder.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger

from agent.cloud import CloudClient, Watch
from agent.errors import CloudError
from agent.safety import Lease

__all__ = ["CommandIntake"]

#: Ids already claimed (or found not claimable) by this agent, remembered to skip repeat RPCs.
SEEN_LIMIT = 10_000

Handle = Callable[[dict[str, Any]], Awaitable[None]]


class CommandIntake:
    def __init__(
        self,
        cloud: CloudClient,
        lease: Lease,
        *,
        machine_id: str,
        poll_s: float,
        handle: Handle,
    ) -> None:
        self.cloud, self.lease, self.machine_id, self.poll_s = cloud, lease, machine_id, poll_s
        self.handle = handle
        self.claimed = 0
        self.paused = False  # a hand-over or drain in progress: leave commands for the next holder
        self.watch: Watch | None = None
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self._queued: set[int] = set()
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._poll_now = asyncio.Event()

    async def run(self) -> None:
        """Listen, poll and claim until cancelled."""
        self.watch = await self.cloud.watch(
            Watch(
                "machine_commands",
                f"machine_id=eq.{self.machine_id}",
                self._on_insert,
                self._on_ready,
                events="INSERT",
            )
        )
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._poll(), name="command-poll")
            tasks.create_task(self._claim_loop(), name="command-claim")

    def _on_insert(self, change: dict[str, Any]) -> None:
        record = change.get("record") or {}
        if record.get("status") == "pending" and "id" in record:
            self._offer(int(record["id"]))

    def _on_ready(self) -> None:
        self._poll_now.set()  # catch up on what was inserted while we were not subscribed

    def poke(self) -> None:
        """Poll now (e.g. just became the lease holder)."""
        self._poll_now.set()

    def _offer(self, command_id: int) -> None:
        if command_id in self._seen or command_id in self._queued:
            return
        self._queued.add(command_id)
        self._queue.put_nowait(command_id)

    async def _poll(self) -> None:
        while True:
            if self.lease.valid() and not self.paused:
                await self._find_pending()

            self._poll_now.clear()
            try:
                async with asyncio.timeout(self.poll_s):
                    await self._poll_now.wait()
            except TimeoutError:
                pass

    async def _find_pending(self) -> None:
        try:
            expired = await self.cloud.rpc("expire_commands", {"p_machine_id": self.machine_id})
            if expired:
                logger.info("commands: {} pending command(s) expired unrun", expired)
            rows = await self.cloud.select(
                "machine_commands",
                columns="id",
                eq={"machine_id": self.machine_id, "status": "pending"},
                order="id",
                limit=100,
            )
        except CloudError as exc:
            logger.debug("commands: poll failed: {}", exc)
            return
        for row in rows:
            self._offer(int(row["id"]))

    async def _claim_loop(self) -> None:
        while True:
            command_id = await self._queue.get()
            self._queued.discard(command_id)
            if self.paused or not self.lease.valid() or self.lease.token is None:
                continue  # standby: the holder (or we, once active) will find it by polling
            try:
                rows = await self.cloud.rpc(
                    "claim_command",
                    {
                        "p_command_id": command_id,
                        "p_machine_id": self.machine_id,
                        "p_holder": self.lease.holder,
                        "p_token": self.lease.token,
                    },
                )
            except CloudError as exc:
                logger.warning("commands: claim of {} failed ({}); will retry on the next poll", command_id, exc)
                continue
            self._remember(command_id)
            if not rows:
                continue  # someone else has it, it expired, or it is no longer pending
            self.claimed += 1
            row = rows[0] if isinstance(rows, list) else rows
            started = time.monotonic()
            try:
                await self.handle(row)
            except Exception:  # a handler bug must not stop the intake; the row says what happened
                logger.exception("commands: handling command {} failed", command_id)
            logger.debug("commands: {} handled in {:.1f} ms", command_id, (time.monotonic() - started) * 1000)

    def _remember(self, command_id: int) -> None:
        self._seen[command_id] = None
        while len(self._seen) > SEEN_LIMIT:
            self._seen.popitem(last=False)
