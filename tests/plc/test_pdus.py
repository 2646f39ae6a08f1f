"""The one-step read responses: the same values as pymodbus' own decoders, used by the connection's client."""

from __future__ import annotations

import random

import pytest
from pymodbus.exceptions import ModbusIOException
from pymodbus.pdu import ModbusPDU
from pymodbus.pdu.bit_message import ReadCoilsResponse, ReadDiscreteInputsResponse
from pymodbus.pdu.register_message import ReadHoldingRegistersResponse, ReadInputRegistersResponse

from agent.plc import PlcConnection, RegisterKind
from agent.plc.pdus import (
    FAST_READ_RESPONSES,
    FastReadCoilsResponse,
    FastReadDiscreteInputsResponse,
    FastReadHoldingRegistersResponse,
    FastReadInputRegistersResponse,
)
from agent.plc.sim import Simulator

REGISTER_PAIRS = [
    (FastReadHoldingRegistersResponse, ReadHoldingRegistersResponse),
    (FastReadInputRegistersResponse, ReadInputRegistersResponse),
]
BIT_PAIRS = [(FastReadCoilsResponse, ReadCoilsResponse), (FastReadDiscreteInputsResponse, ReadDiscreteInputsResponse)]


@pytest.mark.parametrize(("fast", "stock"), REGISTER_PAIRS, ids=["FC3", "FC4"])
@pytest.mark.parametrize("count", [1, 2, 63, 125])
def test_a_register_block_decodes_as_pymodbus_decodes_it(
    fast: type[ModbusPDU], stock: type[ModbusPDU], count: int
) -> None:
    words = [random.Random(count).randrange(65536) for _ in range(count)]
    wire = stock(registers=words).encode()
    ours, theirs = fast(), stock()
    ours.decode(wire)
    theirs.decode(wire)
    assert ours.registers == theirs.registers == words
    assert isinstance(ours.registers, list)
    assert fast.function_code == stock.function_code


@pytest.mark.parametrize(("fast", "stock"), BIT_PAIRS, ids=["FC1", "FC2"])
@pytest.mark.parametrize("count", [1, 7, 8, 9, 339, 2000])
def test_a_bit_block_decodes_as_pymodbus_decodes_it(fast: type[ModbusPDU], stock: type[ModbusPDU], count: int) -> None:
    rng = random.Random(count)
    bits = [rng.random() < 0.5 for _ in range(count)]
    wire = stock(bits=bits).encode()
    ours, theirs = fast(), stock()
    ours.decode(wire)
    theirs.decode(wire)
    assert ours.bits == theirs.bits
    assert ours.bits[:count] == bits  # padded to whole bytes, as pymodbus does: the caller slices


@pytest.mark.parametrize(
    "wire",
    [bytes([10, 0, 1]), bytes([3, 0, 1, 2, 3]), bytes([200])],
    ids=["byte-count-past-the-data", "odd-byte-count", "nothing-after-the-count"],
)
@pytest.mark.parametrize("fast", [FastReadHoldingRegistersResponse, FastReadInputRegistersResponse], ids=["FC3", "FC4"])
def test_a_malformed_register_response_is_an_io_error_not_a_wrong_value(fast: type[ModbusPDU], wire: bytes) -> None:
    with pytest.raises(ModbusIOException, match="byte_count"):
        fast().decode(wire)


@pytest.mark.parametrize("fast", FAST_READ_RESPONSES, ids=lambda c: c.__name__)
def test_the_debug_text_does_not_grow_with_the_block(fast: type[ModbusPDU]) -> None:
    small, big = fast(registers=[1], bits=[True]), fast(registers=[1] * 125, bits=[True] * 2000)
    assert len(str(big)) - len(str(small)) <= 6  # only the counts' digits differ
    assert fast.__name__ in str(big) and "registers=125" in str(big)


async def test_the_connection_decodes_its_reads_with_them(
    simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    used: list[str] = []
    for cls in FAST_READ_RESPONSES:
        original = cls.decode

        def spy(self: ModbusPDU, data: bytes, _original=original) -> None:  # type: ignore[no-untyped-def]
            used.append(type(self).__name__)
            _original(self, data)

        monkeypatch.setattr(cls, "decode", spy)
    async with PlcConnection(host=simulator.host, port=simulator.port) as conn:
        assert await conn.wait_connected(3)
        for kind in RegisterKind:
            await conn.read(kind, 0, 4)
    assert sorted(used) == sorted(cls.__name__ for cls in FAST_READ_RESPONSES)
