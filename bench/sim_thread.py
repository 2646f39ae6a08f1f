"""The reactor simulator inside the bench process, on its own event loop in its own thread.

Why not a child process like the other benches: the valve-pulse measurement must be taken *at the
simulator* (docs/DESIGN.md §8), from `Simulator.valve_events` — the monotonic time at which the simulator
processed each coil write. In-process, those events are read directly; CLOCK_MONOTONIC is system-wide on
Linux, so they compare with the agent's own monotonic stamps in `run_steps.detail` too.

Why a thread with its own loop: the bench's probes (asyncpg, realtime) must not delay the simulator's
handling of a write. The GIL remains shared, so the bench lowers the interpreter's switch interval
(`SWITCH_INTERVAL_S`) for as long as the simulator runs: a busy bench thread then holds the simulator off
for at most that long instead of the default 5 ms. The bench also keeps its own thread idle while a
recipe runs (it only polls the database once a second).
"""

from __future__ import annotations

import asyncio
import sys
import threading
from types import TracebackType

from agent.plc import RegisterMap
from agent.plc.sim import Simulator, ValveEvent

__all__ = ["SWITCH_INTERVAL_S", "SimulatorThread"]

SWITCH_INTERVAL_S = 0.0005
TRIP_POLL_S = 0.02  # how often the thread looks at the PLC's watchdog flag (a trip lasts until the next kick)
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0


class SimulatorThread:
    """``with SimulatorThread(register_map) as sim: sim.port; sim.valve_events(); sim.watchdog_trips``."""

    def __init__(self, register_map: RegisterMap, *, watchdog_timeout_s: float = 5.0) -> None:
        self.register_map, self.watchdog_timeout_s = register_map, watchdog_timeout_s
        self.port = 0
        self.native_id = 0  # the thread's kernel id (its /proc/self/task/<id>/schedstat)
        #: rising edges of the PLC's `watchdog_tripped`, counted on the simulator's loop every TRIP_POLL_S
        self.watchdog_trips = 0
        self._sim: Simulator | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="simulator", daemon=True)
        self._switch_interval = sys.getswitchinterval()

    def __enter__(self) -> SimulatorThread:
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            self.stop()
            raise RuntimeError(f"the simulator did not start within {START_TIMEOUT_S}s")
        if self._error is not None:
            self.stop()
            raise RuntimeError(f"the simulator failed to start: {self._error}") from self._error
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread.is_alive():
            self._thread.join(STOP_TIMEOUT_S)
        sys.setswitchinterval(self._switch_interval)

    def valve_events(self) -> list[ValveEvent]:
        """A copy of every valve coil change so far, taken on the simulator's own loop (no torn reads)."""
        assert self._loop is not None and self._sim is not None
        sim = self._sim

        async def copy() -> list[ValveEvent]:
            return list(sim.valve_events)

        return asyncio.run_coroutine_threadsafe(copy(), self._loop).result(STOP_TIMEOUT_S)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to __enter__ if start-up failed; otherwise the run is over
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.native_id = threading.get_native_id()
        async with Simulator(self.register_map, port=0, watchdog_timeout_s=self.watchdog_timeout_s) as sim:
            self._sim, self.port = sim, sim.port
            watcher = asyncio.create_task(self._count_trips(sim))
            self._ready.set()
            await self._stop.wait()
            watcher.cancel()

    async def _count_trips(self, sim: Simulator) -> None:
        tripped = False
        while True:
            if sim.model.watchdog_tripped and not tripped:
                self.watchdog_trips += 1
            tripped = sim.model.watchdog_tripped
            await asyncio.sleep(TRIP_POLL_S)
