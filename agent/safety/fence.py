"""The machine-side fence: which agent commands the machine is decided at the PLC, not only in the cloud.

A lease in a database cannot stop a holder that is cut off from the database but still reaches the PLC, so the
PLC keeps the last word: its `plc.owner` register holds the id of the agent commanding the machine, and the PLC
accepts a new id only while the machine has no live owner — owner 0, or its watchdog never armed or tripped
(docs/CONTRACT.md §8 "Ownership"; the simulator implements it). An agent writes to the machine only while the
PLC says it is the owner:

- it *claims* the machine (writes its id, reads it back) when it holds the cloud lease or runs a recipe;
- a claim the PLC refused means another agent still kicks the watchdog: this agent writes nothing — not even a
  safe state, which would close the valves of the other agent's run — and tries again next period;
- it *releases* the machine (writes 0) when it neither holds the lease nor runs a recipe, so the next lease holder
  takes over at once instead of waiting for the PLC's watchdog to trip.

The id is derived from the agent's stable identity (host and color), so an agent restarted after a crash is the
same owner and takes its machine back before the PLC watchdog trips. A PLC whose map has no `plc.owner` gets
cloud-only fencing (the lease), as before, and /health says so.
"""

from __future__ import annotations

import zlib

from loguru import logger

from agent.errors import PlcError
from agent.plc import PlcDevice
from agent.safety.gate import WriteGate
from agent.safety.rules import OWNER_KEY, WritePurpose

__all__ = ["MachineFence", "owner_id"]

_NO_OWNER = 0


def owner_id(identity: str) -> int:
    """A stable, non-zero 32-bit id for an agent identity ("host-color")."""
    return zlib.crc32(identity.encode()) or 1


class MachineFence:
    def __init__(self, gate: WriteGate, device: PlcDevice, *, identity: str) -> None:
        self.gate, self.device = gate, device
        self.id = owner_id(identity)
        #: True while the PLC names this agent as the owner (as last read).
        self.owns = False
        #: The owner id last read from the PLC (None: never read).
        self.holder: int | None = None
        self.refusals = 0
        self._log = logger.bind(area="plc")

    @property
    def supported(self) -> bool:
        return OWNER_KEY in self.device.map

    def fenced(self) -> bool:
        """Another agent owns the machine: this one must write nothing at all."""
        return self.supported and self.holder not in (None, _NO_OWNER, self.id)

    async def claim(self) -> bool:
        """Become the machine's owner if the PLC agrees; True when this agent owns it now."""
        if not self.supported:
            self.owns = True
            return True
        current = await self._read()
        if current is None:
            return self.owns
        if current != self.id:
            try:
                await self.gate.write(OWNER_KEY, self.id, purpose=WritePurpose.OWNERSHIP, verify=False)
            except PlcError as exc:
                self._log.warning("machine: claim not written: {}", exc)
                return self.owns
            current = await self._read()
        owned = current == self.id
        if owned and not self.owns:
            self._log.info("machine: this agent owns the machine now (owner id {})", self.id)
        elif not owned:
            self.refusals += 1
            if self.refusals == 1 or self.refusals % 30 == 0:
                self._log.warning("machine: owned by another live agent (owner id {}): writing nothing", current)
        else:
            self.refusals = 0
        self.owns = owned
        return owned

    async def confirm(self) -> bool:
        """Read the owner back (every watchdog period): True while it is still this agent."""
        if not self.supported:
            return self.owns
        current = await self._read()
        if current is not None and current != self.id and self.owns:
            self._log.error("machine: the PLC names another owner ({}): this agent stops writing", current)
            self.owns = False
        return self.owns

    async def observe(self) -> int | None:
        """Read who owns the machine (without claiming it); the owner id, or None if unreadable."""
        return await self._read() if self.supported else None

    def publishes(self) -> bool:
        """One publisher per machine: its owner; while nobody owns it, every agent (no frame is lost for want of
        an owner, e.g. an agent restarted while Supabase is down)."""
        return self.owns or not self.fenced()

    async def release(self) -> None:
        """Give the machine up (no lease and no run): the next holder claims it without a watchdog trip."""
        if not self.owns:
            return
        self.owns = False
        if not self.supported:
            return
        try:
            await self.gate.write(OWNER_KEY, _NO_OWNER, purpose=WritePurpose.OWNERSHIP, verify=False)
        except PlcError as exc:
            self._log.warning("machine: release not written ({}); the PLC watchdog hands it over instead", exc)
        else:
            self.holder = _NO_OWNER
            self._log.info("machine: released")

    async def _read(self) -> int | None:
        try:
            value = (await self.device.read([OWNER_KEY])).values.get(OWNER_KEY)
        except PlcError:
            return None
        if value is None:
            return None
        self.holder = int(value)
        return self.holder
