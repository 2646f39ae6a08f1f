"""The numbers a command or recipe may carry: what a PLC register could hold, refused clearly otherwise."""

from __future__ import annotations

import pytest

from agent.limits import MAX_INTEGER, MIN_INTEGER
from agent.numbers import check_number, is_number


@pytest.mark.parametrize(
    "value",
    [True, 0, -1, MAX_INTEGER, MIN_INTEGER, 1.5, 1e308, -1e308, 5e-324],
    ids=["bool", "zero", "negative", "uint64-max", "int64-min", "float", "near-max", "near-min", "subnormal"],
)
def test_accepted(value: float) -> None:
    assert check_number(value) == value and (is_number(value) or isinstance(value, bool))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("inf"), "must be a finite number, got inf"),
        (float("nan"), "must be a finite number, got nan"),
        (MAX_INTEGER + 1, "must fit in 64 bits (-2**63 … 2**64-1) as every PLC register does, got 1844674407"),
        (MIN_INTEGER - 1, "got -9223372036854775809"),
        (10**5000, "got an integer of about 5,001 digits"),
    ],
    ids=["inf", "nan", "uint64-max-plus-1", "int64-min-minus-1", "5001-digits"],
)
def test_refused_with_a_reason_never_overflow(value: float, message: str) -> None:
    with pytest.raises(ValueError, match="must") as caught:
        check_number(value)
    assert message in str(caught.value)
    assert not is_number(value)


@pytest.mark.parametrize("value", [True, "1", None, [1]], ids=["bool", "text", "none", "list"])
def test_is_number_is_false_for_what_is_not_a_number(value: object) -> None:
    assert not is_number(value)
