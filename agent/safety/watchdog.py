"""The PLC watchdog duty: keep `plc.watchdog` moving while this agent owns the machine — and stop when it must not.

The PLC program forces its own safe state (pulse valves closed, MFC 0) when the register stops changing for
its watchdog timeout (docs/CONTRACT.md §8 "Watchdog"). So the kicks are also the agent's way to hand the machine
to the PLC, and the watchdog is what makes an owner *live* for the machine-side fence (agent.safety.fence):

- every period, an agent that should own the machine (it holds the lease, or it runs a recipe — a run rides
  through a cloud outage) claims or confirms ownership at the PLC, and kicks only while the PLC names it;
- an agent that should not (no lease, no run) releases the machine and stops kicking — once the records of its
  runs and commands have reached Supabase (`may_release`): the next owner settles what it finds there, and must
  not find a run that only looks unfinished because its last records are still in this agent's spool;
- when a close or safe-state write failed (`WriteGate.safe_state_pending`) the kicks stop — an agent that cannot
  close a valve must not keep the PLC from closing it — and each period re-applies the safe state; once the PLC
  confirms it, the kicks resume.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from loguru import logger

from agent.errors import PlcError, ValidationError
from agent.plc import PlcConnection
from agent.safety.fence import MachineFence
from agent.safety.gate import WriteGate
from agent.safety.rules import WATCHDOG_KEY

__all__ = ["Watchdog"]

#: Kicks per watchdog timeout: two can be lost (a slow request, a busy loop) before the PLC trips.
KICKS_PER_TIMEOUT = 3
MIN_PERIOD_S = 0.2
#: The counter runs 1..65535 and never writes 0 (0 is a "safe value" the gate would let anyone write).
_COUNTER_SPAN = 65535


async def _always() -> bool:
    return True


class Watchdog:
    """``asyncio.create_task(watchdog.run())``; `kick()` once at take-over, before the first claim."""

    def __init__(
        self,
        gate: WriteGate,
        connection: PlcConnection,
        fence: MachineFence,
        *,
        timeout_s: float,
        wants: Callable[[], bool],
        on_lost: Callable[[str], None] = lambda _why: None,
        may_release: Callable[[], Awaitable[bool]] = _always,
    ) -> None:
        self.gate, self.connection, self.fence, self.wants = gate, connection, fence, wants
        self.on_lost, self.may_release = on_lost, may_release
        self.period_s = max(MIN_PERIOD_S, timeout_s / KICKS_PER_TIMEOUT)
        self.counter = 0
        self.kicks = 0

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.period_s)
            await self.tick()

    async def tick(self) -> None:
        """One period: ownership, a pending safe state (no kick until confirmed), then the kick."""
        if not self.connection.connected.is_set():
            return
        if not self.wants():
            if self.fence.owns and not await self.may_release():
                await self.kick()  # still the owner until the run's records are in Supabase (see the docstring)
                return
            await self.fence.release()
            await self.fence.observe()  # who owns it now: a standby publishes only while nobody does
            return
        owned = self.fence.owns
        if not (await self.fence.confirm() if owned else await self.fence.claim()):
            if owned:
                self.on_lost("another agent owns the machine now (plc.owner): this agent writes nothing more")
            return
        if self.gate.safe_state_pending:
            if not (await self.gate.apply_safe_state()).ok:
                return  # no kick: the PLC trips and forces its own safe state
            logger.bind(area="plc").info("safe state confirmed at the PLC; watchdog kicks resume")
        await self.kick()

    async def kick(self) -> None:
        if not self.fence.owns or self.gate.safe_state_pending or WATCHDOG_KEY not in self.gate.map:
            return
        if self.kicks == 0:  # a new owner (or this one restarted) must change the value the PLC holds now
            with contextlib.suppress(PlcError):
                current = (await self.gate.device.read([WATCHDOG_KEY])).values.get(WATCHDOG_KEY)
                self.counter = int(current) if isinstance(current, int) else self.counter
        self.counter = self.counter % _COUNTER_SPAN + 1
        try:
            await self.gate.kick_watchdog(self.counter)
        except (PlcError, ValidationError) as exc:  # the PLC, or the gate: no longer the owner
            logger.bind(area="plc").debug("watchdog write failed: {}", exc)
        else:
            self.kicks += 1
