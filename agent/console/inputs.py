"""What the console's view is built from: one frozen record of plain data, taken at one instant."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from agent.console.alarms import AlarmLike
from agent.console.memory import CurrentRun, FinishedRun
from agent.plc import RegisterMap
from agent.sampling import Frame
from agent.status import AgentSnapshot

__all__ = ["ConsoleInputs"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsoleInputs:
    """What the view is built from, taken by the HTTP handler at one instant."""

    now: datetime
    snapshot: AgentSnapshot
    health_status: str
    health_reasons: Sequence[str]
    machine_name: str | None
    register_map: RegisterMap
    frame: Frame | None  # the last frame the sampler produced (a failed read: its values are None)
    last_values: Mapping[str, object] = field(default_factory=dict)  # each key's last value that was read
    values_at: datetime | None = None  # when the last frame with any readable value was taken
    run: CurrentRun | None
    runs: Sequence[FinishedRun]
    alarms: Sequence[AlarmLike]
    owner: str  # "this agent", "another agent", "nobody", "unknown"
    last_trip: str | None = None  # the last trip interlock's explanation (this agent's lifetime)
    #: Interlocks whose conditions the last readings do not meet: (kind "permit"/"trip", explanation).
    interlocks_failing: Sequence[tuple[str, str]] = ()
    spool_depth_before: int | None = None  # the spool's depth SPOOL_WINDOW_S ago
    trend_keys: Sequence[str] = ()
    trend_rows: Sequence[tuple[float, Sequence[float | None]]] = field(default_factory=tuple)
