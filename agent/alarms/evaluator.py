"""The limit evaluator: one frame of values in, the alarms to raise and to clear out. Pure.

Each limit is a three-state machine, fed with the frame's values and its monotonic time (passed in, so the
tests are exact and nothing here reads a clock):

    normal ──beyond the limit──▶ pending ──still beyond after on_delay_ms──▶ active
      ▲                            │                                         │
      └──────back inside───────────┘◀──────back inside by the deadband───────┘

- **on-delay applies to raising**: a value must stay beyond its limit for `on_delay_ms` (0: the first frame);
  a shorter excursion raises nothing.
- **deadband applies to clearing**: an active alarm clears only once the value is back inside by the deadband,
  so a value hovering at the limit raises one alarm, not one per frame.
- **an unreadable value changes nothing** (None, NaN, ±inf, a boolean): it neither raises nor clears (a dead
  gauge is not a recovered process), and a pending limit waits for the next readable frame.
- a limit removed from the set while its alarm is active clears it (reported with `removed=True`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from agent.alarms.model import AlarmKind, AlarmLimit, LimitSet

__all__ = ["Cleared", "LimitEvaluator", "Raised"]

#: Frame times are floats (1.1 → 1.2 s is 99.99… ms): a microsecond of slack on the on-delay.
_SLACK_MS = 1e-3

Value = float | int | bool


class _Phase(Enum):
    PENDING = "pending"
    ACTIVE = "active"


@dataclass(frozen=True, slots=True)
class Raised:
    limit: AlarmLimit
    value: float


@dataclass(frozen=True, slots=True)
class Cleared:
    key: str
    kind: AlarmKind
    value: float | None  # None when the limit was removed rather than returned to
    removed: bool = False


def readable(value: Value | None) -> float | None:
    """The value as a number, or None when it cannot say anything about a limit."""
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass
class LimitEvaluator:
    """Feed it frames; it says which alarms start and which end. Untracked limits are normal."""

    limits: LimitSet = field(default_factory=LimitSet)
    _phase: dict[tuple[str, AlarmKind], tuple[_Phase, float]] = field(default_factory=dict)

    def observe(self, values: Mapping[str, Value | None], now_s: float) -> list[Raised | Cleared]:
        moves: list[Raised | Cleared] = []
        for limit in self.limits.limits:
            if limit.key not in values:
                continue  # not in this frame's map: nothing known
            value = readable(values[limit.key])
            if value is None:
                continue
            slot = (limit.key, limit.kind)
            phase = self._phase.get(slot)
            if phase is not None and phase[0] is _Phase.ACTIVE:
                if limit.returned(value):
                    del self._phase[slot]
                    moves.append(Cleared(limit.key, limit.kind, value))
                continue
            if not limit.exceeded(value):
                self._phase.pop(slot, None)  # a short excursion ends here, unraised
                continue
            since = now_s if phase is None else phase[1]
            if (now_s - since) * 1000 >= limit.on_delay_ms - _SLACK_MS:
                self._phase[slot] = (_Phase.ACTIVE, since)
                moves.append(Raised(limit, value))
            else:
                self._phase[slot] = (_Phase.PENDING, since)
        return moves

    def set_limits(self, limits: LimitSet) -> list[Cleared]:
        """Use a new set from now on. Active alarms of limits it no longer has are cleared; pending ones of
        changed limits start their on-delay again; an active alarm of a changed limit stays until the new limit
        says it is back (the next frame)."""
        removed: list[Cleared] = []
        for slot, (phase, _since) in list(self._phase.items()):
            new = limits.get(*slot)
            old = self.limits.get(*slot)
            if new is None:
                del self._phase[slot]
                if phase is _Phase.ACTIVE:
                    removed.append(Cleared(slot[0], slot[1], None, removed=True))
            elif phase is _Phase.PENDING and new != old:
                del self._phase[slot]
        self.limits = limits
        return removed

    def reset(self) -> None:
        """Forget every phase (every limit normal again)."""
        self._phase.clear()

    def mark_active(self, slots: Iterable[tuple[str, AlarmKind]], now_s: float) -> None:
        """Alarms known to be active (restored after a restart): they clear only by the usual rule."""
        for slot in slots:
            self._phase[slot] = (_Phase.ACTIVE, now_s)

    def active(self) -> set[tuple[str, AlarmKind]]:
        return {slot for slot, (phase, _) in self._phase.items() if phase is _Phase.ACTIVE}
