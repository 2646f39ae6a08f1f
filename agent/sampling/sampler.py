"""The fixed-rate sampler: one full PLC read per tick, on drift-free monotonic deadlines.

Tick n is due at `start + n·interval`. A late read never shifts later ticks (no accumulated drift). A read
that runs past the next deadline makes that tick late (it starts at once), never skipped; a tick is skipped
only when its whole interval went by without a read starting in it (the read before took over a full
interval more than its own), and every skipped tick is counted (`SamplerStats.skipped`, the
`ald_skipped_ticks_total` metric), instead of bursting to catch up. Late ticks are counted too
(`SamplerStats.late`, `ald_late_ticks_total`).

A frame's `ts` is the wall-clock (UTC) midpoint of its read: the read takes `read_s` seconds (16 Modbus
requests for 500 parameters), and every value in the frame was acquired within `ts ± read_s/2`, the
smallest bound one timestamp can give (docs/DESIGN.md §3, docs/CONTRACT.md `parameter_history`). It is
taken at acquisition, never at publication, so a frame replayed from the spool an hour later still says when
it was measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from agent.plc import FrameRead, PlcDevice, Value

__all__ = ["Frame", "FrameSink", "MemorySink", "Sampler", "SamplerStats"]

#: The sampler's clocks, injectable so tests can run it on a fake clock (never asserting wall-clock timings).
Monotonic = Callable[[], float]
WallClock = Callable[[], float]  # seconds since the epoch, UTC
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Frame:
    """One acquisition as published: non-finite numbers are already None (JSON has no NaN).

    `ts` is the midpoint of the read (every value was acquired within `ts ± read_s / 2`), `read_s` how long
    the full read took, `lateness_s` how long after its deadline the read started.
    """

    ts: datetime
    tick: int
    values: Mapping[str, Value | None]
    read_s: float
    lateness_s: float
    failed_keys: tuple[str, ...] = ()
    run_id: str | None = None


FrameSink = Callable[[Frame], Awaitable[None] | None]


@dataclass
class SamplerStats:
    """Live figures for /health, metrics and the status line."""

    ticks: int = 0
    skipped: int = 0  # ticks whose whole interval passed without a read starting in it
    late: int = 0  # ticks started after the previous read ran past their deadline (taken, not skipped)
    failed_frames: int = 0
    last_read_s: float = 0.0
    last_interval_s: float = 0.0
    lateness_s: deque[float] = field(default_factory=lambda: deque(maxlen=3600))


class MemorySink:
    """Keeps the last `maxlen` frames in memory: a stand-in until frames go to the spool."""

    def __init__(self, maxlen: int = 3600) -> None:
        self.frames: deque[Frame] = deque(maxlen=maxlen)

    def __call__(self, frame: Frame) -> None:
        self.frames.append(frame)


class Sampler:
    """Reads `device` every `interval_s` and hands each `Frame` to `sink`.

    `run_id` (a callable) tags frames taken while a recipe runs. The sink is awaited if it returns an
    awaitable; it must be quick (the spool appends locally), because it sits on the timing path.
    `read_observers` are called with every full read's duration (the metrics' read-latency histogram),
    `interval_observers` with every measured interval between two frames. `monotonic`, `wall` and `sleep` are
    the clocks (defaults: the system's), replaceable by a fake clock in tests.
    """

    def __init__(
        self,
        device: PlcDevice,
        *,
        interval_s: float,
        sink: FrameSink,
        run_id: Callable[[], str | None] = lambda: None,
        monotonic: Monotonic = time.monotonic,
        wall: WallClock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self.device, self.interval_s, self.sink, self.run_id = device, interval_s, sink, run_id
        self._monotonic, self._wall, self._sleep = monotonic, wall, sleep
        self.stats = SamplerStats()
        #: Called with every measured interval between two frames, seconds (the metrics' distribution).
        self.interval_observers: list[Callable[[float], None]] = []
        #: Called with every full read's duration, seconds (the metrics' read-latency histogram).
        self.read_observers: list[Callable[[float], None]] = []
        self._idle = asyncio.Event()  # set while no read is in flight
        self._idle.set()
        self._next_deadline: float | None = None  # monotonic time the next read is due, while sampling

    @property
    def reading(self) -> bool:
        """A full read is in flight."""
        return not self._idle.is_set()

    async def wait_idle(self, *, timeout_s: float, room_s: float = 0.0) -> None:
        """Return once no read is in flight and the next one is not due within `room_s` (capped at a quarter
        of the interval), or after `timeout_s` whatever happens (never an error).

        CPU-heavy duties on the same event loop (the shipper's decoding, encoding and HTTP, a /metrics render)
        await this before each piece of work, so it falls between two PLC reads instead of between the Modbus
        round trips of one: a read's latency is then the PLC's, not the loop's. `room_s` is how long the work
        may take: a 10 ms render that starts 2 ms before a tick would hold that read's replies for 8 ms, so it
        waits for that read to end instead. The timeout bounds the wait when a read hangs on a dead link (the
        PLC timeout), or when the interval leaves no room."""
        room_s = min(room_s, self.interval_s / 4)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while True:
                    if not self._idle.is_set():
                        await self._idle.wait()
                        continue
                    due = self._next_deadline
                    if due is None or room_s <= 0:
                        return
                    ahead = due - self._monotonic()
                    if ahead >= room_s or ahead < 0:  # room enough; or the read is late: it cannot be helped
                        return
                    await self._sleep(ahead)
                    await asyncio.sleep(0)  # the sampler, woken at the same deadline, starts its read first

    async def run(self, *, max_ticks: int | None = None) -> None:
        """Sample until cancelled (or `max_ticks` frames were taken)."""
        start = self._monotonic()
        n = 0
        previous: float | None = None
        while max_ticks is None or self.stats.ticks < max_ticks:
            n = self._next_tick(start, n)
            deadline = start + n * self.interval_s
            self._next_deadline = deadline
            delay = deadline - self._monotonic()
            if delay > 0:
                await self._sleep(delay)
            elif n > 0:
                self.stats.late += 1
            began = self._monotonic()
            frame = await self._acquire(n, lateness=began - deadline)
            if previous is not None:
                self.stats.last_interval_s = began - previous
                for observe in self.interval_observers:
                    observe(self.stats.last_interval_s)
            previous = began
            result = self.sink(frame)
            if result is not None:
                await result
            n += 1

    def _next_tick(self, start: float, n: int) -> int:
        """Tick `n`, or a later one when tick n's whole interval (and maybe more) is already over: those ticks
        are skipped and counted. A tick whose deadline passed but whose interval has not is taken late."""
        current = math.floor((self._monotonic() - start) / self.interval_s)
        if current > n:
            self.stats.skipped += current - n
            return current
        return n

    async def _acquire(self, tick: int, *, lateness: float) -> Frame:
        wall, before = self._wall(), self._monotonic()
        self._idle.clear()
        try:
            read: FrameRead = await self.device.read_all()
        finally:
            self._idle.set()
        after = self._monotonic()
        # The midpoint of the read on the wall clock: both clocks are read once, together, before the read.
        ts = datetime.fromtimestamp(wall + (after - before) / 2, UTC)
        self.stats.ticks += 1
        self.stats.last_read_s = read.duration_s
        self.stats.lateness_s.append(lateness)
        for observe in self.read_observers:
            observe(read.duration_s)
        if read.failed_keys:
            self.stats.failed_frames += 1
        values = {k: _publishable(v) for k, v in read.values.items()}
        return Frame(ts, tick, values, read.duration_s, lateness, tuple(read.failed_keys), self.run_id())


def _publishable(value: Value | None) -> Value | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
