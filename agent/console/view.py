"""The console's view model: everything the page shows, as JSON-able data, from plain inputs. Pure.

`build_view(inputs)` is the only place that decides what the operator sees: the machine's state at a glance,
the degraded conditions as banners, process values grouped by component (setpoint beside its process value),
valves, the run in words with its progress and timeline, alarms, the last runs and the trend rows. The page's
JavaScript only lays it out, so every decision here is unit-tested (tests/console/test_console_view.py).

Rules worth knowing:
- While the PLC is down nothing pretends to be live: the last readings stay on screen marked stale, with the
  time they were taken, and the PLC read time is not shown (it belonged to the last good read). A value the
  latest frame could not read is stale on its own.
- Groups come in the order an ALD engineer looks at them (`COMPONENT_ORDER`: chamber, pressure, flow,
  pump…), then the rest by name.
- The machine's state and the degraded conditions are `verdicts.py`'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.console.alarms import ALARM_STATES, AlarmLike
from agent.console.inputs import ConsoleInputs
from agent.console.memory import FinishedRun, TimelineEntry
from agent.console.verdicts import STALE_FRAME_S, WATCHDOG_TRIPPED_KEY, machine_state, problems
from agent.console.words import component_title, duration_text, loops_text, number_text, step_text
from agent.plc import DataType, Parameter, RegisterMap

__all__ = ["TREND_CHARTS", "TrendChart", "build_view", "trend_keys"]

SETPOINT_SUFFIX = "_sp"
#: Flags that mean trouble when set: shown as "FAULT"/"ok" and highlighted.
FAULT_WORDS = ("fault", "tripped", "alarm")
SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}
STATE_ORDER = {"active_unacked": 0, "active_acked": 1, "cleared_unacked": 2}
#: Component name prefixes, most looked-at first; components matching none follow, by name.
COMPONENT_ORDER = ("chamber_heater", "pressure_gauge", "mfc", "vacuum_pump", "exhaust", "n2_generator", "precursor",
                   "frontline_heater", "backline_heater", "plc")  # fmt: skip


@dataclass(frozen=True, slots=True)
class TrendChart:
    """One trend chart: `title`, `unit`, and the suffixes (or whole keys) of the parameters it plots."""

    title: str
    unit: str
    keys: tuple[str, ...]


#: The key values of an ALD reactor, trended for the last minutes: the chamber's temperature against its
#: setpoint, every pressure gauge, every MFC flow against its setpoint (whatever the map names exist).
TREND_CHARTS = (
    TrendChart("Chamber temperature", "°C", ("chamber_heater.temperature", "chamber_heater.temperature_sp")),
    TrendChart("Pressure", "Pa", (".pressure",)),
    TrendChart("Flow", "sccm", (".flow", ".flow_sp")),
)


def _chart_keys(chart: TrendChart, register_map: RegisterMap) -> list[str]:
    keys = sorted(p.key for p in register_map if p.logged)
    out: list[str] = []
    for pattern in chart.keys:
        matches = [pattern] if not pattern.startswith(".") else [k for k in keys if k.endswith(pattern)]
        out += [k for k in matches if k in register_map and k not in out]
    return out


def trend_keys(register_map: RegisterMap) -> list[str]:
    """Every key some chart plots, in chart order (what the trend buffer records)."""
    out: list[str] = []
    for chart in TREND_CHARTS:
        out += [k for k in _chart_keys(chart, register_map) if k not in out]
    return out


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat(timespec="seconds")


def _is_fault(p: Parameter) -> bool:
    return any(word in p.key or word in p.name.lower() for word in FAULT_WORDS)


def _value_text(p: Parameter, value: object) -> str:
    if value is None:
        return "—"
    if p.data_type is DataType.BOOL:
        if _is_fault(p):
            return "FAULT" if value else "ok"
        return "on" if value else "off"
    if isinstance(value, int | float):
        return f"{number_text(float(value))} {p.unit}".rstrip()
    return str(value)


def _label(p: Parameter, title: str) -> str:
    name = p.name.strip()
    if name.lower().startswith(title.lower()):
        name = name[len(title) :].strip(" :-")
    return name or p.key.split(".", 1)[-1].replace("_", " ")


def _is_valve(p: Parameter) -> bool:
    return p.data_type is DataType.BOOL and "valve" in p.component and p.key.endswith(".state")


def _component_rank(component: str) -> tuple[int, str]:
    for rank, prefix in enumerate(COMPONENT_ORDER):
        if component.startswith(prefix):
            return rank, component
    return len(COMPONENT_ORDER), component


def _groups(inputs: ConsoleInputs, stale: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    values = inputs.last_values
    latest: Mapping[str, object] = inputs.frame.values if inputs.frame else {}
    shown = [p for p in inputs.register_map if p.logged]
    by_component: dict[str, list[Parameter]] = {}
    for p in shown:
        by_component.setdefault(p.component, []).append(p)
    groups: list[dict[str, Any]] = []
    valves: list[dict[str, Any]] = []
    for component in sorted(by_component, key=_component_rank):
        params = by_component[component]
        title = component_title(component)
        keys = {p.key for p in params}
        rows: list[dict[str, Any]] = []
        for p in params:
            if _is_valve(p):
                counts = inputs.register_map.get(f"{component}.cycle_count")
                state = values.get(p.key)
                valves.append(
                    {
                        "key": p.key,
                        "name": title,
                        "open": None if state is None else bool(state),
                        "text": "—" if state is None else ("open" if state else "closed"),
                        "cycles": None if counts is None else values.get(counts.key),
                        "stale": stale or latest.get(p.key) is None,
                    }
                )
                continue
            if p.key.endswith(SETPOINT_SUFFIX) and p.key.removesuffix(SETPOINT_SUFFIX) in keys:
                continue  # shown beside its process value
            if component.startswith("valve") and p.key.endswith(".cycle_count"):
                continue  # shown with the valve
            sp = inputs.register_map.get(p.key + SETPOINT_SUFFIX)
            value = values.get(p.key)
            rows.append(
                {
                    "key": p.key,
                    "label": _label(p, title),
                    "value": value if isinstance(value, int | float | bool) else None,
                    "text": _value_text(p, value),
                    "unit": p.unit,
                    "sp": None if sp is None or not sp.logged else _value_text(sp, values.get(sp.key)),
                    "fault": bool(value) and p.data_type is DataType.BOOL and _is_fault(p),
                    "stale": stale or latest.get(p.key) is None,
                }
            )
        if rows:
            groups.append({"component": component, "title": title, "rows": rows, "stale": stale})
    return groups, valves


def _run(inputs: ConsoleInputs) -> dict[str, Any] | None:
    run = inputs.run
    if run is None:
        return None

    def unit_of(key: str) -> str:
        p = inputs.register_map.get(key)
        return p.unit if p is not None else ""

    elapsed_s = max(0.0, (inputs.now - run.started_at).total_seconds())
    in_step_ms = 0.0
    if run.step is not None and run.step_started_at is not None:
        in_step_ms = min(run.step.planned_ms, max(0.0, (inputs.now - run.step_started_at).total_seconds() * 1000))
    remaining_ms = max(0.0, run.total_ms - run.done_planned_ms - in_step_ms)
    total = max(run.total_steps, 1)
    return {
        "id": run.id,
        "recipe": run.recipe_name,
        "status": run.status,
        "error": run.error,
        "started_at": _iso(run.started_at),
        "completed": run.completed_steps,
        "total": run.total_steps,
        "percent": round(100 * run.completed_steps / total, 1),
        "step": None if run.step is None else step_text(run.step, run.loop_names, unit_of=unit_of),
        "step_number": None if run.step is None else run.step.index + 1,
        "elapsed_s": round(elapsed_s, 1),
        "elapsed": duration_text(elapsed_s * 1000),
        "remaining_s": round(remaining_ms / 1000, 1),
        "remaining": duration_text(remaining_ms),
        "timeline": [_timeline_entry(e) for e in reversed(run.timeline)],
    }


def _timeline_entry(e: TimelineEntry) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "number": e.seq + 1,
        "where": loops_text(e.loops),
        "name": e.name or e.type,
        "type": e.type,
        "planned_ms": round(e.planned_ms, 1),
        "actual_ms": round(e.actual_ms, 1),
        "planned": duration_text(e.planned_ms),
        "actual": duration_text(e.actual_ms),
        "late_ms": round(e.actual_ms - e.planned_ms, 1),
        "status": e.status,
        "started_at": _iso(e.started_at),
    }


def _finished(r: FinishedRun) -> dict[str, Any]:
    seconds = max(0.0, (r.finished_at - r.started_at).total_seconds())
    return {
        "id": r.id,
        "recipe": r.recipe_name,
        "status": r.status,
        "error": r.error,
        "started_at": _iso(r.started_at),
        "finished_at": _iso(r.finished_at),
        "duration": duration_text(seconds * 1000),
        "completed": r.completed_steps,
        "total": r.total_steps,
    }


def _alarms(alarms: Sequence[AlarmLike]) -> list[dict[str, Any]]:
    ordered = sorted(
        alarms,
        key=lambda a: (STATE_ORDER.get(a.state, 9), SEVERITY_ORDER.get(a.severity, 9), -a.raised_at.timestamp()),
    )
    return [
        {
            "id": a.id,
            "key": a.key,
            "kind": a.kind,
            "severity": a.severity,
            "state": a.state,
            "state_text": ALARM_STATES.get(a.state, a.state),
            "active": a.state.startswith("active"),
            "acked": a.state == "active_acked",
            "message": a.message,
            "value": None if a.value is None else number_text(a.value),
            "limit": None if a.limit is None else number_text(a.limit),
            "raised_at": _iso(a.raised_at),
            "acked_at": _iso(a.acked_at),
            "acked_by": a.acked_by,
            "cleared_at": _iso(a.cleared_at),
        }
        for a in ordered
    ]


def _trends(inputs: ConsoleInputs) -> dict[str, Any]:
    index = {key: i for i, key in enumerate(inputs.trend_keys)}
    charts = []
    for chart in TREND_CHARTS:
        keys = [k for k in _chart_keys(chart, inputs.register_map) if k in index]
        if keys:
            labels = [_trend_label(inputs.register_map.get(k)) for k in keys]
            charts.append(
                {"title": chart.title, "unit": chart.unit, "series": [index[k] for k in keys], "labels": labels}
            )
    return {
        "keys": list(inputs.trend_keys),
        "charts": charts,
        "rows": [[t, *values] for t, values in inputs.trend_rows],
    }


def _trend_label(p: Parameter | None) -> str:
    return "?" if p is None else (p.name or p.key)


def build_view(inputs: ConsoleInputs) -> dict[str, Any]:
    """The page's whole picture (docs/DESIGN.md §6 "Operator console"), JSON-able."""
    s = inputs.snapshot
    read_at = inputs.values_at
    frame_age_s = None if read_at is None else max(0.0, (inputs.now - read_at).total_seconds())
    stale = not s.plc_connected or read_at is None or (frame_age_s or 0.0) > STALE_FRAME_S
    watchdog_tripped = bool(inputs.last_values.get(WATCHDOG_TRIPPED_KEY))  # as last read, if the PLC is gone
    tripped = watchdog_tripped or s.safe_state_pending
    groups, valves = _groups(inputs, stale)
    return {
        "at": _iso(inputs.now),
        "machine": {"name": inputs.machine_name or f"machine {s.machine_id}", "id": s.machine_id},
        "state": machine_state(inputs, tripped),
        "health": {"status": inputs.health_status, "reasons": list(inputs.health_reasons)},
        "agent": {
            "version": s.version,
            "color": s.color,
            "instance": s.instance_id,
            "uptime": duration_text(s.uptime_s * 1000),
            "serving": s.serving,
        },
        "role": s.role,
        "owner": inputs.owner,
        "plc": {
            "up": s.plc_connected,
            "error": None if s.plc_connected else s.plc_last_error,
            "read_ms": round(s.plc_response_ms, 1) if s.plc_connected and s.plc_response_ms is not None else None,
            "last_frame_at": _iso(read_at),
            "frame_age_s": None if frame_age_s is None else round(frame_age_s, 1),
            "stale": stale,
        },
        "cloud": {"up": s.database_connected, "realtime": s.realtime_connected, "key_refused": s.cloud_auth_error},
        "spool": {"depth": s.spool_depth, "quarantined": s.quarantined, "dropping": s.telemetry_dropping},
        "safety": {
            "interlocks": s.interlocks,
            "blocked_writes": s.interlock_blocks,
            "trips": s.interlock_trips,
            "last_trip": inputs.last_trip,
            "failing": [{"kind": kind, "text": text} for kind, text in inputs.interlocks_failing],
            "safe_state_pending": s.safe_state_pending,
            "watchdog_tripped": watchdog_tripped,
        },
        "problems": problems(inputs, frame_age_s=frame_age_s, watchdog_tripped=watchdog_tripped),
        "groups": groups,
        "valves": valves,
        "run": _run(inputs),
        "runs": [_finished(r) for r in inputs.runs],
        "alarms": _alarms(inputs.alarms),
        "trends": _trends(inputs),
        "links": {"health": "/health", "metrics": "/metrics"},
    }
