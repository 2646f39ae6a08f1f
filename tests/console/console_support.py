"""Shared data for the console tests: a healthy snapshot, the reference map, a compiled recipe, fake alarms."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.console import ConsoleInputs, CurrentRun, FinishedRun
from agent.plc import load_default_map
from agent.recipes import Plan, Recipe, compile_recipe
from agent.status import AgentSnapshot

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
MAP = load_default_map()
SNAPSHOT = AgentSnapshot(
    version="1.4.2",
    color="blue",
    role="active",
    instance_id="host-blue",
    machine_id="00000000-0000-4000-8000-000000000001",
    started_at=NOW - timedelta(hours=1),
    uptime_s=3600,
    serving=True,
    plc_connected=True,
    plc_last_error=None,
    plc_response_ms=4.25,
    database_connected=True,
    realtime_connected=True,
    sampling=True,
    logging_interval_s=1.0,
    frames=3600,
    skipped_ticks=0,
    late_ticks=0,
    failed_frames=0,
    spool_depth=0,
    spool_bytes=0,
    quarantined=0,
    dropped=0,
    shipped=100,
    memory_mb=60.0,
)
AL2O3 = Recipe.from_document(
    {
        "name": "Al2O3 TMA/H2O",
        "steps": [
            {"type": "parameter", "name": "Chamber to 200 °C",
             "config": {"parameter": "chamber_heater.temperature_sp", "value": 200,
                        "wait": {"tolerance": 2, "timeout_ms": 600000}}},
            {"type": "loop", "name": "ALD cycle", "config": {"count": 100}, "steps": [
                {"type": "valve", "name": "TMA pulse", "config": {"valve": 1, "duration_ms": 20}},
                {"type": "purge", "name": "N2 purge", "config": {"duration_ms": 3000, "gas": "N2", "flow_sccm": 20}},
                {"type": "valve", "name": "H2O pulse", "config": {"valve": 2, "duration_ms": 60}},
                {"type": "purge", "name": "N2 purge", "config": {"duration_ms": 3000, "gas": "N2"}},
            ]},
        ],
    }
)  # fmt: skip
PLAN: Plan = compile_recipe(AL2O3, register_map=MAP)


def live_values(**overrides: Any) -> dict[str, object]:
    """A plausible frame's values for the reference map: every logged key, overridden by `key__sub=value`."""
    values: dict[str, object] = {}
    for p in MAP:
        if p.logged:
            values[p.key] = False if p.data_type.value == "bool" else 0
    values.update({"chamber_heater.temperature": 199.5, "chamber_heater.temperature_sp": 200.0})
    values.update({k.replace("__", "."): v for k, v in overrides.items()})
    return values


def current_run(*, step_index: int = 147, status: str = "running", error: str | None = None) -> CurrentRun:
    """The run at plan step `step_index` (147: cycle 37's H2O pulse), started 10 minutes before NOW."""
    step = PLAN.steps[step_index]
    return CurrentRun(
        id="run-1",
        recipe_name=AL2O3.name,
        status=status,
        error=error,
        started_at=NOW - timedelta(minutes=10),
        completed_steps=step_index,
        total_steps=PLAN.total_steps,
        total_ms=PLAN.total_ms,
        done_planned_ms=sum(s.planned_ms for s in PLAN.steps[:step_index]),
        step=step,
        step_started_at=NOW,
        loop_names={"2": "ALD cycle"},
        timeline=(),
    )


def finished(status: str, error: str | None = None) -> FinishedRun:
    return FinishedRun(
        id="run-0",
        recipe_name="Al2O3 TMA/H2O",
        status=status,
        error=error,
        started_at=NOW - timedelta(hours=1),
        finished_at=NOW - timedelta(minutes=30),
        completed_steps=401,
        total_steps=401,
    )


def inputs(**changes: Any) -> ConsoleInputs:
    """Inputs for an idle, healthy machine with a fresh frame; `snapshot=` may be a dict of snapshot changes."""
    snap = changes.pop("snapshot", {})
    base = ConsoleInputs(
        now=NOW,
        snapshot=dataclasses.replace(SNAPSHOT, **snap),
        health_status="healthy",
        health_reasons=(),
        machine_name="ALD reference reactor",
        register_map=MAP,
        frame=None,
        last_values=live_values(),
        values_at=NOW - timedelta(seconds=1),
        run=None,
        runs=(),
        alarms=(),
        owner="this agent",
    )
    return dataclasses.replace(base, **changes)


@dataclass(frozen=True)
class FakeAlarm:
    """Any object with AlarmLike's attributes is an alarm to the console."""

    id: str
    key: str = "pressure_gauge_1.pressure"
    kind: str = "high"
    severity: str = "high"
    state: str = "active_unacked"
    value: float | None = 1250.5
    limit: float | None = 1000.0
    message: str = "Chamber pressure high"
    raised_at: datetime = NOW - timedelta(minutes=2)
    acked_at: datetime | None = None
    acked_by: str | None = None
    cleared_at: datetime | None = None
