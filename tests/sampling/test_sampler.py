"""The sampler: deadlines at start + n·interval (never drifting), skipped ticks counted, timestamps at acquisition.

The device is a stand-in with scripted read durations: these tests are about the sampler's arithmetic,
not Modbus (the PLC path is covered over real TCP in tests/plc and below).
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime

import pytest

from agent.plc import FrameRead, PlcDevice
from agent.plc.sim import Simulator
from agent.sampling import Frame, MemorySink, Sampler


class ScriptedDevice:
    """Answers `read_all` after a scripted delay, with scripted values."""

    def __init__(self, durations: list[float], values: dict[str, object] | None = None, failed: bool = False) -> None:
        self.durations, self.values, self.failed = durations, values or {"a": 1.0}, failed
        self.started: list[float] = []

    async def read_all(self) -> FrameRead:
        started = time.monotonic()
        self.started.append(started)
        await asyncio.sleep(self.durations[min(len(self.started) - 1, len(self.durations) - 1)])
        failed = list(self.values) if self.failed else []
        return FrameRead(dict(self.values), started, time.monotonic() - started, 1, failed)  # type: ignore[arg-type]


def sampler_for(device: ScriptedDevice, interval_s: float, sink: MemorySink | None = None, **kw: object) -> Sampler:
    return Sampler(device, interval_s=interval_s, sink=sink or MemorySink(), **kw)  # type: ignore[arg-type]


async def test_reads_never_accumulate_drift() -> None:
    """Each read takes 40 % of the interval; a sleep-after-read loop would slip 20 ms per tick."""
    device = ScriptedDevice([0.02])
    await sampler_for(device, 0.05).run(max_ticks=20)
    t0 = device.started[0]
    lateness = [t - (t0 + n * 0.05) for n, t in enumerate(device.started)]
    assert max(lateness) < 0.03  # an accumulating loop would be 0.38 s late by now
    assert abs(lateness[-1]) < 0.03


async def test_overrun_skips_whole_ticks_and_counts_them() -> None:
    device = ScriptedDevice([0.12, 0.0])  # the first read overruns two deadlines
    sampler = sampler_for(device, 0.05)
    await sampler.run(max_ticks=3)
    assert sampler.stats.skipped == 2
    t0 = device.started[0]
    assert device.started[1] - t0 == pytest.approx(0.15, abs=0.03)  # next free deadline, no burst
    assert device.started[2] - t0 == pytest.approx(0.20, abs=0.03)


async def test_frames_carry_the_acquisition_time_and_tick() -> None:
    sink = MemorySink()
    before = datetime.now(UTC)
    await sampler_for(ScriptedDevice([0.0]), 0.02, sink).run(max_ticks=3)
    after = datetime.now(UTC)
    frames: list[Frame] = list(sink.frames)
    assert [f.tick for f in frames] == [0, 1, 2]
    assert all(before <= f.ts <= after for f in frames)
    assert frames[0].ts < frames[1].ts < frames[2].ts


async def test_non_finite_values_are_published_as_null() -> None:
    sink = MemorySink()
    device = ScriptedDevice([0.0], {"nan": math.nan, "inf": math.inf, "ok": 1.5, "flag": True})
    await sampler_for(device, 0.01, sink).run(max_ticks=1)
    assert dict(sink.frames[0].values) == {"nan": None, "inf": None, "ok": 1.5, "flag": True}


async def test_failed_reads_are_counted_and_tagged() -> None:
    sink = MemorySink()
    sampler = sampler_for(ScriptedDevice([0.0], failed=True), 0.01, sink, run_id=lambda: "run-1")
    await sampler.run(max_ticks=2)
    assert sampler.stats.failed_frames == 2
    assert sink.frames[0].failed_keys == ("a",) and sink.frames[0].run_id == "run-1"


async def test_async_sinks_are_awaited() -> None:
    received: list[int] = []

    async def sink(frame: Frame) -> None:
        received.append(frame.tick)

    await Sampler(ScriptedDevice([0.0]), interval_s=0.01, sink=sink).run(max_ticks=2)  # type: ignore[arg-type]
    assert received == [0, 1]


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval_s"):
        sampler_for(ScriptedDevice([0.0]), 0)


async def test_samples_the_simulator_over_tcp(simulator: Simulator, device: PlcDevice) -> None:
    sink = MemorySink()
    sampler = Sampler(device, interval_s=0.1, sink=sink)
    await sampler.run(max_ticks=3)
    assert len(sink.frames) == 3
    assert all(len(f.values) == len(device.map) and not f.failed_keys for f in sink.frames)
    assert sampler.stats.skipped == 0
