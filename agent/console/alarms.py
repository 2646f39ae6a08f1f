"""What the console needs of a process alarm, and where alarms come from: a Protocol, not the alarms package.

The console only reads alarms, so it depends on their shape rather than on the code that raises them: an
alarm source is any `Callable[[], Sequence[AlarmLike]]` (the app connects the alarm evaluator's `active`;
until one exists, `no_alarms`). `AlarmLike` is structural: any object with these attributes fits, frozen
dataclass or row-backed record alike, and the console's tests use plain fakes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

__all__ = ["ALARM_STATES", "AlarmLike", "AlarmSource", "no_alarms"]

#: ISA-18.2 states an alarm in the console can be in, with the words an operator reads.
ALARM_STATES = {
    "active_unacked": "ACTIVE · unacknowledged",
    "active_acked": "active · acknowledged",
    "cleared_unacked": "cleared · unacknowledged",
}


class AlarmLike(Protocol):
    """One alarm as the console shows it (read-only attributes)."""

    @property
    def id(self) -> str: ...
    @property
    def key(self) -> str: ...  # the parameter (or interlock) it watches
    @property
    def kind(self) -> str: ...  # e.g. "high", "low_low", "interlock"
    @property
    def severity(self) -> str: ...  # e.g. "critical", "high", "medium", "low"
    @property
    def state(self) -> str: ...  # one of ALARM_STATES
    @property
    def value(self) -> float | None: ...
    @property
    def limit(self) -> float | None: ...
    @property
    def message(self) -> str: ...
    @property
    def raised_at(self) -> datetime: ...
    @property
    def acked_at(self) -> datetime | None: ...
    @property
    def acked_by(self) -> str | None: ...
    @property
    def cleared_at(self) -> datetime | None: ...


AlarmSource = Callable[[], Sequence[AlarmLike]]


def no_alarms() -> Sequence[AlarmLike]:
    """The source while no alarm evaluator is connected: nothing is active."""
    return ()
