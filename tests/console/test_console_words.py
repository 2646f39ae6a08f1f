"""How the console says things (pure): numbers, durations, component names."""

from __future__ import annotations

import pytest

from agent.console import component_title, duration_text, number_text


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (200.0, "200"), (199.5, "199.5"), (19.96, "19.96"), (1.5, "1.5"), (0.5, "0.5"), (0.00123, "0.00123"),
     (1234.4, "1,234"), (100000, "100,000"), (-12.25, "-12.25"), (float("nan"), "—"), (float("inf"), "—")],
    ids=["zero", "whole-float", "one-decimal", "two-decimals", "trailing-zero-dropped", "below-one", "tiny",
         "thousands", "big-int", "negative", "nan", "inf"],
)  # fmt: skip
def test_number_text(value: float, text: str) -> None:
    assert number_text(value) == text


@pytest.mark.parametrize(
    ("ms", "text"),
    [(20, "20 ms"), (62.66, "62.7 ms"), (150.04, "150.0 ms"), (999, "999 ms"), (1000, "1 s"), (3000, "3 s"),
     (1500, "1.5 s"), (60_000, "1 min"),
     (90_000, "1 min 30 s"), (3_600_000, "1 h"), (5_400_000, "1 h 30 min")],
    ids=["pulse", "measured-pulse", "measured-purge", "just-under-a-second", "one-second", "purge", "fractional",
         "minute", "minute-and-seconds",
         "hour", "hour-and-minutes"],
)  # fmt: skip
def test_duration_text(ms: float, text: str) -> None:
    assert duration_text(ms) == text


@pytest.mark.parametrize(
    ("component", "title"),
    [("chamber_heater", "Chamber heater"), ("mfc_1", "MFC 1"), ("n2_generator", "N2 generator"), ("plc", "PLC"),
     ("pressure_gauge_2", "Pressure gauge 2")],
    ids=["words", "acronym-first", "formula", "acronym-alone", "numbered"],
)  # fmt: skip
def test_component_title(component: str, title: str) -> None:
    assert component_title(component) == title
