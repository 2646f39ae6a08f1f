"""Quoting input in errors: clipped to a bound with the count of what was left out, never whole, never raising."""

from __future__ import annotations

import pytest

from agent.limits import MAX_ERROR_CHARS, MAX_QUOTE_CHARS
from agent.quoting import clip, quote


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("abc", 10, "abc"),
        ("x" * 10, 10, "x" * 10),
        ("x" * 1_000, 40, "x" * 15 + "… (985 more characters)"),
        ("x" * 11, 10, "… (11 more characters)"),
    ],
    ids=["short", "exactly-the-limit", "long", "limit-below-the-marker"],
)
def test_clip(text: str, limit: int, expected: str) -> None:
    assert clip(text, limit) == expected


@pytest.mark.parametrize("length", [MAX_ERROR_CHARS + 1, 100_000, 10_000_000], ids=["one-over", "1e5", "1e7"])
def test_a_clipped_text_fits_its_limit_and_says_how_much_is_missing(length: int) -> None:
    clipped = clip("y" * length, MAX_ERROR_CHARS)
    assert len(clipped) <= MAX_ERROR_CHARS
    kept = clipped.index("…")
    assert clipped.endswith(f"… ({length - kept:,} more characters)")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("name", "'name'"),
        (1.5, "1.5"),
        (float("inf"), "inf"),
        (2**64, "18446744073709551616"),
        (10**5000, "an integer of about 5,001 digits"),
        (-(10**400), "a negative integer of about 401 digits"),
        ([10**5000], "a list"),
    ],
    ids=["text", "float", "inf", "big-int", "5001-digits", "negative-401-digits", "unprintable-inside"],
)
def test_quote(value: object, expected: str) -> None:
    assert quote(value) == expected


def test_a_long_input_is_quoted_clipped() -> None:
    quoted = quote("x" * 100_000)
    assert len(quoted) <= MAX_QUOTE_CHARS and quoted.startswith("'xxx") and quoted.endswith(" more characters)")
