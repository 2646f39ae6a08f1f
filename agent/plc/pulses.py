"""PLC-timed pulses: the registers a valve's pulse timer has in the map, and the handshake's values. Pure.

A real ALD tool times its sub-second precursor pulses in PLC logic, so their length does not depend on the host
or the network. A valve whose map row set has all five registers below is *PLC-timed*; without them the agent
times the pulse itself by opening and closing the coil (the fallback). The full contract a PLC program must
implement is in docs/CONTRACT.md §8 "PLC-timed pulses"; in short, for valve N:

| key | table, type | who writes | meaning |
|---|---|---|---|
| `valve_N.pulse_ms` | holding, uint16 | agent | the next pulse's length in ms (the map's range: 1…10000) |
| `valve_N.pulse_trigger` | holding, uint16 | agent | a new non-zero value starts a pulse; 0 cancels one |
| `valve_N.pulse_done` | input, uint16 | PLC | the trigger value of the last pulse that ended (the ack) |
| `valve_N.pulse_status` | input, uint16 | PLC | `PulseStatus` of that pulse (or `RUNNING`) |
| `valve_N.pulse_measured_us` | input, uint32 | PLC | how long the coil was energised the last time, in µs |

Why a trigger *counter* and not a coil edge: a Modbus write repeated after a lost reply (a retry) writes the same
value again, which the PLC ignores; a coil set true twice would need a reset in between and could pulse twice.

Example::

    keys = pulse_registers(1, register_map)      # None: valve 1 is agent-timed
    trigger = next_trigger(current_trigger, last_done)  # 1…65535: never 0, the current trigger or the last ack
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

from agent.plc.registers import DataType, RegisterKind, RegisterMap

__all__ = [
    "MAX_TRIGGER",
    "PULSE_FIELDS",
    "PulseRegisters",
    "PulseStatus",
    "is_pulse_trigger",
    "next_trigger",
    "pulse_registers",
    "trigger_valve",
    "valve_of_trigger",
]

#: The trigger is a uint16 counter: it runs 1…MAX_TRIGGER and wraps to 1 (0 means "cancel").
MAX_TRIGGER = 0xFFFF
#: Field name → (table, data types accepted, written by the agent). Integer types only: they are counts.
PULSE_FIELDS: dict[str, tuple[RegisterKind, frozenset[DataType], bool]] = {
    "pulse_ms": (RegisterKind.HOLDING, frozenset({DataType.UINT16, DataType.UINT32}), True),
    "pulse_trigger": (RegisterKind.HOLDING, frozenset({DataType.UINT16}), True),
    "pulse_done": (RegisterKind.INPUT, frozenset({DataType.UINT16}), False),
    "pulse_status": (RegisterKind.INPUT, frozenset({DataType.UINT16}), False),
    "pulse_measured_us": (RegisterKind.INPUT, frozenset({DataType.UINT32}), False),
}
_TRIGGER = re.compile(r"valve_(\d+)\.pulse_trigger")


class PulseStatus(IntEnum):
    """`valve_N.pulse_status`: what became of the pulse named by `pulse_done` (or that one runs now)."""

    IDLE = 0  # no pulse since power-up
    RUNNING = 1  # a pulse is timing now (its trigger is not yet in `pulse_done`)
    DONE = 2  # it ran its full length and the coil is de-energised
    ABORTED = 3  # cut short: trigger 0, the coil closed by a write, or the watchdog's safe state
    REJECTED = 4  # never started: duration 0 or out of range, or the watchdog had tripped


@dataclass(frozen=True, slots=True)
class PulseRegisters:
    """The keys of one valve's pulse timer (all present in the map, with the right shapes)."""

    valve: int
    duration: str
    trigger: str
    done: str
    status: str
    measured: str

    @property
    def coil(self) -> str:
        """The valve's output coil, which the pulse drives."""
        return f"valve_{self.valve}.state"

    @property
    def feedback(self) -> tuple[str, str, str]:
        """What the PLC reports, in the order a reader wants them: ack, status, measured time."""
        return (self.done, self.status, self.measured)


def pulse_registers(valve: int, register_map: RegisterMap) -> PulseRegisters | None:
    """Valve N's pulse registers, or None when any is missing or has the wrong table/type/writability
    (then the valve is agent-timed: a half-declared timer is no timer)."""
    keys = {name: f"valve_{valve}.{name}" for name in PULSE_FIELDS}
    for name, key in keys.items():
        param = register_map.get(key)
        kind, types, writable = PULSE_FIELDS[name]
        if param is None or param.register is not kind or param.data_type not in types:
            return None
        if writable and not param.writable:
            return None
    return PulseRegisters(
        valve=valve,
        duration=keys["pulse_ms"],
        trigger=keys["pulse_trigger"],
        done=keys["pulse_done"],
        status=keys["pulse_status"],
        measured=keys["pulse_measured_us"],
    )


def trigger_valve(key: str) -> int | None:
    """`valve_N.pulse_trigger` → N; None for any other key."""
    match = _TRIGGER.fullmatch(key)
    return None if match is None else int(match.group(1))


def is_pulse_trigger(key: str) -> bool:
    return trigger_valve(key) is not None


def valve_of_trigger(key: str) -> str | None:
    """`valve_N.pulse_trigger` → `valve_N.state` (the coil it opens); None for any other key."""
    valve = trigger_valve(key)
    return None if valve is None else f"valve_{valve}.state"


def next_trigger(current: int, done: int) -> int:
    """The trigger value that starts the next pulse: never 0, never `current` (the PLC would not see a change),
    never `done` (the last acknowledgement would look like this pulse's: after a cancel, trigger 0 → 1 while
    `pulse_done` still says 1); counts up from `current` and wraps after 65535."""
    trigger = current % MAX_TRIGGER + 1
    return trigger % MAX_TRIGGER + 1 if trigger == done else trigger
