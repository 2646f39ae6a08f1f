"""The live alarm book: every open alarm of the machine, fed by the sampler's frames and the trip interlocks.

- `observe(frame)` runs the limit evaluator (agent.alarms.evaluator) on every frame the agent publishes, and
  clears trip alarms whose interlock holds again; it never blocks (records go to the spool writer's queue).
- `on_trip(violation)` is `TripWatch`'s hook: a trip interlock that fired is a critical alarm, keyed by the
  interlock's name, until its conditions hold again on a frame (an unreadable value does not hold).
- `acknowledge(target, by=…)` is what the `ack_alarm` command does: one alarm by id, or every unacknowledged
  one; an id that is not open is a `CommandError` (the command is rejected with that reason).
- every move (raise, acknowledge, return to normal) submits the alarm's whole row as an `alarm` record: the
  spool keeps it through a cloud outage and the shipper upserts it by id, in order (agent/spool/routes.py).
- restart: `restore` takes the open alarms `agent.alarms.store` found (Supabase, the local cache, the spool's
  unshipped records); active limit alarms are marked active in the evaluator, so they clear by the usual rule
  instead of being raised a second time, and `changed` tells the cache writer to save the book.
- one book per machine: only the agent that publishes the machine's telemetry evaluates (app.py); the other
  color calls `standby()` on its frames. Its book may go stale meanwhile (the publisher raises, acknowledges
  and closes alarms), so the first frame after it becomes the publisher asks for a resync (`resync_needed`,
  served by `agent.alarms.store.keep_in_sync`) and evaluates nothing until `restore` has replaced the book with
  what Supabase knows: a hand-over neither raises an alarm twice nor reopens one the other color closed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from loguru import logger

from agent.alarms.evaluator import Cleared, LimitEvaluator, Raised
from agent.alarms.model import (
    SEVERITIES,
    ActiveAlarm,
    AlarmKind,
    AlarmState,
    LimitSet,
    Severity,
    acknowledge,
    alarm_row,
    parse_alarm_limits,
    return_to_normal,
)
from agent.errors import CommandError
from agent.parameters import ConfigRows
from agent.safety import InterlockSet, Violation
from agent.sampling import Frame
from agent.spool import SpoolWriter

__all__ = ["ACK_ALL", "AlarmBook"]

#: The `ack_alarm` payload that acknowledges every unacknowledged alarm.
ACK_ALL = "all"
#: Closed alarms are forgotten; a bound on open ones keeps a chattering tool from growing the book forever
#: (the oldest closed-by-overflow ones are still in Supabase).
MAX_OPEN_ALARMS = 1000


class AlarmBook:
    def __init__(
        self,
        writer: SpoolWriter,
        *,
        machine_id: str,
        interlocks: Callable[[], InterlockSet] = InterlockSet,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.writer, self.machine_id, self.interlocks, self.clock = writer, machine_id, interlocks, clock
        self.evaluator = LimitEvaluator()
        self.problem: str | None = None
        self.origin = "none"
        self.raised = 0
        #: Set on every change, for the cache writer (`agent.alarms.store.keep_cached`).
        self.changed = asyncio.Event()
        #: Set when the book must be reloaded before it may evaluate again (`agent.alarms.store.keep_in_sync`).
        self.resync_needed = asyncio.Event()
        self._stale = False
        self._run_id: str | None = None  # the run of the last frame evaluated (a trip's alarm names it)
        self._open: dict[str, ActiveAlarm] = {}  # id → alarm, oldest first
        self._by_slot: dict[tuple[str, AlarmKind], str] = {}  # active alarm of each (key, kind) → its id

    # --- what the console, /health and the metrics read -----------------------------------------------

    def active(self) -> list[ActiveAlarm]:
        """Every open alarm (active, or back to normal but unacknowledged), newest first."""
        return sorted(self._open.values(), key=lambda a: a.raised_at, reverse=True)

    def get(self, alarm_id: str) -> ActiveAlarm | None:
        return self._open.get(alarm_id)

    def counts(self) -> dict[str, int]:
        """Active alarms (acknowledged or not) by severity; every severity present, 0 when none."""
        counts = dict.fromkeys((s.value for s in SEVERITIES), 0)
        for alarm in self._open.values():
            if alarm.active:
                counts[alarm.severity] = counts.get(alarm.severity, 0) + 1
        return counts

    def unacknowledged(self) -> int:
        return sum(1 for a in self._open.values() if a.acked_at is None)

    @property
    def limits(self) -> LimitSet:
        return self.evaluator.limits

    @property
    def stale(self) -> bool:
        """True while the book waits for a resync (it became the publisher after a time as standby)."""
        return self._stale

    # --- configuration ------------------------------------------------------------------------------------

    def offer(self, source: ConfigRows) -> None:
        """A freshly loaded set of `alarm_limits` rows: used, or refused whole with a reason (the set in use is
        kept, as for interlocks)."""
        limits, problems = parse_alarm_limits(source.rows)
        if source.problem or problems:
            self.problem = source.problem or "alarm limits refused: " + "; ".join(problems)[:500]
            logger.bind(area="alarms").error("{} (keeping {} limits in use)", self.problem, len(self.limits))
            return
        self.problem, self.origin = None, source.origin
        for cleared in self.evaluator.set_limits(limits):
            self._clear(cleared.key, cleared.kind, note="limit removed")
        logger.bind(area="alarms").info("alarm limits: {} in force ({})", len(limits), source.origin)

    def restore(self, alarms: Iterable[ActiveAlarm]) -> None:
        """Replace the book by the open alarms found at start or on a resync (call after the first `offer`)."""
        now_s = time.monotonic()
        self._open.clear()
        self._by_slot.clear()
        self.evaluator.reset()  # what is active comes from `alarms`
        self._stale = False
        self.resync_needed.clear()
        for alarm in alarms:
            if not alarm.open:
                continue
            self._open[alarm.id] = alarm
            if alarm.active and alarm.kind != AlarmKind.TRIP:
                slot = (alarm.key, AlarmKind(alarm.kind))
                if self.limits.get(*slot) is None:
                    self._update(return_to_normal(alarm, at=self.clock(), note="limit removed"))
                    continue
                self._by_slot[slot] = alarm.id
                self.evaluator.mark_active([slot], now_s)
        if self._open:
            logger.bind(area="alarms").info("alarms: {} open alarm(s) restored", len(self._open))
        self.changed.set()

    # --- frames and trips -----------------------------------------------------------------------------

    def observe(self, frame: Frame) -> None:
        """Evaluate one published frame (never blocks)."""
        if self._stale:
            self.resync_needed.set()
            return
        self._run_id = frame.run_id
        for move in self.evaluator.observe(frame.values, time.monotonic()):
            if isinstance(move, Raised):
                self._raise_limit(move, frame)
            elif isinstance(move, Cleared):
                self._clear(move.key, move.kind)
        self._clear_trips(frame)

    def standby(self) -> None:
        """A frame this agent does not publish: the other color keeps the book; ours goes stale."""
        self._stale = True

    def on_trip(self, violation: Violation) -> None:
        """A trip interlock fired (TripWatch's hook): a critical alarm, unless one is already active for it."""
        name = violation.interlock.name
        slot = (name, AlarmKind.TRIP)
        if slot in self._by_slot:
            return
        value: float | None = None
        limit: float | None = None
        if violation.failing:
            condition, actual = violation.failing[0]
            if isinstance(actual, int | float) and not isinstance(actual, bool):
                value = float(actual)
            bound = condition.value if condition.value is not None else condition.low
            if isinstance(bound, int | float) and not isinstance(bound, bool):
                limit = float(bound)
        self._new(
            key=name,
            kind=AlarmKind.TRIP,
            severity=Severity.CRITICAL,
            value=value,
            limit=limit,
            message=f"trip: {violation.explain()}",
            run_id=self._run_id,  # TripWatch sees each frame just before the book does: the run it stopped
        )

    # --- acknowledgement ------------------------------------------------------------------------------

    def acknowledge(self, target: str, *, by: str) -> list[ActiveAlarm]:
        """Acknowledge alarm `target` (an id) or, with `ACK_ALL`, every unacknowledged one; returns the alarms
        acknowledged now. Raises `CommandError` for an id that is not an open alarm of this machine.
        Acknowledging an alarm twice is not an error: the first acknowledgement's who and when stay."""
        if target == ACK_ALL:
            chosen = [a for a in self._open.values() if a.acked_at is None]
        else:
            alarm = self._open.get(target)
            if alarm is None:
                raise CommandError(
                    f"ack_alarm: no open alarm {target} on this machine (unknown, or already acknowledged and "
                    "back to normal)"
                )
            chosen = [alarm] if alarm.acked_at is None else []
        now = self.clock()
        done = [acknowledge(a, at=now, by=by) for a in chosen]
        for alarm in done:
            self._update(alarm)
            logger.bind(area="alarms").info("alarm {} ({} {}) acknowledged by {}", alarm.id, alarm.key, alarm.kind, by)
        return done

    # --- moves ----------------------------------------------------------------------------------------

    def _raise_limit(self, move: Raised, frame: Frame) -> None:
        limit = move.limit
        self._new(
            key=limit.key,
            kind=limit.kind,
            severity=limit.severity,
            value=move.value,
            limit=limit.threshold,
            message=f"{limit.describe()}: {move.value:g}",
            run_id=frame.run_id,
            at=frame.ts,
        )

    def _new(
        self,
        *,
        key: str,
        kind: AlarmKind,
        severity: Severity,
        value: float | None,
        limit: float | None,
        message: str,
        run_id: str | None,
        at: datetime | None = None,
    ) -> None:
        alarm = ActiveAlarm(
            id=str(uuid.uuid4()),
            key=key,
            kind=kind.value,
            severity=severity.value,
            state=AlarmState.ACTIVE_UNACKED.value,
            value=value,
            limit=limit,
            message=message,
            raised_at=at or self.clock(),
            run_id=run_id,
        )
        self.raised += 1
        self._by_slot[(key, kind)] = alarm.id
        self._update(alarm)
        self._bound()
        logger.bind(area="alarms").warning("alarm raised [{}] {}", alarm.severity, message)

    def _clear(self, key: str, kind: AlarmKind, *, note: str | None = None) -> None:
        alarm_id = self._by_slot.pop((key, kind), None)
        alarm = self._open.get(alarm_id) if alarm_id else None
        if alarm is None:
            return
        cleared = return_to_normal(alarm, at=self.clock(), note=note)
        self._update(cleared)
        logger.bind(area="alarms").info("alarm back to normal: {} {} ({})", key, kind.value, cleared.state)

    def _clear_trips(self, frame: Frame) -> None:
        trips = [slot for slot in self._by_slot if slot[1] is AlarmKind.TRIP]
        if not trips:
            return
        by_name = {i.name: i for i in self.interlocks().trips}
        for name, kind in trips:
            interlock = by_name.get(name)
            if interlock is None:
                self._clear(name, kind, note="interlock no longer in force")
            elif all(c.key in frame.values for c in interlock.conditions) and not interlock.failing(frame.values):
                self._clear(name, kind)

    def _update(self, alarm: ActiveAlarm) -> None:
        if alarm.open:
            self._open[alarm.id] = alarm
        else:
            self._open.pop(alarm.id, None)
        self.writer.submit("alarm", alarm_row(alarm, machine_id=self.machine_id))
        self.changed.set()

    def _bound(self) -> None:
        while len(self._open) > MAX_OPEN_ALARMS:
            oldest = next(iter(self._open.values()))
            self._open.pop(oldest.id)
            logger.bind(area="alarms").warning("alarms: more than {} open; forgetting {}", MAX_OPEN_ALARMS, oldest.id)
