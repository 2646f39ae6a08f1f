"""The alarm book on sequences of frames: what it raises, acknowledges and clears, what it spools for each move,
trips as alarms, refused limits, and a restart's restored alarms. (Limits here have no on-delay: the delay is
the evaluator's, proven with exact times in test_alarm_evaluator.py.)"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.alarms import ACK_ALL, AlarmBook, alarm_from_row
from agent.errors import CommandError
from agent.parameters import ConfigRows
from agent.safety import parse_interlocks
from agent.safety.interlocks import TripMonitor
from agent.sampling import Frame
from agent.spool import Spool, SpoolWriter

TEMP, PRESSURE = "chamber_heater.temperature", "pressure_gauge_1.pressure"
LIMITS = [
    {"key": TEMP, "high": 350, "high_high": 370, "high_severity": "high", "deadband": 2},
    {"key": PRESSURE, "low": 1, "high": 500, "low_severity": "low", "high_severity": "high", "deadband": 10},
]
TRIP_ROWS = [
    {"name": "chamber-overtemperature", "kind": "trip", "conditions": [{"key": TEMP, "op": "le", "value": 380}]},
]


class Recorder:
    """A real SpoolWriter (never run: nothing reaches a disk here) and the records submitted to it."""

    def __init__(self, tmp_path: Path) -> None:
        self.writer = SpoolWriter(Spool(tmp_path / "unused.sqlite"))
        self.records: list[tuple[str, dict[str, Any]]] = []
        self.writer.observers.append(lambda kind, payload: self.records.append((kind, payload)))

    def states(self) -> list[tuple[str, str, str]]:
        return [(p["key"], p["kind"], p["state"]) for _, p in self.records]


@pytest.fixture
def recorder(tmp_path: Path) -> Recorder:
    return Recorder(tmp_path)


def make_book(recorder: Recorder, limits: list[dict[str, Any]] = LIMITS) -> AlarmBook:
    interlocks, problems = parse_interlocks(TRIP_ROWS)
    assert problems == []
    book = AlarmBook(recorder.writer, machine_id="m-1", interlocks=lambda: interlocks)
    book.offer(ConfigRows(limits, "database"))
    return book


def frame(tick: int, **values: float | None) -> Frame:
    named = {TEMP: values.get("temp", 25.0), PRESSURE: values.get("pressure", 12.0)}
    return Frame(datetime(2026, 12, 2, tzinfo=UTC) + timedelta(seconds=tick), tick, named, 0.001, 0.0, run_id="r-1")


def test_raise_ack_and_return_to_normal_each_spool_the_whole_row(recorder: Recorder) -> None:
    book = make_book(recorder)
    book.observe(frame(0))
    assert book.active() == [] and recorder.records == []  # the simulator's idle state raises nothing

    book.observe(frame(1, temp=355.0))
    (alarm,) = book.active()
    assert (alarm.key, alarm.kind, alarm.severity, alarm.state) == (TEMP, "high", "high", "active_unacked")
    assert (alarm.value, alarm.limit, alarm.run_id, alarm.raised_at) == (355.0, 350.0, "r-1", frame(1).ts)
    assert book.counts() == {"critical": 0, "high": 1, "medium": 0, "low": 0}

    (acked,) = book.acknowledge(alarm.id, by="cli:op@host")
    assert (acked.state, acked.acked_by) == ("active_acked", "cli:op@host")
    book.observe(frame(2, temp=349.0))  # inside the 2 °C deadband: still active
    assert book.active()[0].state == "active_acked"
    book.observe(frame(3, temp=340.0))
    assert book.active() == [] and book.counts()["high"] == 0

    assert recorder.states() == [(TEMP, "high", "active_unacked"), (TEMP, "high", "active_acked"),
                                 (TEMP, "high", "closed")]  # fmt: skip
    assert all(kind == "alarm" and payload["machine_id"] == "m-1" for kind, payload in recorder.records)
    assert alarm_from_row(recorder.records[-1][1]).acked_by == "cli:op@host"  # every record is the whole row


def test_an_alarm_back_to_normal_before_its_ack_stays_listed_until_acknowledged(recorder: Recorder) -> None:
    book = make_book(recorder)
    book.observe(frame(1, pressure=0.5))
    book.observe(frame(2, pressure=12.0))
    (alarm,) = book.active()
    assert (alarm.kind, alarm.state, alarm.severity) == ("low", "cleared_unacked", "low")
    assert book.counts()["low"] == 0 and book.unacknowledged() == 1  # not active, but not acknowledged
    book.acknowledge(ACK_ALL, by="dashboard@fab")
    assert book.active() == []
    assert recorder.states()[-1] == (PRESSURE, "low", "closed")


def test_active_lists_newest_first_and_a_new_excursion_is_a_new_alarm(recorder: Recorder) -> None:
    book = make_book(recorder)
    book.observe(frame(1, temp=375.0))  # high and high-high
    book.observe(frame(2, temp=375.0, pressure=600.0))
    book.observe(frame(3, temp=300.0, pressure=600.0))  # temperature back; both temperature alarms unacked
    book.observe(frame(4, temp=360.0, pressure=600.0))  # a second high excursion
    listed = [(a.key, a.kind, a.state) for a in book.active()]
    assert listed[0] == (TEMP, "high", "active_unacked")
    assert listed[1] == (PRESSURE, "high", "active_unacked")
    assert sorted(listed[2:]) == [(TEMP, "high", "cleared_unacked"), (TEMP, "high_high", "cleared_unacked")]
    assert len({a.id for a in book.active()}) == 4


def test_acknowledging_an_unknown_alarm_is_a_clear_error_and_changes_nothing(recorder: Recorder) -> None:
    book = make_book(recorder)
    book.observe(frame(1, temp=355.0))
    before = list(recorder.records)
    with pytest.raises(CommandError, match="no open alarm 00000000-0000-4000-8000-00000000dead on this machine"):
        book.acknowledge("00000000-0000-4000-8000-00000000dead", by="op")
    assert recorder.records == before and book.active()[0].state == "active_unacked"
    (alarm,) = book.active()
    book.acknowledge(alarm.id, by="first")
    assert book.acknowledge(alarm.id, by="second") == []  # a repeat is not an error and keeps the first
    assert book.active()[0].acked_by == "first"


def test_a_trip_is_a_critical_alarm_until_its_interlock_holds_again(recorder: Recorder) -> None:
    book = make_book(recorder, limits=[])
    book.observe(frame(0))  # a frame of run r-1
    interlocks, _ = parse_interlocks(TRIP_ROWS)
    (violation,) = TripMonitor(interlocks).observe({TEMP: 395.0}, 0.0)
    book.on_trip(violation)
    book.on_trip(violation)  # the same trip again (a second run): one alarm
    (alarm,) = book.active()
    assert (alarm.key, alarm.kind, alarm.severity, alarm.value, alarm.limit) == (
        "chamber-overtemperature", "trip", "critical", 395.0, 380.0
    )  # fmt: skip
    assert "chamber_heater.temperature is 395" in alarm.message and alarm.run_id == "r-1"
    book.observe(frame(1, temp=None))  # unreadable: the interlock does not hold
    assert book.active()[0].state == "active_unacked"
    book.observe(frame(2, temp=300.0))
    assert book.active()[0].state == "cleared_unacked"


def test_refused_limits_keep_the_set_in_use(recorder: Recorder) -> None:
    book = make_book(recorder)
    book.offer(ConfigRows([{"key": TEMP, "high": float("nan")}], "database"))
    assert book.problem is not None and "high must be a finite number" in book.problem
    assert len(book.limits) == 4
    book.offer(ConfigRows([], "none", "alarm_limits unknown: Supabase unreachable and no cache"))
    assert book.problem == "alarm_limits unknown: Supabase unreachable and no cache" and len(book.limits) == 4


def test_a_removed_limit_returns_its_alarm_to_normal(recorder: Recorder) -> None:
    book = make_book(recorder)
    book.observe(frame(1, pressure=600.0))
    book.offer(ConfigRows(LIMITS[:1], "database"))
    (alarm,) = book.active()
    assert alarm.state == "cleared_unacked" and alarm.message.endswith("(limit removed)")


def test_restored_alarms_are_not_raised_again_and_clear_by_the_rule(recorder: Recorder) -> None:
    first = make_book(recorder)
    first.observe(frame(1, temp=355.0, pressure=600.0))
    first.acknowledge(next(a.id for a in first.active() if a.key == PRESSURE), by="op")
    restored = [replace(a) for a in first.active()]

    again = Recorder(recorder.writer.spool.path.parent)
    book = make_book(again)
    book.restore(restored)
    assert {(a.key, a.state) for a in book.active()} == {(TEMP, "active_unacked"), (PRESSURE, "active_acked")}
    book.observe(frame(2, temp=356.0, pressure=600.0))
    assert again.records == []  # still beyond: nothing raised a second time
    book.observe(frame(3, temp=300.0, pressure=12.0))
    assert sorted(again.states()) == [(TEMP, "high", "cleared_unacked"), (PRESSURE, "high", "closed")]


def test_a_standby_evaluates_nothing_and_asks_for_a_resync_before_it_publishes_again(recorder: Recorder) -> None:
    book = make_book(recorder)
    book.observe(frame(1, temp=355.0))
    (mine,) = book.active()
    book.standby()  # the other color publishes now: it acknowledges and closes this alarm meanwhile
    book.observe(frame(2, temp=300.0))  # our first frame as the publisher again
    assert book.stale and book.resync_needed.is_set()
    assert [s for *_, s in recorder.states()] == ["active_unacked"]  # nothing evaluated on a stale book
    book.restore([])  # what Supabase knows: nothing open
    assert not book.stale and book.active() == []
    book.observe(frame(3, temp=300.0))
    assert recorder.states() == [(TEMP, "high", "active_unacked")] and mine.state == "active_unacked"
