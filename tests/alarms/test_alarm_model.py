"""Alarm limits as rows, and the ISA-18.2 state machine of one alarm: its moves, their order, and merging two
views of one alarm."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agent.alarms import ActiveAlarm, AlarmKind, AlarmState, Severity, alarm_from_row, alarm_row, parse_alarm_limits
from agent.alarms.model import acknowledge, merge_alarms, return_to_normal, state_of

T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
ROW = {
    "key": "pressure_gauge_1.pressure",
    "enabled": True,
    "low_low": None,
    "low": 1.0,
    "high": 500.0,
    "high_high": 2000.0,
    "low_severity": "low",
    "high_severity": "high",
    "high_high_severity": "critical",
    "deadband": 10.0,
    "on_delay_ms": 2000,
}


def test_a_row_becomes_one_limit_per_threshold_set() -> None:
    limits, problems = parse_alarm_limits([ROW])
    assert problems == []
    assert [(x.kind, x.threshold, x.severity, x.deadband, x.on_delay_ms) for x in limits.limits] == [
        (AlarmKind.LOW, 1.0, Severity.LOW, 10.0, 2000),
        (AlarmKind.HIGH, 500.0, Severity.HIGH, 10.0, 2000),
        (AlarmKind.HIGH_HIGH, 2000.0, Severity.CRITICAL, 10.0, 2000),
    ]


def test_a_disabled_row_is_no_limit_and_severities_default_by_kind() -> None:
    limits, problems = parse_alarm_limits([ROW | {"enabled": False}, {"key": "a.b", "low_low": 1, "high": 5}])
    assert problems == []
    assert [(x.key, x.kind, x.severity) for x in limits.limits] == [
        ("a.b", AlarmKind.LOW_LOW, Severity.CRITICAL),
        ("a.b", AlarmKind.HIGH, Severity.MEDIUM),
    ]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"high": math.nan}, "high must be a finite number"),
        ({"high": "500"}, "high must be a finite number"),
        ({"high": 0.5}, "low 1 must be below high 0.5"),
        ({"high_high": 400.0}, "high 500 must be below high_high 400"),
        ({"deadband": -1}, "deadband must be >= 0"),
        ({"on_delay_ms": 3_600_001}, "on_delay_ms must be within 0..3600000"),
        ({"high_severity": "urgent"}, "high_severity must be one of critical, high, medium, low, got 'urgent'"),
        ({"low": None, "high": None, "high_high": None}, "no limit set"),
        ({"key": None}, "no key"),
    ],
    ids=["nan", "string", "low-above-high", "high-above-high-high", "negative-deadband", "delay-too-long",
         "unknown-severity", "no-limit", "no-key"],
)  # fmt: skip
def test_a_bad_row_is_refused_with_a_reason(change: dict[str, Any], problem: str) -> None:
    _, problems = parse_alarm_limits([ROW | change, {"key": "ok.key", "high": 1}])
    assert len(problems) == 1 and problem in problems[0], problems


def test_two_rows_for_one_key_are_refused() -> None:
    _, problems = parse_alarm_limits([ROW, ROW])
    assert problems == ["alarm limits of 'pressure_gauge_1.pressure': more than one row"]


def alarm(**changes: Any) -> ActiveAlarm:
    base = ActiveAlarm(
        id="00000000-0000-4000-8000-00000000a001",
        key="chamber_heater.temperature",
        kind="high",
        severity="high",
        state="active_unacked",
        value=360.0,
        limit=350.0,
        message="chamber_heater.temperature high (> 350): 360",
        raised_at=T0,
    )
    return replace(base, **changes)


@pytest.mark.parametrize(
    ("moves", "states"),
    [
        (["ack", "clear"], ["active_acked", "closed"]),
        (["clear", "ack"], ["cleared_unacked", "closed"]),
        (["ack", "ack", "clear", "clear"], ["active_acked", "active_acked", "closed", "closed"]),
    ],
    ids=["ack-then-normal", "normal-then-ack", "repeats-change-nothing"],
)
def test_the_isa_18_2_state_machine(moves: list[str], states: list[str]) -> None:
    current, seen = alarm(), []
    for n, move in enumerate(moves, start=1):
        at = T0 + timedelta(seconds=n)
        current = acknowledge(current, at=at, by=f"op{n}") if move == "ack" else return_to_normal(current, at=at)
        seen.append(current.state)
    assert seen == states
    assert current.acked_by == ("op1" if moves[0] == "ack" else "op2")  # the first acknowledgement stays


def test_state_follows_from_the_two_facts() -> None:
    assert [state_of(acked=a, cleared=c) for a in (False, True) for c in (False, True)] == [
        AlarmState.ACTIVE_UNACKED,
        AlarmState.CLEARED_UNACKED,
        AlarmState.ACTIVE_ACKED,
        AlarmState.CLOSED,
    ]


def test_two_views_of_one_alarm_merge_into_what_both_know() -> None:
    acked = acknowledge(alarm(), at=T0 + timedelta(seconds=1), by="dashboard@fab")
    cleared = return_to_normal(alarm(), at=T0 + timedelta(seconds=2))
    for merged in (merge_alarms(acked, cleared), merge_alarms(cleared, acked)):
        assert merged.state == "closed"
        assert merged.acked_by == "dashboard@fab" and merged.cleared_at == T0 + timedelta(seconds=2)
    assert merge_alarms(alarm(), acked).state == "active_acked"  # an older view cannot undo an acknowledgement


def test_a_row_round_trips_and_never_carries_a_non_finite_number() -> None:
    original = acknowledge(alarm(run_id="r-1"), at=T0, by="cli:op@host")
    row = alarm_row(original, machine_id="m-1")
    assert row["machine_id"] == "m-1" and row["limit_value"] == 350.0 and row["raised_at"] == T0.isoformat()
    assert alarm_from_row(row) == original
    assert alarm_row(alarm(value=math.inf), machine_id="m")["value"] is None
