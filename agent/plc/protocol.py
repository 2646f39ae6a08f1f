"""Modbus protocol limits and conventions, named once (Modbus Application Protocol v1.1b3 §6)."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "MAX_CONNECTIONS",
    "MAX_READ_BITS",
    "MAX_READ_REGISTERS",
    "MAX_WRITE_BITS",
    "MAX_WRITE_REGISTERS",
    "ExceptionCode",
    "WordOrder",
]

MAX_READ_REGISTERS = 125  # FC3 / FC4
MAX_READ_BITS = 2000  # FC1 / FC2
MAX_WRITE_REGISTERS = 123  # FC16
MAX_WRITE_BITS = 1968  # FC15
#: Most TCP connections the agent opens to one unit: PLCs limit their Modbus TCP connections, often to 4-16 in
#: all, and the engineering station and HMI need theirs (not a protocol limit: ours).
MAX_CONNECTIONS = 8


class WordOrder(StrEnum):
    """Order of the 16-bit words of a 32-bit value. `little` = low word first (the reference PLC)."""

    BIG = "big"
    LITTLE = "little"


class ExceptionCode:
    """The Modbus exception codes the agent and the simulator use by name."""

    ILLEGAL_FUNCTION = 1
    ILLEGAL_ADDRESS = 2
    ILLEGAL_VALUE = 3
    DEVICE_FAILURE = 4
    DEVICE_BUSY = 6
