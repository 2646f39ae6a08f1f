"""What the register map itself allows a write to be: writable, type, range. Pure.

This is the map's part of the rules only. The machine's rules (whole numbers, pulse valves, the watchdog and
ownership registers, interlocks, ownership) are the safety gate's (`agent.safety.WriteGate`), which every write
of the agent passes and which calls `validate_write` as its first check; recipe validation calls it too, so a
recipe that validates cannot be refused mid-run for range or type.
"""

from __future__ import annotations

import math

from agent.errors import ValidationError
from agent.plc.codec import Value, encode_value
from agent.plc.protocol import WordOrder
from agent.plc.registers import DataType, Parameter

__all__ = ["parse_value", "validate_write"]

_TRUE = {"true", "1", "on", "open", "yes"}
_FALSE = {"false", "0", "off", "closed", "close", "no"}


def validate_write(param: Parameter, value: object, order: WordOrder) -> list[int] | bool:
    """Check that `value` may be written to `param` and encode it.

    Raises `ValidationError` (never touching the PLC) when the parameter is read-only, the value has the
    wrong type or is not finite, lies outside [min_value, max_value], or does not fit the data type.
    """
    if not param.writable or param.write_address is None:
        raise ValidationError(f"{param.key} is read-only")
    if param.data_type is not DataType.BOOL and isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValidationError(f"{param.key}: value must be finite, got {value}")
        unit = f" {param.unit}" if param.unit else ""
        if param.min_value is not None and value < param.min_value:
            raise ValidationError(f"{param.key}: {value} is below the minimum {param.min_value:g}{unit}")
        if param.max_value is not None and value > param.max_value:
            raise ValidationError(f"{param.key}: {value} is above the maximum {param.max_value:g}{unit}")
    return encode_value(param, value, order)


def parse_value(param: Parameter, text: str) -> Value:
    """Text typed by an operator → a typed value for `param` (bool words, integers, floats)."""
    raw = text.strip().lower()
    if param.data_type is DataType.BOOL:
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        raise ValidationError(f"{param.key}: expected true/false, on/off or 1/0, got {text!r}")
    try:
        if param.data_type.is_integer and param.scale == 1 and param.offset == 0:
            return int(raw, 0)
        return float(raw)
    except ValueError:
        raise ValidationError(f"{param.key}: expected a number, got {text!r}") from None
