"""The fixed-rate sampler: one full PLC read per tick, on drift-free monotonic deadlines.

Tick n is due at `start + n·interval`. A late read never shifts later ticks (no accumulated drift); a read
that overruns whole intervals skips those ticks and counts them, instead of bursting to catch up. The
frame's wall-clock timestamp is taken at acquisition (UTC), never at publication, so a frame replayed from
the spool an hour later still says when it was measured.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from agent.plc import FrameRead, PlcDevice, Value

__all__ = ["Frame", "FrameSink", "MemorySink", "Sampler", "SamplerStats"]


@dataclass(frozen=True, slots=True)
class Frame:
    """One acquisition as published: non-finite numbers are already None (JSON has no NaN)."""

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
    skipped: int = 0
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
    """

    def __init__(
        self,
        device: PlcDevice,
        *,
        interval_s: float,
        sink: FrameSink,
        run_id: Callable[[], str | None] = lambda: None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self.device, self.interval_s, self.sink, self.run_id = device, interval_s, sink, run_id
        self.stats = SamplerStats()
        #: Called with every measured interval between two frames, seconds (the metrics' distribution).
        self.interval_observers: list[Callable[[float], None]] = []

    async def run(self, *, max_ticks: int | None = None) -> None:
        """Sample until cancelled (or `max_ticks` frames were taken)."""
        start = time.monotonic()
        n = 0
        previous: float | None = None
        while max_ticks is None or self.stats.ticks < max_ticks:
            deadline = start + n * self.interval_s
            delay = deadline - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            began = time.monotonic()
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
            behind = math.floor((time.monotonic() - start) / self.interval_s) - n + 1
            if behind > 0:  # overran whole intervals: skip them, never burst
                self.stats.skipped += behind
                n += behind

    async def _acquire(self, tick: int, *, lateness: float) -> Frame:
        ts = datetime.now(UTC)
        read: FrameRead = await self.device.read_all()
        self.stats.ticks += 1
        self.stats.last_read_s = read.duration_s
        self.stats.lateness_s.append(lateness)
        if read.failed_keys:
            self.stats.failed_frames += 1
        values = {k: _publishable(v) for k, v in read.values.items()}
        return Frame(ts, tick, values, read.duration_s, lateness, tuple(read.failed_keys), self.run_id())


def _publishable(value: Value | None) -> Value | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
