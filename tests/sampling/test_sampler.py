"""The sampler: deadlines at start + n·interval (never drifting), a late read makes its tick late (never
skipped), skips only when a whole interval is lost (counted), `ts` the midpoint of the read.

The device is a stand-in with scripted read durations on a fake clock: these tests are about the sampler's
arithmetic, deterministic whatever the box's load, and never assert a wall-clock timing (the PLC path is
covered over real TCP in tests/plc and below).
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime

import pytest

from agent.plc import FrameRead, PlcDevice
from agent.plc.sim import Simulator
from agent.sampling import Frame, MemorySink, Sampler

EPOCH = 1_800_000_000.0  # the fake wall clock's reading at monotonic 0


class FakeClock:
    """Monotonic and wall time that move only when the sampler sleeps or the device reads."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return EPOCH + self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class ScriptedDevice:
    """Answers `read_all` after a scripted duration of fake time, with scripted values."""

    def __init__(
        self, clock: FakeClock, durations: list[float], values: dict[str, object] | None = None, failed: bool = False
    ) -> None:
        self.clock, self.durations, self.values, self.failed = clock, durations, values or {"a": 1.0}, failed
        self.started: list[float] = []

    async def read_all(self) -> FrameRead:
        started = self.clock.now
        self.started.append(started)
        self.clock.now += self.durations[min(len(self.started) - 1, len(self.durations) - 1)]
        await asyncio.sleep(0)
        failed = list(self.values) if self.failed else []
        return FrameRead(dict(self.values), started, self.clock.now - started, 1, failed)  # type: ignore[arg-type]


def sampler_for(device: ScriptedDevice, interval_s: float, sink: MemorySink | None = None, **kw: object) -> Sampler:
    clock = device.clock
    return Sampler(
        device,  # type: ignore[arg-type]
        interval_s=interval_s,
        sink=sink or MemorySink(),
        monotonic=clock.monotonic,
        wall=clock.wall,
        sleep=clock.sleep,
        **kw,  # type: ignore[arg-type]
    )


async def run_reads(durations: list[float], *, interval_s: float, ticks: int) -> tuple[ScriptedDevice, Sampler]:
    device = ScriptedDevice(FakeClock(), durations)
    sampler = sampler_for(device, interval_s)
    await sampler.run(max_ticks=ticks)
    return device, sampler


async def test_reads_never_accumulate_drift() -> None:
    """Each read takes 40 % of the interval; a sleep-after-read loop would slip 0.4 s per tick."""
    device, _ = await run_reads([0.4], interval_s=1.0, ticks=20)
    assert device.started == [float(n) for n in range(20)]


@pytest.mark.parametrize(
    ("durations", "starts", "skipped", "late", "ticks"),
    [
        pytest.param([0.5], [0.0, 1.0, 2.0], 0, 0, [0, 1, 2], id="on-time"),
        pytest.param([1.2, 0.1], [0.0, 1.2, 2.0], 0, 1, [0, 1, 2], id="past-next-deadline-is-late-not-skipped"),
        pytest.param([1.99, 0.005], [0.0, 1.99, 2.0], 0, 1, [0, 1, 2], id="just-inside-the-next-interval-is-late"),
        pytest.param([2.0, 0.1], [0.0, 2.0, 3.0], 1, 1, [0, 2, 3], id="a-whole-interval-lost-is-skipped"),
        pytest.param([2.5, 0.1], [0.0, 2.5, 3.0], 1, 1, [0, 2, 3], id="one-and-a-half-intervals-over-skips-one"),
        pytest.param([3.2, 0.1], [0.0, 3.2, 4.0], 2, 1, [0, 3, 4], id="two-whole-intervals-lost-are-two-skips"),
    ],
)
async def test_a_late_read_makes_its_tick_late_and_only_lost_intervals_are_skipped(
    durations: list[float], starts: list[float], skipped: int, late: int, ticks: list[int]
) -> None:
    device = ScriptedDevice(FakeClock(), durations)
    sink = MemorySink()
    sampler = sampler_for(device, 1.0, sink)
    await sampler.run(max_ticks=3)
    assert device.started == pytest.approx(starts)
    assert [f.tick for f in sink.frames] == ticks
    assert (sampler.stats.skipped, sampler.stats.late) == (skipped, late)


async def test_a_late_tick_reports_how_late_it_started() -> None:
    device = ScriptedDevice(FakeClock(), [1.25, 0.1])
    sink = MemorySink()
    await sampler_for(device, 1.0, sink).run(max_ticks=3)
    assert [f.lateness_s for f in sink.frames] == pytest.approx([0.0, 0.25, 0.0])


async def test_no_burst_after_an_overrun() -> None:
    """After a stall of 5 intervals the sampler takes one late tick, then waits for the next deadline."""
    device, sampler = await run_reads([5.5, 0.1], interval_s=1.0, ticks=4)
    assert device.started == pytest.approx([0.0, 5.5, 6.0, 7.0])
    assert sampler.stats.skipped == 4


async def test_ts_is_the_midpoint_of_the_read_and_read_s_its_duration() -> None:
    device = ScriptedDevice(FakeClock(), [0.008])
    sink = MemorySink()
    await sampler_for(device, 1.0, sink).run(max_ticks=2)
    first, second = sink.frames
    assert first.ts == datetime.fromtimestamp(EPOCH + 0.004, UTC)
    assert second.ts == datetime.fromtimestamp(EPOCH + 1.004, UTC)
    assert first.read_s == pytest.approx(0.008)
    assert first.tick == 0 and second.tick == 1


async def test_every_read_duration_is_observed() -> None:
    device = ScriptedDevice(FakeClock(), [0.003, 0.012, 0.005])
    sampler = sampler_for(device, 1.0)
    seen: list[float] = []
    sampler.read_observers.append(seen.append)
    await sampler.run(max_ticks=3)
    assert seen == pytest.approx([0.003, 0.012, 0.005])
    assert sampler.stats.last_read_s == pytest.approx(0.005)


async def test_frame_intervals_are_observed() -> None:
    device = ScriptedDevice(FakeClock(), [1.5, 0.1])
    sampler = sampler_for(device, 1.0)
    seen: list[float] = []
    sampler.interval_observers.append(seen.append)
    await sampler.run(max_ticks=3)
    assert seen == pytest.approx([1.5, 0.5])


async def test_non_finite_values_are_published_as_null() -> None:
    sink = MemorySink()
    device = ScriptedDevice(FakeClock(), [0.0], {"nan": math.nan, "inf": math.inf, "ok": 1.5, "flag": True})
    await sampler_for(device, 0.01, sink).run(max_ticks=1)
    assert dict(sink.frames[0].values) == {"nan": None, "inf": None, "ok": 1.5, "flag": True}


async def test_failed_reads_are_counted_and_tagged() -> None:
    sink = MemorySink()
    sampler = sampler_for(ScriptedDevice(FakeClock(), [0.0], failed=True), 0.01, sink, run_id=lambda: "run-1")
    await sampler.run(max_ticks=2)
    assert sampler.stats.failed_frames == 2
    assert sink.frames[0].failed_keys == ("a",) and sink.frames[0].run_id == "run-1"


async def test_async_sinks_are_awaited() -> None:
    received: list[int] = []

    async def sink(frame: Frame) -> None:
        received.append(frame.tick)

    device = ScriptedDevice(FakeClock(), [0.0])
    clock = device.clock
    sampler = Sampler(device, interval_s=0.01, sink=sink, monotonic=clock.monotonic, sleep=clock.sleep)  # type: ignore[arg-type]
    await sampler.run(max_ticks=2)
    assert received == [0, 1]


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval_s"):
        sampler_for(ScriptedDevice(FakeClock(), [0.0]), 0)


async def test_samples_the_simulator_over_tcp(simulator: Simulator, device: PlcDevice) -> None:
    sink = MemorySink()
    before = datetime.now(UTC)
    sampler = Sampler(device, interval_s=0.1, sink=sink)
    await sampler.run(max_ticks=3)
    after = datetime.now(UTC)
    assert len(sink.frames) == 3
    assert all(len(f.values) == len(device.map) and not f.failed_keys for f in sink.frames)
    assert all(before <= f.ts <= after for f in sink.frames)  # the system clocks by default
    assert [f.tick for f in sink.frames] == [0, 1, 2]


async def test_the_sampler_is_reading_only_while_a_read_is_in_flight() -> None:
    """The shipper's quiet gate: `wait_idle` returns at once between reads and waits out a read in flight."""
    clock = FakeClock()
    release = asyncio.Event()
    seen: list[bool] = []

    class GatedDevice(ScriptedDevice):
        async def read_all(self) -> FrameRead:
            seen.append(sampler.reading)
            await release.wait()
            return await super().read_all()

    device = GatedDevice(clock, [0.001])
    sampler = sampler_for(device, 1.0)
    assert not sampler.reading
    await sampler.wait_idle(timeout_s=10)  # idle: returns at once
    running = asyncio.create_task(sampler.run(max_ticks=1))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(sampler.wait_idle(timeout_s=10))
    await asyncio.sleep(0)
    assert sampler.reading and not waiter.done()
    release.set()
    await running
    await waiter
    assert seen == [True] and not sampler.reading


async def test_waiting_for_idle_is_bounded_when_a_read_hangs() -> None:
    clock = FakeClock()

    class HangingDevice(ScriptedDevice):
        async def read_all(self) -> FrameRead:
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    sampler = sampler_for(HangingDevice(clock, [0.0]), 1.0)
    running = asyncio.create_task(sampler.run(max_ticks=1))
    await asyncio.sleep(0)
    await sampler.wait_idle(timeout_s=0.01)  # returns, no error
    assert sampler.reading
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert not sampler.reading  # a cancelled read leaves the gate open


async def test_work_that_needs_room_waits_out_a_read_that_is_about_to_start() -> None:
    """A 10 ms render started 2 ms before a tick would hold that read's replies: with `room_s` it waits for the
    read to end instead. Ordering only (which read had ended when the waiter went ahead), never a timing."""
    ended: list[int] = []
    first_ended = asyncio.Event()

    class CountingDevice:
        async def read_all(self) -> FrameRead:
            started = asyncio.get_running_loop().time()
            await asyncio.sleep(0.005)
            ended.append(len(ended))
            first_ended.set()
            return FrameRead({"a": 1.0}, started, 0.005, 1, [])

    sampler = Sampler(CountingDevice(), interval_s=1.0, sink=MemorySink())  # type: ignore[arg-type]
    running = asyncio.create_task(sampler.run(max_ticks=2))
    await first_ended.wait()
    await sampler.wait_idle(timeout_s=5, room_s=10.0)  # capped at a quarter interval; ~1 s ahead: goes at once
    assert ended == [0]
    due = sampler._next_deadline
    assert due is not None
    await asyncio.sleep(max(0.0, due - asyncio.get_running_loop().time() - 0.1))  # 0.1 s before the next tick
    await sampler.wait_idle(timeout_s=5, room_s=0.2)
    assert ended == [0, 1]  # it let that read go first
    await running
