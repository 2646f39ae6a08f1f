"""Which numbers a user may send as a value: one rule for command payloads and recipe parameter values.

JSON numbers arrive as Python `int` of any size or as `float` (`1e400` parses to `inf`; PostgreSQL's jsonb
keeps `1e400` exact and hands it back as a 401-digit integer). Neither fits any PLC register, and both used
to reach the write path, where the float conversion raised `OverflowError` and left the command `claimed`.
`check_number` refuses them when the command or recipe is read, with a sentence an engineer can act on.
"""

from __future__ import annotations

import math
from typing import TypeGuard

from agent.limits import MAX_INTEGER, MIN_INTEGER
from agent.quoting import quote

__all__ = ["check_number", "is_number"]


def check_number(value: bool | float) -> bool | int | float:
    """`value` if a register could hold it: a bool, an integer within the 64-bit range (int64 … uint64) or a
    finite float. Raises `ValueError` otherwise (pydantic reports it as the field's error), never
    `OverflowError`. Range and type for a particular parameter are the write path's rules, not this one's.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not MIN_INTEGER <= value <= MAX_INTEGER:
            raise ValueError(f"must fit in 64 bits (-2**63 … 2**64-1) as every PLC register does, got {quote(value)}")
        return value
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {quote(value)}")
    return value


def is_number(value: object) -> TypeGuard[int | float]:
    """Whether `value` is a number (not a bool) that `check_number` accepts."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        check_number(value)
    except ValueError:
        return False
    return True
