"""The console's live side: remembers frames and runs, and builds the view on request. No I/O of its own.

The app connects it: the sampler's frame sink calls `observe`, the run controller's hooks feed `journal`,
and the HTTP server's event stream calls `view` about once a second per open page. Each `view` reads the
agent's snapshot (cheap, in memory) and hands everything to the pure `build_view`.

    console = Console(snapshot=agent.snapshot, register_map=lambda: device.map, ...)
    sampler sink:  console.observe(frame)
    run hooks:     console.journal.step_started / step_ended / run_ended
    /events:       console.view(since=last_row_sent)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from agent.console.alarms import AlarmSource, no_alarms
from agent.console.inputs import ConsoleInputs
from agent.console.memory import RunJournal, RunLike, SpoolGauge, TrendBuffer
from agent.console.view import build_view, trend_keys
from agent.plc import RegisterMap
from agent.sampling import Frame
from agent.status import AgentSnapshot

__all__ = ["Console"]

HealthVerdict = Callable[[AgentSnapshot], tuple[str, Sequence[str]]]


class Console:
    def __init__(
        self,
        *,
        snapshot: Callable[[], AgentSnapshot],
        health: HealthVerdict,
        register_map: Callable[[], RegisterMap],
        active_run: Callable[[], RunLike | None],
        owner: Callable[[], str] = lambda: "unknown",
        last_trip: Callable[[], str | None] = lambda: None,
        alarms: AlarmSource = no_alarms,
        interlocks_failing: Callable[[Mapping[str, object]], Sequence[tuple[str, str]]] = lambda _values: (),
        machine_name: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._snapshot, self._health, self._map, self._active = snapshot, health, register_map, active_run
        self._owner, self._last_trip, self._clock = owner, last_trip, clock
        self._interlocks_failing = interlocks_failing
        #: Where active alarms come from; may be connected after construction (the alarm evaluator is built later).
        self.alarms = alarms
        self.machine_name = machine_name
        self.journal = RunJournal(clock=clock)
        self.spool = SpoolGauge()
        self.frame: Frame | None = None
        self.last_values: dict[str, object] = {}  # bounded by the map: one entry per key
        self.values_at: datetime | None = None
        self._trend_map: RegisterMap | None = None
        self._trends = TrendBuffer(())

    def observe(self, frame: Frame) -> None:
        """Called for every frame (never blocks): the latest values and, once a second, a trend row."""
        self.frame = frame
        readable = {key: value for key, value in frame.values.items() if value is not None}
        if readable:
            self.last_values.update(readable)
            self.values_at = frame.ts
        register_map = self._map()
        if register_map is not self._trend_map:  # a reloaded map may plot other keys: start those trends anew
            keys = trend_keys(register_map)
            if tuple(keys) != self._trends.keys:
                self._trends = TrendBuffer(keys)
            self._trend_map = register_map
        self._trends.observe(frame)

    def stream(self) -> Callable[[], dict[str, Any]]:
        """A reader for one page: the whole trend window first, then only rows it has not had."""
        since: float | None = None

        def next_view() -> dict[str, Any]:
            nonlocal since
            view = self.view(since=since)
            rows = view["trends"]["rows"]
            if rows:
                since = rows[-1][0]
            return view

        return next_view

    def view(self, *, since: float | None = None) -> dict[str, Any]:
        """The page's view model; trend rows newer than `since` only (epoch seconds; None: the whole window)."""
        now = self._clock()
        snapshot = self._snapshot()
        self.spool.note(now.timestamp(), snapshot.spool_depth)
        status, reasons = self._health(snapshot)
        return build_view(
            ConsoleInputs(
                now=now,
                snapshot=snapshot,
                health_status=status,
                health_reasons=reasons,
                machine_name=self.machine_name,
                register_map=self._map(),
                frame=self.frame,
                last_values=self.last_values,
                values_at=self.values_at,
                run=self.journal.current(self._active()),
                runs=self.journal.finished(),
                alarms=self.alarms(),
                owner=self._owner(),
                last_trip=self._last_trip(),
                interlocks_failing=self._interlocks_failing(self.last_values),
                spool_depth_before=self.spool.depth_ago(now.timestamp()),
                trend_keys=self._trends.keys,
                trend_rows=self._trends.since(since),
            )
        )
