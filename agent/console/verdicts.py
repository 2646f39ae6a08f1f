"""The machine's state at a glance and its degraded conditions, from the console's inputs. Pure.

Rules:
- State: `tripped` (the PLC's watchdog forced its safe state, or the agent has a safe state it could not
  confirm) wins over everything; then the run's own status (`running`, `paused`); `error` while the last run
  failed and no other has started; else `idle`.
- Spool "growing": deeper by `SPOOL_GROWTH` records than `SPOOL_WINDOW_S` ago.
- An interlock the last readings do not meet is listed always, but is a banner only during a run: an idle
  machine routinely fails its permits (pump off, chamber vented), and a banner that is always on is ignored.
- While the PLC is down, or no reading is fresher than `STALE_FRAME_S`, that is the first banner.
"""

from __future__ import annotations

from agent.console.inputs import ConsoleInputs
from agent.console.words import duration_text

__all__ = ["SPOOL_GROWTH", "STALE_FRAME_S", "WATCHDOG_TRIPPED_KEY", "machine_state", "problems"]

WATCHDOG_TRIPPED_KEY = "plc.watchdog_tripped"
SPOOL_GROWTH = 10  # records: a burst of step records ships in well under a second while the cloud is up
STALE_FRAME_S = 5.0  # a reading older than this (or any reading while the PLC is down) is not live


def machine_state(inputs: ConsoleInputs, tripped: bool) -> str:
    if tripped:
        return "tripped"
    if inputs.run is not None and inputs.run.status in ("running", "paused"):
        return inputs.run.status
    if inputs.run is None and inputs.runs and inputs.runs[0].status == "failed":
        return "error"
    return "idle"


def problems(inputs: ConsoleInputs, *, frame_age_s: float | None, watchdog_tripped: bool) -> list[dict[str, str]]:
    s = inputs.snapshot
    out: list[dict[str, str]] = []

    def add(level: str, code: str, text: str) -> None:
        out.append({"level": level, "code": code, "text": text})

    if not s.plc_connected:
        shown = "; the values shown are its last readings, not live" if inputs.values_at else ""
        add("alarm", "plc_down", f"PLC not answering ({s.plc_last_error or 'no connection'}){shown}")
    elif frame_age_s is not None and frame_age_s > STALE_FRAME_S:
        add("alarm", "stale", f"no fresh reading for {duration_text(frame_age_s * 1000)}")
    if watchdog_tripped:
        add("alarm", "watchdog_tripped", "PLC watchdog tripped: the PLC forced its safe state")
    for problem in s.safety_problems:
        add("alarm", "safety", problem)
    if inputs.run is not None and inputs.interlocks_failing:  # idle, an unmet permit is routine: no banner
        for kind, text in inputs.interlocks_failing:
            add("alarm", "interlock_active", f"{kind} not met during the run: {text}")
    if inputs.run is not None and inputs.run.error:
        add("alarm", "run_held", f"run {inputs.run.status}: {inputs.run.error}")
    elif inputs.run is None and inputs.runs and (inputs.runs[0].error or "").startswith("tripped by"):
        add("alarm", "interlock_trip", f"last run stopped: {inputs.runs[0].error}")
    if s.cloud_auth_error:
        add("warn", "key_refused", f"Supabase refuses the agent's key: {s.cloud_auth_error}")
    elif not s.database_connected:
        add("warn", "cloud_away", "cloud away: records wait in the local spool")
    if s.telemetry_dropping:
        add("alarm", "spool_dropping", "spool full: the oldest telemetry is being dropped")
    elif inputs.spool_depth_before is not None and s.spool_depth >= inputs.spool_depth_before + SPOOL_GROWTH:
        add("warn", "spool_growing", f"spool growing: {s.spool_depth:,} records waiting")
    if s.quarantined:
        add("warn", "quarantine", f"{s.quarantined} records quarantined (Supabase refused them)")
    if s.interlock_blocks:
        add("warn", "interlock_blocked", f"interlock permits refused {s.interlock_blocks} writes since start")
    return out
