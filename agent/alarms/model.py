"""Process alarms as data: limits, alarm occurrences and their ISA-18.2 states. Pure.

An alarm's state is a function of two facts, each of which happens at most once: was it acknowledged, and has
its value returned to normal. So the four states and their legal moves follow from the facts, and two
partial views of one alarm (the cloud's row and the agent's cache) merge by taking the union of what happened:

    active_unacked ──ack──▶ active_acked ──return to normal──▶ closed
          └──return to normal──▶ cleared_unacked ──ack──────────┘

A return to normal does not reactivate anything: the next excursion is a new alarm (its own id, raised time
and value), so each occurrence is one row an engineer can audit.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "LIMIT_KINDS",
    "SEVERITIES",
    "ActiveAlarm",
    "AlarmKind",
    "AlarmLimit",
    "AlarmState",
    "LimitSet",
    "Severity",
    "acknowledge",
    "alarm_from_row",
    "alarm_row",
    "merge_alarms",
    "parse_alarm_limits",
    "return_to_normal",
    "state_of",
]

MAX_ON_DELAY_MS = 3_600_000
MAX_MESSAGE_CHARS = 2000


class Severity(StrEnum):
    """Four priorities, as ISA-18.2 recommends (few enough that each means something)."""

    CRITICAL = "critical"  # act now: the process or the tool is at risk (high-high, low-low, trips)
    HIGH = "high"  # act soon: the process is leaving its window
    MEDIUM = "medium"  # look into it during the run
    LOW = "low"  # worth knowing: a gauge reading oddly, a slow drift


#: Most severe first (the order the console and the metrics list them).
SEVERITIES: tuple[Severity, ...] = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW)


class AlarmKind(StrEnum):
    LOW_LOW = "low_low"
    LOW = "low"
    HIGH = "high"
    HIGH_HIGH = "high_high"
    TRIP = "trip"  # a trip interlock fired; the alarm's key is the interlock's name


LIMIT_KINDS: tuple[AlarmKind, ...] = (AlarmKind.LOW_LOW, AlarmKind.LOW, AlarmKind.HIGH, AlarmKind.HIGH_HIGH)


class AlarmState(StrEnum):
    ACTIVE_UNACKED = "active_unacked"
    ACTIVE_ACKED = "active_acked"
    CLEARED_UNACKED = "cleared_unacked"
    CLOSED = "closed"  # acknowledged and back to normal: no longer shown as open


def state_of(*, acked: bool, cleared: bool) -> AlarmState:
    """The state the two facts make."""
    if cleared:
        return AlarmState.CLOSED if acked else AlarmState.CLEARED_UNACKED
    return AlarmState.ACTIVE_ACKED if acked else AlarmState.ACTIVE_UNACKED


@dataclass(frozen=True, slots=True)
class AlarmLimit:
    """One limit of one parameter: beyond `threshold` for `on_delay_ms` raises; back by `deadband` clears."""

    key: str
    kind: AlarmKind
    threshold: float
    severity: Severity
    deadband: float = 0.0
    on_delay_ms: float = 0.0

    @property
    def upper(self) -> bool:
        return self.kind in (AlarmKind.HIGH, AlarmKind.HIGH_HIGH)

    def exceeded(self, value: float) -> bool:
        """Strictly beyond the limit (a value exactly at a high limit is still normal)."""
        return value > self.threshold if self.upper else value < self.threshold

    def returned(self, value: float) -> bool:
        """Back inside by at least the deadband: only then does an active alarm clear (no chatter)."""
        if self.upper:
            return value <= self.threshold - self.deadband
        return value >= self.threshold + self.deadband

    def describe(self) -> str:
        word = {AlarmKind.LOW_LOW: "low-low", AlarmKind.LOW: "low", AlarmKind.HIGH: "high"}.get(self.kind, "high-high")
        side = ">" if self.upper else "<"
        return f"{self.key} {word} ({side} {self.threshold:g})"


@dataclass(frozen=True, slots=True)
class LimitSet:
    """A machine's alarm limits, by (key, kind)."""

    limits: tuple[AlarmLimit, ...] = ()

    def __len__(self) -> int:
        return len(self.limits)

    def get(self, key: str, kind: AlarmKind) -> AlarmLimit | None:
        for limit in self.limits:
            if limit.key == key and limit.kind is kind:
                return limit
        return None

    def keys(self) -> list[str]:
        return sorted({limit.key for limit in self.limits})


def parse_alarm_limits(rows: Iterable[Mapping[str, Any]]) -> tuple[LimitSet, list[str]]:
    """`alarm_limits` rows → the enabled limits, and every problem found (a set with problems is refused whole).

    The database checks the same rules; this is the agent's own check of what it is about to act on (a cache
    file may be old, a self-hosted schema may lag)."""
    limits: list[AlarmLimit] = []
    problems: list[str] = []
    rows_seen = list(rows)
    for row in rows_seen:
        key = row.get("key")
        where = f"alarm limits of {key!r}" if isinstance(key, str) else "alarm limits row"
        if not isinstance(key, str) or not key:
            problems.append(f"{where}: no key")
            continue
        if row.get("enabled") is False:
            continue
        try:
            limits.extend(_parse_row(row, key))
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    keys = [row.get("key") for row in rows_seen]
    for key in sorted({k for k in keys if isinstance(k, str) and keys.count(k) > 1}):
        problems.append(f"alarm limits of {key!r}: more than one row")
    return LimitSet(tuple(limits)), problems


def _finite(value: object, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _parse_row(row: Mapping[str, Any], key: str) -> list[AlarmLimit]:
    deadband = _finite(row.get("deadband", 0), "deadband") or 0.0
    if deadband < 0:
        raise ValueError(f"deadband must be >= 0, got {deadband:g}")
    delay = _finite(row.get("on_delay_ms", 0), "on_delay_ms") or 0.0
    if not 0 <= delay <= MAX_ON_DELAY_MS:
        raise ValueError(f"on_delay_ms must be within 0..{MAX_ON_DELAY_MS}, got {delay:g}")
    found: list[AlarmLimit] = []
    for kind in LIMIT_KINDS:
        threshold = _finite(row.get(kind.value), kind.value)
        if threshold is None:
            continue
        raw_severity = row.get(f"{kind.value}_severity") or (
            "critical" if kind in (AlarmKind.LOW_LOW, AlarmKind.HIGH_HIGH) else "medium"
        )
        try:
            severity = Severity(raw_severity)
        except ValueError:
            allowed = ", ".join(SEVERITIES)
            raise ValueError(f"{kind.value}_severity must be one of {allowed}, got {raw_severity!r}") from None
        found.append(AlarmLimit(key, kind, threshold, severity, deadband=deadband, on_delay_ms=delay))
    if not found:
        raise ValueError("no limit set (low_low, low, high or high_high)")
    ordered = sorted(found, key=lambda limit: LIMIT_KINDS.index(limit.kind))
    for below, above in itertools.pairwise(ordered):
        if not below.threshold < above.threshold:
            raise ValueError(
                f"{below.kind.value} {below.threshold:g} must be below {above.kind.value} {above.threshold:g}"
            )
    return found


@dataclass(frozen=True, slots=True)
class ActiveAlarm:
    """One alarm occurrence as the agent knows it (an `alarms` row). Frozen: a move makes a new one."""

    id: str
    key: str
    kind: str
    severity: str
    state: str
    value: float | None
    limit: float | None
    message: str
    raised_at: datetime
    acked_at: datetime | None = None
    acked_by: str | None = None
    cleared_at: datetime | None = None
    run_id: str | None = None

    @property
    def active(self) -> bool:
        """Still beyond its limit (acknowledged or not)."""
        return self.cleared_at is None

    @property
    def open(self) -> bool:
        """Shown to the operator: active, or back to normal but not acknowledged yet."""
        return self.state != AlarmState.CLOSED


def acknowledge(alarm: ActiveAlarm, *, at: datetime, by: str) -> ActiveAlarm:
    """The alarm acknowledged (a second acknowledgement changes nothing: the first one's who and when stay)."""
    if alarm.acked_at is not None:
        return alarm
    state = state_of(acked=True, cleared=alarm.cleared_at is not None)
    return replace(alarm, acked_at=at, acked_by=by[:200], state=state.value)


def return_to_normal(alarm: ActiveAlarm, *, at: datetime, note: str | None = None) -> ActiveAlarm:
    """The alarm's condition is over (a second return changes nothing)."""
    if alarm.cleared_at is not None:
        return alarm
    message = alarm.message if note is None else f"{alarm.message} ({note})"[:MAX_MESSAGE_CHARS]
    state = state_of(acked=alarm.acked_at is not None, cleared=True)
    return replace(alarm, cleared_at=at, state=state.value, message=message)


def merge_alarms(a: ActiveAlarm, b: ActiveAlarm) -> ActiveAlarm:
    """Two views of one alarm (same id) → what both know: each fact taken from whichever has it."""
    acked = a if a.acked_at is not None else b
    cleared = a if a.cleared_at is not None else b
    merged = replace(
        a,
        acked_at=acked.acked_at,
        acked_by=acked.acked_by,
        cleared_at=cleared.cleared_at,
        message=max(a.message, b.message, key=len),
    )
    state = state_of(acked=merged.acked_at is not None, cleared=merged.cleared_at is not None)
    return replace(merged, state=state.value)


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def alarm_row(alarm: ActiveAlarm, *, machine_id: str) -> dict[str, Any]:
    """The whole `alarms` row (JSON-ready): every spooled record is complete, so any one of them, replayed in
    any batch, leaves the row right."""

    def when(t: datetime | None) -> str | None:
        return None if t is None else t.isoformat()

    return {
        "id": alarm.id,
        "machine_id": machine_id,
        "key": alarm.key,
        "kind": alarm.kind,
        "severity": alarm.severity,
        "state": alarm.state,
        "value": _finite_or_none(alarm.value),
        "limit_value": _finite_or_none(alarm.limit),
        "message": alarm.message[:MAX_MESSAGE_CHARS],
        "run_id": alarm.run_id,
        "raised_at": when(alarm.raised_at),
        "acked_at": when(alarm.acked_at),
        "acked_by": alarm.acked_by,
        "cleared_at": when(alarm.cleared_at),
    }


def alarm_from_row(row: Mapping[str, Any]) -> ActiveAlarm:
    """An `alarms` row (from Supabase, the spool or the cache) → `ActiveAlarm`. Raises KeyError/ValueError."""

    def when(value: object) -> datetime | None:
        if value is None or isinstance(value, datetime):
            return value
        return datetime.fromisoformat(str(value))

    def number(value: object) -> float | None:
        return None if value is None else float(value)  # type: ignore[arg-type]

    raised = when(row["raised_at"])
    if raised is None:
        raise ValueError("an alarm without raised_at")
    acked_at, cleared_at = when(row.get("acked_at")), when(row.get("cleared_at"))
    return ActiveAlarm(
        id=str(row["id"]),
        key=str(row["key"]),
        kind=AlarmKind(row["kind"]).value,
        severity=Severity(row["severity"]).value,
        state=state_of(acked=acked_at is not None, cleared=cleared_at is not None).value,
        value=number(row.get("value")),
        limit=number(row.get("limit_value")),
        message=str(row.get("message") or ""),
        raised_at=raised,
        acked_at=acked_at,
        acked_by=row.get("acked_by"),
        cleared_at=cleared_at,
        run_id=None if row.get("run_id") is None else str(row["run_id"]),
    )
