"""The limit evaluator, frame by frame with exact times: on-delay for raising, deadband for clearing, and an
unreadable value that neither raises nor clears."""

from __future__ import annotations

import math

import pytest

from agent.alarms import AlarmKind, AlarmLimit, Cleared, LimitEvaluator, LimitSet, Raised, Severity

KEY = "chamber_heater.temperature"
HIGH = AlarmLimit(KEY, AlarmKind.HIGH, 350.0, Severity.HIGH, deadband=2.0, on_delay_ms=0)
LOW = AlarmLimit(KEY, AlarmKind.LOW, 10.0, Severity.LOW, deadband=1.0, on_delay_ms=0)
DELAYED = AlarmLimit(KEY, AlarmKind.HIGH, 350.0, Severity.HIGH, deadband=2.0, on_delay_ms=1000)

Frames = list[tuple[float, float | bool | None]]  # (monotonic seconds, value)


def moves(limit: AlarmLimit, frames: Frames) -> list[tuple[float, str, float | None]]:
    """(time, "raise" | "clear", value) for every move the frames cause."""
    evaluator = LimitEvaluator(LimitSet((limit,)))
    seen: list[tuple[float, str, float | None]] = []
    for now, value in frames:
        for move in evaluator.observe({KEY: value}, now):
            seen.append((now, "raise", move.value) if isinstance(move, Raised) else (now, "clear", move.value))
    return seen


@pytest.mark.parametrize(
    ("limit", "frames", "expected"),
    [
        (HIGH, [(0, 340.0), (1, 351.0), (2, 355.0)], [(1, "raise", 351.0)]),
        (HIGH, [(0, 350.0), (1, 349.0)], []),  # exactly at the limit is still normal
        (HIGH, [(0, 351.0), (1, 349.0), (2, 348.0), (3, 347.9)], [(0, "raise", 351.0), (2, "clear", 348.0)]),
        (LOW, [(0, 20.0), (1, 9.5), (2, 10.5), (3, 11.0)], [(1, "raise", 9.5), (3, "clear", 11.0)]),
        (DELAYED, [(0, 351.0), (0.5, 352.0), (0.9, 340.0), (1.5, 351.0)], []),  # a short excursion: nothing
        (DELAYED, [(0, 351.0), (0.5, 352.0), (1.0, 353.0)], [(1.0, "raise", 353.0)]),
        (DELAYED, [(0.1, 351.0), (1.0, 351.0), (1.1, 351.0)], [(1.1, "raise", 351.0)]),  # float times: 1.1-0.1
        (DELAYED, [(0, 351.0), (0.6, 340.0), (1.0, 351.0), (1.9, 351.0), (2.0, 351.0)], [(2.0, "raise", 351.0)]),
    ],
    ids=[
        "raises-on-the-first-frame-beyond",
        "at-the-limit-is-normal",
        "clears-only-past-the-deadband",
        "low-limit-mirrors-high",
        "short-excursion-raises-nothing",
        "sustained-excursion-raises-after-the-on-delay",
        "on-delay-tolerates-float-frame-times",
        "a-dip-back-restarts-the-on-delay",
    ],
)
def test_raise_and_clear(limit: AlarmLimit, frames: Frames, expected: list[tuple[float, str, float]]) -> None:
    assert moves(limit, frames) == expected


def test_a_value_hovering_at_the_limit_raises_once_not_once_per_frame() -> None:
    hovering = [(t / 10, 350.0 + (0.5 if t % 2 else -0.5)) for t in range(100)]
    assert moves(HIGH, hovering) == [(0.1, "raise", 350.5)]


@pytest.mark.parametrize("unreadable", [None, math.nan, math.inf, True], ids=["none", "nan", "inf", "bool"])
def test_an_unreadable_value_neither_raises_nor_clears(unreadable: float | bool | None) -> None:
    assert moves(HIGH, [(0, unreadable), (1, unreadable)]) == []
    assert moves(HIGH, [(0, 351.0), (1, unreadable), (2, unreadable)]) == [(0, "raise", 351.0)]  # no clear
    # a pending limit waits for the next readable frame
    assert moves(DELAYED, [(0, 351.0), (0.5, unreadable), (1.5, 351.0)]) == [(1.5, "raise", 351.0)]


def test_a_key_missing_from_the_frame_changes_nothing() -> None:
    evaluator = LimitEvaluator(LimitSet((HIGH,)))
    assert evaluator.observe({KEY: 351.0}, 0) != []
    assert evaluator.observe({"other.key": 1.0}, 1) == []
    assert evaluator.active() == {(KEY, AlarmKind.HIGH)}


def test_high_and_high_high_are_separate_alarms() -> None:
    high_high = AlarmLimit(KEY, AlarmKind.HIGH_HIGH, 370.0, Severity.CRITICAL)
    evaluator = LimitEvaluator(LimitSet((HIGH, high_high)))
    raised = evaluator.observe({KEY: 380.0}, 0)
    assert [(m.limit.kind, m.value) for m in raised if isinstance(m, Raised)] == [
        (AlarmKind.HIGH, 380.0),
        (AlarmKind.HIGH_HIGH, 380.0),
    ]
    cleared = evaluator.observe({KEY: 360.0}, 1)
    assert cleared == [Cleared(KEY, AlarmKind.HIGH_HIGH, 360.0)]


def test_a_removed_limit_clears_its_active_alarm_and_a_changed_one_restarts_its_delay() -> None:
    evaluator = LimitEvaluator(LimitSet((HIGH,)))
    evaluator.observe({KEY: 351.0}, 0)
    assert evaluator.set_limits(LimitSet()) == [Cleared(KEY, AlarmKind.HIGH, None, removed=True)]
    assert evaluator.active() == set()

    evaluator = LimitEvaluator(LimitSet((DELAYED,)))
    evaluator.observe({KEY: 351.0}, 0)  # pending since 0
    longer = AlarmLimit(KEY, AlarmKind.HIGH, 350.0, Severity.HIGH, deadband=2.0, on_delay_ms=2000)
    assert evaluator.set_limits(LimitSet((longer,))) == []
    assert evaluator.observe({KEY: 351.0}, 1.5) == []  # the new delay runs from 1.5
    assert evaluator.observe({KEY: 351.0}, 3.0) == []
    assert [type(m) for m in evaluator.observe({KEY: 351.0}, 3.5)] == [Raised]


def test_an_alarm_marked_active_clears_by_the_rule_and_is_not_raised_again() -> None:
    evaluator = LimitEvaluator(LimitSet((HIGH,)))
    evaluator.mark_active([(KEY, AlarmKind.HIGH)], 0)
    assert evaluator.observe({KEY: 360.0}, 1) == []  # still beyond: no second raise
    assert evaluator.observe({KEY: 349.0}, 2) == []  # inside the deadband
    assert evaluator.observe({KEY: 300.0}, 3) == [Cleared(KEY, AlarmKind.HIGH, 300.0)]
