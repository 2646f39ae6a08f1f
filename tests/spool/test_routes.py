"""How batches collapse before shipping: pure table tests."""

from __future__ import annotations

import pytest

from agent.spool import ROUTES, SHIP_ORDER, collapse
from agent.spool.routes import column_groups, waits_for


@pytest.mark.parametrize(
    ("kind", "payloads", "expected"),
    [
        (
            "history",
            [{"machine_id": "m", "ts": "t1"}, {"machine_id": "m", "ts": "t2"}],
            [{"machine_id": "m", "ts": "t1"}, {"machine_id": "m", "ts": "t2"}],
        ),
        (
            "history",
            [{"machine_id": "m", "ts": "t1", "v": 1}, {"machine_id": "m", "ts": "t1", "v": 2}],
            [{"machine_id": "m", "ts": "t1", "v": 2}],
        ),
        (
            "latest",
            [
                [
                    {"machine_id": "m", "parameter_id": "a", "value": 1},
                    {"machine_id": "m", "parameter_id": "b", "value": 1},
                ],
                [{"machine_id": "m", "parameter_id": "a", "value": 2}],
            ],
            [
                {"machine_id": "m", "parameter_id": "b", "value": 1},
                {"machine_id": "m", "parameter_id": "a", "value": 2},
            ],
        ),
        (
            "machine",
            [{"id": "m", "values": {"status": "idle"}}, {"id": "m", "values": {"status": "offline"}}],
            [{"id": "m", "values": {"status": "offline"}}],
        ),
        (
            "command",
            [{"id": 1, "values": {"status": "running"}}, {"id": 1, "values": {"status": "succeeded"}}],
            [{"id": 1, "values": {"status": "running"}}, {"id": 1, "values": {"status": "succeeded"}}],
        ),
        (
            "alarm",
            [
                {"id": "a", "state": "active_unacked", "acked_at": None},
                {"id": "b", "state": "active_unacked", "acked_at": None},
                {"id": "a", "state": "active_acked", "acked_at": "t"},
            ],
            [
                {"id": "b", "state": "active_unacked", "acked_at": None},
                {"id": "a", "state": "active_acked", "acked_at": "t"},
            ],
        ),
    ],
    ids=[
        "history-in-order",
        "replayed-frame-once",
        "latest-newest-wins",
        "machine-merged",
        "commands-never-merged",
        "alarm-whole-row-last-wins",
    ],
)
def test_collapse(kind: str, payloads: list, expected: list) -> None:  # type: ignore[type-arg]
    assert collapse(ROUTES[kind], payloads) == expected


def test_runs_ship_before_what_references_them() -> None:
    assert SHIP_ORDER.index("run") < SHIP_ORDER.index("step")
    assert SHIP_ORDER.index("run") < SHIP_ORDER.index("machine")  # machines.current_run_id
    assert set(SHIP_ORDER) == set(ROUTES)


def test_a_runs_story_keeps_its_append_order_and_telemetry_waits_for_nothing() -> None:
    assert waits_for("run") == ()
    assert waits_for("step") == ("run",)
    # a command is final only after its run is written, and an ack_alarm only after the alarm reads acknowledged
    assert waits_for("command") == ("run", "step", "machine", "alarm")
    assert all(waits_for(kind) == () for kind in ("history", "latest", "heartbeat"))


def test_run_progress_merges_into_the_full_row_and_partial_rows_travel_alone() -> None:
    full = {"id": "r", "machine_id": "m", "recipe_snapshot": {"steps": []}, "status": "running", "completed_steps": 0}
    progress = {"id": "r", "machine_id": "m", "status": "running", "completed_steps": 3}
    assert collapse(ROUTES["run"], [full, progress]) == [full | {"completed_steps": 3}]
    other = {"id": "q", "machine_id": "m", "status": "running", "completed_steps": 7}
    rows = collapse(ROUTES["run"], [progress, other, full | {"id": "s"}])
    assert [[r["id"] for r in group] for group in column_groups(rows)] == [["r", "q"], ["s"]]
