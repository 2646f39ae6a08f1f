"""The read planner: fewest requests, within protocol limits, every parameter covered exactly once."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.plc import DataType, Parameter, RegisterKind, load_default_map, plan_reads
from agent.plc.protocol import MAX_READ_BITS, MAX_READ_REGISTERS

H, IR, C, D = RegisterKind.HOLDING, RegisterKind.INPUT, RegisterKind.COIL, RegisterKind.DISCRETE_INPUT


def p(key: str, kind: RegisterKind, address: int, data_type: DataType = DataType.UINT16) -> Parameter:
    if kind.is_bit:
        data_type = DataType.BOOL
    return Parameter(key, "c", data_type, kind, address)


def spans(params: list[Parameter], **kw: int) -> list[tuple[str, int, int]]:
    return [(b.kind.value, b.start, b.count) for b in plan_reads(params, **kw)]


@pytest.mark.parametrize(
    ("params", "kw", "expected"),
    [
        ([], {}, []),
        ([p("a", H, 100)], {}, [("holding", 100, 1)]),
        ([p("a", H, 100, DataType.FLOAT32)], {}, [("holding", 100, 2)]),
        ([p("a", H, 100), p("b", H, 101)], {"max_gap": 0}, [("holding", 100, 2)]),
        ([p("a", H, 100), p("b", H, 102)], {"max_gap": 0}, [("holding", 100, 1), ("holding", 102, 1)]),
        ([p("a", H, 100), p("b", H, 102)], {"max_gap": 1}, [("holding", 100, 3)]),
        (
            [p("a", H, 100, DataType.FLOAT32), p("b", H, 103), p("c", H, 110, DataType.FLOAT32)],
            {"max_gap": 2},
            [("holding", 100, 4), ("holding", 110, 2)],
        ),
        ([p("b", H, 200), p("a", H, 100)], {"max_gap": 200}, [("holding", 100, 101)]),
        ([p("a", H, 0), p("b", H, 124)], {"max_gap": 200}, [("holding", 0, 125)]),
        ([p("a", H, 0), p("b", H, 125)], {"max_gap": 200}, [("holding", 0, 1), ("holding", 125, 1)]),
        ([p("a", H, 0), p("b", H, 123, DataType.FLOAT32)], {"max_gap": 200}, [("holding", 0, 125)]),
        ([p("a", H, 0), p("b", H, 124, DataType.FLOAT32)], {"max_gap": 200}, [("holding", 0, 1), ("holding", 124, 2)]),
        ([p("a", H, 0), p("b", H, 9)], {"max_gap": 200, "max_registers": 10}, [("holding", 0, 10)]),
        ([p("a", H, 0), p("b", H, 10)], {"max_gap": 200, "max_registers": 10}, [("holding", 0, 1), ("holding", 10, 1)]),
        ([p("a", C, 0), p("b", C, 1999)], {"max_gap": 2000}, [("coil", 0, 2000)]),
        ([p("a", C, 0), p("b", C, 2000)], {"max_gap": 2000}, [("coil", 0, 1), ("coil", 2000, 1)]),
        (
            [p("a", H, 100), p("b", IR, 100), p("c", C, 100), p("d", D, 100)],
            {},
            [("coil", 100, 1), ("discrete_input", 100, 1), ("holding", 100, 1), ("input", 100, 1)],
        ),
        ([p("a", H, 65534, DataType.FLOAT32)], {}, [("holding", 65534, 2)]),
    ],
    ids=[
        "empty",
        "single",
        "float32-two-registers",
        "adjacent-merge",
        "gap-over-limit-splits",
        "gap-at-limit-merges",
        "worked-example",
        "unsorted-input",
        "exactly-125",
        "126-splits",
        "float-ending-at-125",
        "float-crossing-125",
        "bulk-read-size",
        "bulk-read-size-splits",
        "exactly-2000-coils",
        "2001-coils-split",
        "tables-never-mix",
        "top-of-address-space",
    ],
)
def test_plan(params: list[Parameter], kw: dict[str, int], expected: list[tuple[str, int, int]]) -> None:
    assert spans(params, **kw) == expected


def test_blocks_name_their_parameters_in_address_order() -> None:
    (block,) = plan_reads([p("b", H, 3), p("a", H, 1)])
    assert [q.key for q in block.parameters] == ["a", "b"]
    assert str(block) == "holding 1+3"


@pytest.mark.parametrize("kw", [{"max_gap": -1}, {"max_registers": 0}, {"max_registers": 126}, {"max_bits": 2001}])
def test_limits_beyond_the_protocol_are_refused(kw: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        plan_reads([], **kw)


def test_default_map_reads_in_ten_requests() -> None:
    assert len(plan_reads(load_default_map(), max_gap=16)) == 10


def test_planner_does_not_mutate_its_input() -> None:
    params = [p("b", H, 3), p("a", H, 1)]
    plan_reads(params)
    assert [q.key for q in params] == ["b", "a"]


@st.composite
def maps(draw: st.DrawFn) -> list[Parameter]:
    """Non-overlapping parameters per table, as a validated map would hold."""
    params: list[Parameter] = []
    for kind in RegisterKind:
        address = draw(st.integers(0, 300))
        for i in range(draw(st.integers(0, 40))):
            data_type = DataType.BOOL if kind.is_bit else draw(st.sampled_from([DataType.UINT16, DataType.FLOAT32]))
            params.append(Parameter(f"{kind}.{i}", "c", data_type, kind, address))
            address += (1 if kind.is_bit or data_type.words == 1 else 2) + draw(st.integers(0, 40))
            if address > 65000:
                break
    return params


def test_a_value_wider_than_the_request_size_is_refused_not_split() -> None:
    with pytest.raises(ValueError, match=r"a read of 1 cannot hold f \(float32, 2 registers\)"):
        plan_reads([p("f", H, 0, DataType.FLOAT32)], max_registers=1)


@settings(max_examples=300, deadline=None)
@given(maps(), st.integers(0, 150), st.integers(2, MAX_READ_REGISTERS), st.integers(1, MAX_READ_BITS))
def test_plan_invariants(params: list[Parameter], max_gap: int, max_registers: int, max_bits: int) -> None:
    blocks = plan_reads(params, max_gap=max_gap, max_registers=max_registers, max_bits=max_bits)
    covered = [q.key for b in blocks for q in b.parameters]
    assert sorted(covered) == sorted(q.key for q in params)  # every parameter exactly once
    for b in blocks:
        assert b.count <= (max_bits if b.kind.is_bit else max_registers)
        assert all(q.register is b.kind and b.start <= q.address and q.end <= b.end for q in b.parameters)
        assert b.start == b.parameters[0].address and b.end == max(q.end for q in b.parameters)
        for left, right in zip(b.parameters, b.parameters[1:], strict=False):
            assert right.address - left.end <= max_gap  # no gap inside a block exceeds max_gap
    for left, right in itertools.pairwise(blocks):
        if left.kind is right.kind:  # consecutive blocks are split for a reason
            assert right.start - left.end > max_gap or right.end - left.start > (
                max_bits if left.kind.is_bit else max_registers
            )
