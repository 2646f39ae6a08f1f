"""The PLC watchdog duty: keep `plc.watchdog` moving while this agent owns the machine — and stop when it must not.

The PLC program forces its own safe state (pulse valves closed, MFC 0) when the register stops changing for
its watchdog timeout (docs/CONTRACT.md, "PLC side"). So the kicks are also the agent's way to hand the machine
to the PLC: they stop when the agent is not the owner, and when a close or safe-state write failed
(`WriteGate.safe_state_pending`) — an agent that cannot close a valve must not keep the PLC from closing it.
While the safe state is pending, every period re-applies it; once the PLC confirms it, the kicks resume.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from loguru import logger

from agent.errors import PlcError
from agent.plc import PlcConnection
from agent.safety.gate import WriteGate
from agent.safety.rules import WATCHDOG_KEY

__all__ = ["Watchdog"]

#: Kicks per watchdog timeout: two can be lost (a slow request, a busy loop) before the PLC trips.
KICKS_PER_TIMEOUT = 3
MIN_PERIOD_S = 0.2


class Watchdog:
    """``asyncio.create_task(watchdog.run())``; `kick()` once at take-over, before the first claim."""

    def __init__(
        self, gate: WriteGate, connection: PlcConnection, *, timeout_s: float, owns: Callable[[], bool]
    ) -> None:
        self.gate, self.connection, self.owns = gate, connection, owns
        self.period_s = max(MIN_PERIOD_S, timeout_s / KICKS_PER_TIMEOUT)
        self.counter = 0
        self.kicks = 0

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.period_s)
            await self.tick()

    async def tick(self) -> None:
        """One period: re-apply a pending safe state (no kick until confirmed), else kick if we own the machine."""
        if not self.connection.connected.is_set():
            return
        if self.gate.safe_state_pending:
            if not (await self.gate.apply_safe_state()).ok:
                return  # no kick: the PLC trips and forces its own safe state
            logger.bind(area="plc").info("safe state confirmed at the PLC; watchdog kicks resume")
        if self.owns():
            await self.kick()

    async def kick(self) -> None:
        if self.gate.safe_state_pending or WATCHDOG_KEY not in self.gate.map:
            return
        self.counter = (self.counter + 1) % 65536
        try:
            await self.gate.kick_watchdog(self.counter)
        except PlcError as exc:
            logger.bind(area="plc").debug("watchdog write failed: {}", exc)
        else:
            self.kicks += 1
