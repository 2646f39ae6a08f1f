"""The publisher: one history record per frame, `parameter_latest` rows only for values that moved beyond their
deadband (a bool or null on any change), all of them at a refresh or after a new map."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest

from agent.plc import RegisterMap, parse_map_csv
from agent.plc.registers import MAP_COLUMNS
from agent.sampling import Frame, TelemetryPublisher, changed_beyond_deadband, round_read_ms

ROWS = [  # key, data_type, register, address, logged, deadband
    ("temp", "float32", "holding", 0, "true", 0.5),
    ("flag", "bool", "coil", 0, "true", 0),
    ("count", "int16", "input", 0, "false", 0),
]
IDS = {"temp": "p-temp", "flag": "p-flag", "count": "p-count"}


def register_map() -> RegisterMap:
    header = ",".join(MAP_COLUMNS)
    defaults = {c: "" for c in MAP_COLUMNS}
    lines = [header]
    for key, data_type, register, address, logged, deadband in ROWS:
        row = {**defaults, "key": key, "component": "c", "name": key, "data_type": data_type, "register": register,
               "address": str(address), "scale": "1", "offset": "0", "writable": "false", "logged": logged,
               "deadband": str(deadband)}  # fmt: skip
        lines.append(",".join(row[c] for c in MAP_COLUMNS))
    return parse_map_csv("\n".join(lines) + "\n")


class Writer:
    def __init__(self) -> None:
        self.records: list[tuple[str, Any]] = []

    def submit(self, kind: str, payload: Any) -> None:
        self.records.append((kind, payload))


def frame(tick: int, **values: object) -> Frame:
    return Frame(datetime(2026, 12, 1, 18, 0, tick, tzinfo=UTC), tick, values, 0.008, 0.0)  # type: ignore[arg-type]


def publisher(refresh_s: float = 3600.0) -> tuple[TelemetryPublisher, Writer]:
    writer = Writer()
    pub = TelemetryPublisher(
        writer,  # type: ignore[arg-type]
        machine_id="m",
        register_map=register_map(),
        parameter_ids=IDS,
        refresh_s=refresh_s,
    )
    return pub, writer


def latest(pub: TelemetryPublisher, f: Frame) -> dict[str, object]:
    items = dict(pub.records(f))
    return {row["parameter_id"]: row["value"] for row in items.get("latest", [])}


def test_history_carries_the_logged_keys_the_frame_ts_and_its_read_duration() -> None:
    pub, _ = publisher()
    items = pub.records(frame(1, temp=20.0, flag=True, count=3))  # read_s = 0.008
    assert items[0] == (
        "history",
        {
            "machine_id": "m",
            "ts": "2026-12-01T18:00:01+00:00",
            "run_id": None,
            "values": {"temp": 20.0, "flag": True},
            "read_ms": 8.0,
        },
    )


@pytest.mark.parametrize(
    ("read_s", "read_ms"),
    [
        pytest.param(0.008, 8.0, id="8-ms"),
        pytest.param(0.0123456, 12.35, id="rounded-to-10-us"),
        pytest.param(0.000004, 0.0, id="under-5-us-is-zero"),
        pytest.param(0.0, 0.0, id="zero"),
        pytest.param(1.5, 1500.0, id="past-a-second"),
        pytest.param(-0.001, None, id="negative-not-recorded"),
        pytest.param(math.nan, None, id="nan-not-recorded"),
        pytest.param(math.inf, None, id="infinite-not-recorded"),
    ],
)
def test_the_read_duration_is_recorded_in_ms_to_10_us_or_not_at_all(read_s: float, read_ms: float | None) -> None:
    """The column refuses negative and non-finite numbers: such a duration becomes null, so the frame still ships."""
    assert round_read_ms(read_s) == read_ms
    pub, _ = publisher()
    f = Frame(datetime(2026, 12, 1, 18, 0, 1, tzinfo=UTC), 1, {"temp": 20.0}, read_s, 0.0)
    assert dict(pub.records(f))["history"]["read_ms"] == read_ms


@pytest.mark.parametrize(
    ("second", "published"),
    [
        pytest.param({"temp": 20.0, "flag": True, "count": 3}, {}, id="nothing-moved"),
        pytest.param({"temp": 20.4, "flag": True, "count": 3}, {}, id="within-deadband"),
        pytest.param({"temp": 20.6, "flag": True, "count": 3}, {"p-temp": 20.6}, id="beyond-deadband"),
        pytest.param({"temp": 20.0, "flag": False, "count": 3}, {"p-flag": False}, id="bool-flipped"),
        pytest.param({"temp": None, "flag": True, "count": 3}, {"p-temp": None}, id="became-null"),
    ],
)
def test_latest_rows_only_for_values_that_moved(second: dict[str, object], published: dict[str, object]) -> None:
    pub, _ = publisher()
    assert latest(pub, frame(1, temp=20.0, flag=True, count=3)) == {"p-temp": 20.0, "p-flag": True, "p-count": 3}
    assert latest(pub, frame(2, **second)) == published


def test_a_refresh_republishes_every_value() -> None:
    pub, _ = publisher(refresh_s=0.0)
    pub.records(frame(1, temp=20.0, flag=True, count=3))
    assert latest(pub, frame(2, temp=20.0, flag=True, count=3)) == {"p-temp": 20.0, "p-flag": True, "p-count": 3}


def test_submit_queues_the_records_in_order() -> None:
    pub, writer = publisher()
    pub.submit(frame(1, temp=20.0, flag=True, count=3))
    assert [kind for kind, _ in writer.records] == ["history", "latest"]


@pytest.mark.parametrize(
    ("old", "new", "deadband", "changed"),
    [
        pytest.param(1.0, 1.0, 0.0, False, id="equal"),
        pytest.param(1.0, 1.5, 0.5, False, id="at-deadband"),
        pytest.param(1.0, 1.51, 0.5, True, id="past-deadband"),
        pytest.param(None, 1.0, 10.0, True, id="from-null"),
        pytest.param(True, False, 10.0, True, id="bool"),
    ],
)
def test_changed_beyond_deadband(old: object, new: object, deadband: float, changed: bool) -> None:
    assert changed_beyond_deadband(old, new, deadband) is changed  # type: ignore[arg-type]
