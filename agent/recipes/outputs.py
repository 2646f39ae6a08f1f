"""What a run may do to the PLC's outputs: the one interface the executor and its steps write through.

The safety gate implements it (`agent.safety.RunPort`), bound to the map the run started with, so the rules
(pulse valves only inside a valve step, interlocks, ownership) are checked on every write of a run without the
recipe package knowing them. Reads go to the `PlcDevice` directly: reading never changes the machine.
"""

from __future__ import annotations

from typing import Protocol

from agent.plc import PulseRegisters, RegisterMap, Value
from agent.recipes.safe_state import SafeStateResult

__all__ = ["RunOutputs"]


class RunOutputs(Protocol):
    @property
    def map(self) -> RegisterMap:
        """The register map the run owns (the one it started with)."""
        ...

    async def open_valve(self, key: str) -> None:
        """Open pulse valve `key` (a valve step only; unverified: the hold is timed from the acknowledgement)."""
        ...

    async def close_valve(self, key: str) -> None:
        """Close pulse valve `key`. A failure raises, and hands the machine to the PLC's watchdog."""
        ...

    async def trigger_pulse(self, pulse: PulseRegisters, trigger: int) -> None:
        """Start a PLC-timed pulse: write `trigger` (non-zero, new) to its trigger register (a valve step only; the
        valve's permits apply; unverified: the PLC opens the valve when it takes the write)."""
        ...

    async def cancel_pulse(self, pulse: PulseRegisters) -> None:
        """End a PLC-timed pulse now: trigger 0 and the valve's coil closed (both tried). A failure raises, and
        hands the machine to the PLC's watchdog."""
        ...

    async def set_value(self, key: str, value: Value, *, verify: bool = True) -> Value:
        """A setpoint or switch write; the value read back."""
        ...

    async def safe_state(self) -> SafeStateResult:
        """Every pulse of the run's map (and the current one) cancelled, every valve closed, MFC flow 0; never
        raises for a failed write."""
        ...
