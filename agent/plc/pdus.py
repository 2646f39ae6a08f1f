"""The read responses (FC1–FC4) decoded in one step each, registered on the agent's pymodbus client.

Why: a full read of a 500-parameter map is 16 responses of up to 125 registers or 2,000 bits, and pymodbus 3.16
decodes them one `struct.unpack` (or one bit test) per address in Python, then builds the response's whole
`str()` (every register) for a debug line even when debug logging is off (`DecodePDU.decode`). That was ~0.45 ms
of the agent's CPU per full read on the read path. These subclasses keep pymodbus' framing, checks and types (the
client still returns the same response classes' subtypes, with `.registers` and `.bits` lists) and change only
how the bytes become values: one `struct.unpack` per register block, a table lookup per byte of bits, and a
`str()` whose cost does not grow with the block.

pymodbus' documented way to bring one's own PDU classes is `client.register(cls)`; `register_fast_reads` does
that for the four read function codes.
"""

from __future__ import annotations

import struct
from functools import cache
from itertools import chain
from typing import Protocol

from pymodbus.exceptions import ModbusIOException
from pymodbus.pdu import ModbusPDU
from pymodbus.pdu.bit_message import ReadCoilsResponse, ReadDiscreteInputsResponse
from pymodbus.pdu.register_message import ReadHoldingRegistersResponse, ReadInputRegistersResponse

__all__ = ["FAST_READ_RESPONSES", "register_fast_reads"]

#: Each byte value → its 8 bits, least significant first (Modbus packs coil n+0 into bit 0).
_BITS: tuple[tuple[bool, ...], ...] = tuple(tuple(bool(b >> i & 1) for i in range(8)) for b in range(256))


@cache
def _words(count: int) -> struct.Struct:
    return struct.Struct(f">{count}H")


class _OneStepRegisters(ModbusPDU):
    """FC3/FC4 response body: the register block in one unpack."""

    def decode(self, data: bytes) -> None:
        byte_count = data[0]
        if byte_count >= len(data) or byte_count % 2:
            raise ModbusIOException(
                f"byte_count {byte_count} does not fit a register response of {len(data)} bytes",
                function_code=self.function_code,
            )
        self.registers = list(_words(byte_count // 2).unpack_from(data, 1))

    def __str__(self) -> str:
        return _summary(self)


class _OneStepBits(ModbusPDU):
    """FC1/FC2 response body: 8 bits per table lookup."""

    def decode(self, data: bytes) -> None:
        self.bits = list(chain.from_iterable(_BITS[b] for b in data[1:]))

    def __str__(self) -> str:
        return _summary(self)


def _summary(pdu: ModbusPDU) -> str:
    return (
        f"{type(pdu).__name__}(dev_id={pdu.dev_id}, transaction_id={pdu.transaction_id}, "
        f"registers={len(pdu.registers)}, bits={len(pdu.bits)})"
    )


class FastReadHoldingRegistersResponse(_OneStepRegisters, ReadHoldingRegistersResponse):
    """FC3 response."""


class FastReadInputRegistersResponse(_OneStepRegisters, ReadInputRegistersResponse):
    """FC4 response."""


class FastReadCoilsResponse(_OneStepBits, ReadCoilsResponse):
    """FC1 response."""


class FastReadDiscreteInputsResponse(_OneStepBits, ReadDiscreteInputsResponse):
    """FC2 response."""


FAST_READ_RESPONSES: tuple[type[ModbusPDU], ...] = (
    FastReadCoilsResponse,
    FastReadDiscreteInputsResponse,
    FastReadHoldingRegistersResponse,
    FastReadInputRegistersResponse,
)


class _Registers(Protocol):
    def register(self, custom_response_class: type[ModbusPDU]) -> None: ...


def register_fast_reads(client: _Registers) -> None:
    """Decode FC1–FC4 responses of `client` (a pymodbus client) with the classes above."""
    for cls in FAST_READ_RESPONSES:
        client.register(cls)
