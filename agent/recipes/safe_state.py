"""The machine's safe state, as data: every pulse valve closed, carrier MFC flow 0, heaters untouched. Pure.

A valve with a PLC pulse timer (agent.plc.pulses) first gets its trigger set to 0, which makes the PLC end a
pulse it is timing, and then its coil closed as every valve does: either alone closes the valve.

`safe_state_writes` says which keys take which values for a given map; the safety gate
(`agent.safety.WriteGate.apply_safe_state`) performs them, each in its own try/except so one failure does not
keep the next valve open, and reports a `SafeStateResult`. Heaters are left alone on purpose: cutting a 200 °C
chamber's heater stresses the tool and is not what "safe" means for an interrupted ALD run.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.plc import DataType, RegisterMap, Value, trigger_valve
from agent.recipes.validate import MFC_FLOW_KEY, pulse_valve

__all__ = ["SafeStateResult", "safe_state_writes"]

_FLOW_OFF = 0.0


@dataclass(frozen=True, slots=True)
class SafeStateResult:
    """Which safe-state writes were confirmed and which failed (key: error text)."""

    done: tuple[str, ...]
    errors: tuple[tuple[str, str], ...]

    @property
    def ok(self) -> bool:
        return not self.errors


def safe_state_writes(register_map: RegisterMap) -> tuple[tuple[str, Value], ...]:
    """(key, value) pairs: every writable `valve_N.pulse_trigger` → 0 (by N), every writable bool `valve_N.state`
    → False (by N), then `mfc_1.flow_sp` → 0."""
    valves = sorted(
        (n, p.key)
        for p in register_map
        if (n := pulse_valve(p.key)) is not None and p.writable and p.data_type is DataType.BOOL
    )
    triggers = sorted((n, p.key) for p in register_map if (n := trigger_valve(p.key)) is not None and p.writable)
    writes: list[tuple[str, Value]] = [(key, 0) for _, key in triggers]
    writes += [(key, False) for _, key in valves]
    flow = register_map.get(MFC_FLOW_KEY)
    if flow is not None and flow.writable:
        writes.append((MFC_FLOW_KEY, _FLOW_OFF))
    return tuple(writes)
