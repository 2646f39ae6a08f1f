"""Trip interlocks on every frame of a run: a condition false for its `hold_ms` stops (or holds) the run.

The sampler's frames pass here before they are published. Each run gets a fresh `TripMonitor` (and so does an
interlock set edited mid-run: a tightened rule applies at once), so a trip fires once per run; a frame with an
unreadable value counts as a violation (fail-safe: a dead pressure gauge must not let a run go on blind).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from loguru import logger

from agent.safety.interlocks import InterlockSet, TripAction, TripMonitor, Violation
from agent.safety.runs import RunController
from agent.sampling import Frame

__all__ = ["TripWatch"]


class TripWatch:
    def __init__(
        self,
        runs: RunController,
        interlocks: Callable[[], InterlockSet],
        *,
        on_trip: Callable[[Violation], None] = lambda _v: None,
    ) -> None:
        self.runs, self.interlocks, self.on_trip = runs, interlocks, on_trip
        self.trips = 0
        self.last: Violation | None = None
        self._run_id: str | None = None
        self._monitor: TripMonitor | None = None

    def observe(self, frame: Frame) -> None:
        """Called for every frame (never blocks)."""
        run = self.runs.active
        if run is None:
            self._run_id, self._monitor = None, None
            return
        interlocks = self.interlocks()
        if self._monitor is None or self._run_id != run.id or self._monitor.interlocks is not interlocks:
            self._run_id, self._monitor = run.id, TripMonitor(interlocks)
        for violation in self._monitor.observe(frame.values, time.monotonic()):
            self.trips += 1
            self.last = violation
            reason = f"tripped by {violation.explain()}"
            logger.bind(area="recipe").error("run {}: {}", run.id, reason)
            if violation.interlock.action is TripAction.HOLD:
                self.runs.hold(reason)
            else:
                self.runs.stop(reason)
            self.on_trip(violation)
