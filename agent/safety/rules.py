"""The machine's write rules, as one pure function: what may be written where, by whom. Pure.

`check_write` is the gate's first question for every write (agent.safety.gate). It adds to the register map's
own limits (writable, type, range: `agent.plc.validate_write`) the rules of an ALD tool:

- numbers must be finite and of a sane size (no 1e400, no 5,001-digit integer), and an integer parameter takes
  only whole numbers of its register's steps — 100.5 is refused for an int, never rounded (the CLI agrees);
- a pulse valve (`valve_N.state`) is *opened* only by a valve step, which always closes it again; anyone may
  close one (moving toward the safe state is never refused). A PLC-timed pulse's trigger
  (`valve_N.pulse_trigger`, agent.plc.pulses) counts as opening the valve: only a valve step writes a non-zero
  trigger, and anyone may write 0 (which cancels a pulse); the gate checks the valve's permits for it too;
- the watchdog register is the agent's alone: only the watchdog duty writes it, and it writes nothing else;
  likewise the ownership register (`plc.owner`, the machine-side fence) is written only to claim or release the
  machine.

Interlocks (conditions on live values) are the gate's second question; they live in `interlocks.py`.
"""

from __future__ import annotations

import math
from enum import StrEnum

from agent.errors import ValidationError
from agent.plc import Parameter, WordOrder, is_pulse_trigger, validate_write
from agent.recipes import is_pulse_valve

__all__ = ["MAX_ABS_VALUE", "OWNER_KEY", "WATCHDOG_KEY", "WritePurpose", "check_write", "is_safe_value"]

#: The PLC's watchdog register (written by the agent's watchdog duty only).
WATCHDOG_KEY = "plc.watchdog"
#: The PLC's ownership register: the id of the agent commanding the machine (docs/CONTRACT.md §8 "Ownership").
OWNER_KEY = "plc.owner"
#: Larger magnitudes are refused before any arithmetic: no register of a real tool holds them, and Python's
#: float conversion of a huge integer raises instead of answering.
MAX_ABS_VALUE = 1e15
#: An integer parameter's raw value must be this close to a whole number (scaled registers: 12.3 at 0.1/step).
_INTEGRAL_TOLERANCE = 1e-6


class WritePurpose(StrEnum):
    """Why a write is made: the rules differ by purpose, and the gate logs it with every write."""

    OPERATOR = "operator"  # set_parameter command, `agent plc write`
    RECIPE = "recipe"  # a parameter step, a purge's flow
    VALVE_STEP = "valve_step"  # a valve step opening and closing its own pulse valve
    SAFE_STATE = "safe_state"  # closing valves, MFC flow 0
    WATCHDOG = "watchdog"  # the watchdog duty's counter
    OWNERSHIP = "ownership"  # claiming or releasing the machine at the PLC


def is_safe_value(param: Parameter, value: object) -> bool:
    """A write that moves the output toward its safe state: a bool set False, a number set to 0.

    Such writes are never blocked by a permit interlock (closing a valve must always be possible)."""
    if isinstance(value, bool):
        return value is False
    # 0 written to a coil closes it as surely as False does (check_write counts 1 as opening it)
    return isinstance(value, int | float) and value == 0


def check_write(param: Parameter, value: object, *, purpose: WritePurpose, order: WordOrder) -> list[int] | bool:
    """Check every static rule for writing `value` to `param` for `purpose`; the encoded value if allowed.

    Raises `ValidationError` with the reason (never touching the PLC)."""
    key = param.key
    if (key == WATCHDOG_KEY) != (purpose is WritePurpose.WATCHDOG):
        if purpose is WritePurpose.WATCHDOG:
            raise ValidationError(f"the watchdog duty writes only {WATCHDOG_KEY}, not {key}")
        raise ValidationError(f"{WATCHDOG_KEY} is the agent's watchdog register: no command or recipe may write it")
    if (key == OWNER_KEY) != (purpose is WritePurpose.OWNERSHIP):
        if purpose is WritePurpose.OWNERSHIP:
            raise ValidationError(f"claiming the machine writes only {OWNER_KEY}, not {key}")
        raise ValidationError(f"{OWNER_KEY} is the machine's ownership register: no command or recipe may write it")
    opens = value is True or (isinstance(value, int | float) and value == 1)
    if is_pulse_valve(key) and opens and purpose is not WritePurpose.VALVE_STEP:
        raise ValidationError(
            f"{key} is a pulse valve: only a recipe's valve step opens it (and always closes it again)"
        )
    if is_pulse_trigger(key) and not is_safe_value(param, value) and purpose is not WritePurpose.VALVE_STEP:
        raise ValidationError(
            f"{key} starts a PLC-timed pulse: only a recipe's valve step triggers it (0, which cancels, is allowed)"
        )
    if isinstance(value, int | float) and not isinstance(value, bool):
        _check_number(param, value)
    return validate_write(param, value, order)


def _check_number(param: Parameter, value: int | float) -> None:
    try:
        number = float(value)
    except OverflowError:
        raise ValidationError(f"{param.key}: the number is too large ({int(value).bit_length()} bits)") from None
    if not math.isfinite(number):
        raise ValidationError(f"{param.key}: value must be finite, got {number}")
    if abs(number) > MAX_ABS_VALUE:
        raise ValidationError(f"{param.key}: {number:g} is too large for any register (|value| ≤ {MAX_ABS_VALUE:g})")
    if param.data_type.is_integer:
        raw = (number - param.offset) / param.scale
        if abs(raw - round(raw)) > _INTEGRAL_TOLERANCE * max(1.0, abs(raw)):
            step = f" in steps of {param.scale:g}" if param.scale != 1 else ""
            raise ValidationError(f"{param.key}: {number:g} is not a whole value{step} ({param.data_type})")
