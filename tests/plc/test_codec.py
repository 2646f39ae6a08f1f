"""Codecs: known word vectors in both directions, for every data type and both word orders."""

from __future__ import annotations

import math
import random
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.errors import ValidationError
from agent.plc import DataType, Parameter, RegisterKind, WordOrder, decode_value, encode_value
from agent.plc.codec import make_block_decoder, make_decoder, raw_to_words, words_to_raw

BIG, LITTLE = WordOrder.BIG, WordOrder.LITTLE


def param(
    data_type: DataType, *, register: RegisterKind = RegisterKind.HOLDING, scale: float = 1.0, offset: float = 0.0
) -> Parameter:
    return Parameter("p", "c", data_type, register, 0, scale=scale, offset=offset)


# (data type, word order, registers on the wire, raw value): each case is checked in both directions.
VECTORS = [
    (DataType.INT16, BIG, [0x0000], 0),
    (DataType.INT16, BIG, [0x7FFF], 32767),
    (DataType.INT16, BIG, [0x8000], -32768),
    (DataType.INT16, BIG, [0xFFFF], -1),  # the upstream bug: read as 65535
    (DataType.INT16, LITTLE, [0xFF38], -200),  # one register: word order does not apply
    (DataType.UINT16, BIG, [0xFFFF], 65535),
    (DataType.UINT16, LITTLE, [0x1234], 0x1234),
    (DataType.INT32, BIG, [0x0001, 0x0000], 65536),
    (DataType.INT32, LITTLE, [0x0000, 0x0001], 65536),
    (DataType.INT32, BIG, [0xFFFF, 0xFFFE], -2),
    (DataType.INT32, LITTLE, [0xFFFE, 0xFFFF], -2),
    (DataType.INT32, BIG, [0x8000, 0x0000], -(2**31)),
    (DataType.UINT32, BIG, [0xDEAD, 0xBEEF], 0xDEADBEEF),
    (DataType.UINT32, LITTLE, [0xBEEF, 0xDEAD], 0xDEADBEEF),
    (DataType.UINT32, BIG, [0xFFFF, 0xFFFF], 2**32 - 1),
    (DataType.FLOAT32, BIG, [0x42F6, 0xE979], struct.unpack(">f", bytes.fromhex("42F6E979"))[0]),  # 123.456
    (DataType.FLOAT32, LITTLE, [0xE979, 0x42F6], struct.unpack(">f", bytes.fromhex("42F6E979"))[0]),
    (DataType.FLOAT32, BIG, [0x3F80, 0x0000], 1.0),
    (DataType.FLOAT32, LITTLE, [0x0000, 0x3F80], 1.0),
    (DataType.FLOAT32, BIG, [0xC2C8, 0x0000], -100.0),
    (DataType.FLOAT32, LITTLE, [0x0000, 0x0000], 0.0),
    (DataType.FLOAT32, BIG, [0x4348, 0x0000], 200.0),
    (DataType.BOOL, BIG, [0x0001], 1),
]


@pytest.mark.parametrize(
    ("data_type", "order", "words", "raw"),
    VECTORS,
    ids=[f"{t}-{o}-{'_'.join(f'{w:04x}' for w in ws)}" for t, o, ws, _ in VECTORS],
)
def test_known_vectors_decode(data_type: DataType, order: WordOrder, words: list[int], raw: float) -> None:
    assert words_to_raw(words, data_type, order) == raw


@pytest.mark.parametrize(
    ("data_type", "order", "words", "raw"),
    VECTORS,
    ids=[f"{t}-{o}-{'_'.join(f'{w:04x}' for w in ws)}" for t, o, ws, _ in VECTORS],
)
def test_known_vectors_encode(data_type: DataType, order: WordOrder, words: list[int], raw: float) -> None:
    assert raw_to_words(raw, data_type, order) == words


def test_float32_nan_and_infinity_decode_as_such() -> None:
    assert math.isnan(decode_value(param(DataType.FLOAT32), [0x7FC0, 0x0000], BIG))
    assert decode_value(param(DataType.FLOAT32), [0x0000, 0x7F80], LITTLE) == math.inf


@pytest.mark.parametrize(
    ("data_type", "scale", "offset", "words", "expected"),
    [
        (DataType.UINT16, 0.1, 0.0, [1234], 123.4),
        (DataType.INT16, 0.1, 0.0, [0xFFF6], -1.0),
        (DataType.INT16, 1.0, -40.0, [65], 25.0),
        (DataType.UINT32, 0.01, 0.0, [0x0001, 0x0000], 655.36),
        (DataType.FLOAT32, 2.0, 1.0, [0x3F80, 0x0000], 3.0),
    ],
    ids=["uint16-tenths", "int16-negative-tenths", "offset", "uint32-hundredths", "float-scaled"],
)
def test_scale_and_offset_both_ways(
    data_type: DataType, scale: float, offset: float, words: list[int], expected: float
) -> None:
    p = param(data_type, scale=scale, offset=offset)
    assert decode_value(p, words, BIG) == pytest.approx(expected)
    assert encode_value(p, expected, BIG) == words


def test_unscaled_integers_stay_integers() -> None:
    value = decode_value(param(DataType.INT32), [0xFFFF, 0xFFFF], BIG)
    assert value == -1 and isinstance(value, int)


def test_bools_in_bit_tables_and_in_registers() -> None:
    coil = param(DataType.BOOL, register=RegisterKind.COIL)
    in_register = param(DataType.BOOL, register=RegisterKind.HOLDING)
    assert decode_value(coil, True, BIG) is True
    assert decode_value(in_register, [0x0100], BIG) is True
    assert decode_value(in_register, [0], BIG) is False
    assert encode_value(coil, 1, BIG) is True
    assert encode_value(in_register, True, BIG) == [1]


@pytest.mark.parametrize(
    ("data_type", "value", "fragment"),
    [
        (DataType.INT16, 32768, "outside int16 range"),
        (DataType.INT16, -32769, "outside int16 range"),
        (DataType.UINT16, 65536, "outside uint16 range"),  # 65535 overflow
        (DataType.UINT16, -1, "outside uint16 range"),
        (DataType.UINT32, 2**32, "outside uint32 range"),
        (DataType.INT32, 2**31, "outside int32 range"),
        (DataType.FLOAT32, 1e39, "does not fit a float32"),
        (DataType.FLOAT32, math.nan, "must be finite"),
        (DataType.FLOAT32, math.inf, "must be finite"),
        (DataType.FLOAT32, "12", "expected a number"),
        (DataType.INT16, True, "expected a number"),
        (DataType.BOOL, 2, "expected a boolean"),
        (DataType.BOOL, "yes", "expected a boolean"),
    ],
    ids=lambda v: str(v),
)
def test_unencodable_values_are_refused(data_type: DataType, value: object, fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        encode_value(param(data_type), value, BIG)


def test_integer_encoding_rounds_after_scaling() -> None:
    assert encode_value(param(DataType.UINT16, scale=0.1), 12.34, BIG) == [123]


@given(st.integers(-(2**31), 2**31 - 1), st.sampled_from(list(WordOrder)))
def test_int32_round_trips(value: int, order: WordOrder) -> None:
    p = param(DataType.INT32)
    assert decode_value(p, encode_value(p, value, order), order) == value  # type: ignore[arg-type]


@given(st.floats(width=32, allow_nan=False, allow_infinity=False), st.sampled_from(list(WordOrder)))
def test_float32_round_trips_exactly(value: float, order: WordOrder) -> None:
    p = param(DataType.FLOAT32)
    assert decode_value(p, encode_value(p, value, order), order) == value  # type: ignore[arg-type]


@given(st.integers(0, 2**32 - 1))
def test_word_orders_are_mirror_images(value: int) -> None:
    assert raw_to_words(value, DataType.UINT32, BIG) == raw_to_words(value, DataType.UINT32, LITTLE)[::-1]


@given(
    st.sampled_from([t for t in DataType if t is not DataType.BOOL]),
    st.sampled_from(list(WordOrder)),
    st.lists(st.integers(0, 0xFFFF), min_size=4, max_size=4),
    st.integers(0, 2),
    st.sampled_from([(1.0, 0.0), (0.1, 0.0), (2.5, -40.0)]),
)
def test_compiled_decoders_agree_with_decode_value(
    data_type: DataType, order: WordOrder, words: list[int], offset: int, scaling: tuple[float, float]
) -> None:
    p = param(data_type, scale=scaling[0], offset=scaling[1])
    expected = decode_value(p, words[offset : offset + data_type.words], order)
    assert make_decoder(p, order, offset=offset)(words) == pytest.approx(expected, nan_ok=True)


def test_compiled_decoders_for_bits() -> None:
    coil = param(DataType.BOOL, register=RegisterKind.COIL)
    in_register = param(DataType.BOOL)
    assert make_decoder(coil, BIG, offset=1)([False, True]) is True
    assert make_decoder(in_register, BIG, offset=0)([7]) is True


def _same(a: object, b: object) -> bool:
    """Equal and of the same type (an int must not become a float); NaN equals NaN."""
    if type(a) is not type(b):
        return False
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


@given(
    st.lists(
        st.tuples(
            st.sampled_from(list(DataType)),
            st.integers(0, 3),  # the gap before the parameter, registers
            st.sampled_from([(1.0, 0.0), (0.1, 0.0), (2.5, -40.0)]),
        ),
        min_size=1,
        max_size=30,
    ),
    st.sampled_from(list(WordOrder)),
    st.integers(0, 2),  # registers after the last parameter
    st.randoms(use_true_random=False),
)
def test_a_block_decodes_exactly_as_each_value_would_alone(
    layout: list[tuple[DataType, int, tuple[float, float]]], order: WordOrder, tail: int, rng: random.Random
) -> None:
    start, address, params = 1000, 1000, []
    for i, (data_type, gap, (scale, offset)) in enumerate(layout):
        address += gap
        params.append(Parameter(f"p{i}", "c", data_type, RegisterKind.HOLDING, address, scale=scale, offset=offset))
        address += data_type.words
    count = address - start + tail
    words = [rng.randrange(0x10000) for _ in range(count)]
    decoded = make_block_decoder(params, order, start=start, count=count)(words)
    expected = [
        decode_value(p, words[p.address - start : p.address - start + p.data_type.words], order) for p in params
    ]
    assert all(_same(a, b) for a, b in zip(decoded, expected, strict=True)), (decoded, expected)


def test_a_bit_block_and_a_short_reply() -> None:
    coils = [Parameter(f"c{i}", "c", DataType.BOOL, RegisterKind.COIL, a) for i, a in enumerate([3, 4, 9])]
    assert make_block_decoder(coils, BIG, start=3, count=7)([True, False, 0, 0, 0, 0, 1]) == [True, False, True]
    words = [param(DataType.UINT16), Parameter("q", "c", DataType.INT16, RegisterKind.HOLDING, 1)]
    decode = make_block_decoder(words, LITTLE, start=0, count=4)
    assert decode([7, 0xFFFF, 0, 0]) == [7, -1]
    assert decode([7, 0xFFFF]) == [7, -1]  # fewer registers than asked: value by value, as before


@pytest.mark.parametrize(
    ("addresses", "start", "count", "error"),
    [([2, 1], 0, 4, "ascending"), ([0, 1], 0, 4, "overlaps"), ([5], 6, 4, "ascending"), ([0, 3], 0, 4, "cover")],
    ids=["out-of-order", "overlapping", "before-the-start", "past-the-end"],
)
def test_a_block_that_cannot_be_decoded_is_refused_when_planned(
    addresses: list[int], start: int, count: int, error: str
) -> None:
    params = [Parameter(f"p{a}", "c", DataType.INT32, RegisterKind.HOLDING, a) for a in addresses]
    with pytest.raises(ValueError, match=error):
        make_block_decoder(params, BIG, start=start, count=count)
