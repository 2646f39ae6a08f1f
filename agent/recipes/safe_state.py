"""The machine's safe state: every pulse valve closed, carrier MFC flow 0, heaters untouched.

`safe_state_writes` is pure (which keys, which values, for a given map); `apply_safe_state` performs them
through `PlcDevice.write` (validated, read back), each in its own try/except so one failure does not keep
the next valve open. The executor calls it in its `finally`; the app calls it again after a PLC reconnect
when a run ended with `safe_state_ok` False. Heaters are left alone on purpose: cutting a 200 °C chamber's
heater stresses the tool and is not what "safe" means for an interrupted ALD run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from loguru import logger

from agent.plc import DataType, PlcDevice, RegisterMap, Value
from agent.recipes.validate import MFC_FLOW_KEY

__all__ = ["SafeStateResult", "apply_safe_state", "safe_state_writes"]

_VALVE_KEY = re.compile(r"valve_(\d+)\.state")
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
    """(key, value) pairs: every writable bool `valve_N.state` → False (by N), then `mfc_1.flow_sp` → 0."""
    valves = sorted(
        (int(m.group(1)), p.key)
        for p in register_map
        if (m := _VALVE_KEY.fullmatch(p.key)) and p.writable and p.data_type is DataType.BOOL
    )
    writes: list[tuple[str, Value]] = [(key, False) for _, key in valves]
    flow = register_map.get(MFC_FLOW_KEY)
    if flow is not None and flow.writable:
        writes.append((MFC_FLOW_KEY, _FLOW_OFF))
    return tuple(writes)


async def apply_safe_state(device: PlcDevice, register_map: RegisterMap | None = None) -> SafeStateResult:
    """Write the safe state through `device` (map: `register_map`, default the device's). Never raises for
    a failed write — it is logged and reported — but `CancelledError` propagates."""
    log = logger.bind(area="recipe")
    done: list[str] = []
    errors: list[tuple[str, str]] = []
    for key, value in safe_state_writes(register_map or device.map):
        try:
            await device.write(key, value)
        except Exception as exc:  # CancelledError is not an Exception: it propagates
            errors.append((key, str(exc)))
            log.error("safe state: {} ← {} failed: {}", key, value, exc)
        else:
            done.append(key)
    if errors:
        log.error("safe state NOT confirmed: {} of {} writes failed", len(errors), len(errors) + len(done))
    else:
        log.info("safe state confirmed: {}", ", ".join(done))
    return SafeStateResult(tuple(done), tuple(errors))
