"""The executor against the simulator over real Modbus TCP: sequences of steps and transitions, valve timing
measured at the simulator, pause/resume, stop and cancellation within 100 ms, PLC loss, parameter waits.

Timing bounds are generous (CI shares two cores); precise figures belong to the benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from recipe_support import agent_timed_map, loop, param, purge, recipe, valve, wait

from agent.errors import TransitionError
from agent.plc import PlcDevice, RegisterMap
from agent.plc.sim import Simulator
from agent.recipes import (
    PlanStep,
    Recipe,
    RecipeExecutor,
    RunOutcome,
    RunStatus,
    State,
    StepRecord,
    StepStatus,
    compile_recipe,
    validate,
)
from agent.safety import WriteGate
from tests.support.poll import eventually

#: A pulse is never shorter than planned (the hold runs from the PLC's acknowledgement); how much longer
#: depends on the machine's load, so the bound here is loose and the benchmark reports the real figure.
PULSE_EARLY_MS, PULSE_LATE_MS = 1.0, 25.0
SAFE_WITHIN_S = 0.100
OK, ABORTED, FAILED = StepStatus.SUCCEEDED, StepStatus.ABORTED, StepStatus.FAILED
IDLE, RUNNING, PAUSED, STOPPING, FINISHED = State
MakeSim = Callable[[RegisterMap | None], Awaitable[Simulator]]
Connect = Callable[..., Awaitable[PlcDevice]]


@pytest.fixture(params=[1, 2], ids=["1-connection", "2-connections"])
def connections(request: pytest.FixtureRequest) -> int:
    """Every path out of a run holds over one PLC connection (the default) and over two (`PLC_CONNECTIONS=2`),
    where a recipe's write can travel beside a read and the loss of either socket drops both."""
    return int(request.param)


@pytest.fixture
async def device(simulator: Simulator, connect: Connect, connections: int) -> PlcDevice:
    return await connect(simulator, connections=connections)


@dataclass
class Recorder:
    """Collects what the hooks report, RunEngine-style, so tests compare whole sequences."""

    transitions: list[tuple[State, State]] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    ended: list[StepRecord] = field(default_factory=list)
    on_start: Callable[[PlanStep], None] | None = None
    on_state: Callable[[State], None] | None = None

    def hooks(self) -> dict[str, Any]:
        return {"on_transition": self._transition, "on_step_start": self._start, "on_step_end": self.ended.append}

    def _transition(self, old: State, new: State) -> None:
        self.transitions.append((old, new))
        if self.on_state:
            self.on_state(new)

    def _start(self, step: PlanStep, wall: datetime, mono: float) -> None:
        assert wall.tzinfo is not None and mono <= time.monotonic()
        self.started.append(step.path)
        if self.on_start:
            self.on_start(step)

    @property
    def ends(self) -> list[tuple[str, StepStatus]]:
        return [(r.path, r.status) for r in self.ended]


def _executor(device: PlcDevice, r: Recipe, rec: Recorder) -> RecipeExecutor:
    assert validate(r, device.map) == []
    return RecipeExecutor(device, compile_recipe(r), outputs=WriteGate(device).for_run(), **rec.hooks())


def _is_open(sim: Simulator, n: int) -> bool:
    return bool(sim.image.get(sim.register_map[f"valve_{n}.state"]))


def _pulses(sim: Simulator) -> list[tuple[int, float]]:
    """(valve, held ms) for each open → close pair seen at the simulator."""
    opened: dict[int, float] = {}
    out = []
    for event in sim.valve_events:
        if event.open:
            opened[event.valve] = event.t
        else:
            out.append((event.valve, (event.t - opened.pop(event.valve)) * 1000))
    return out


async def _until_open(sim: Simulator, n: int) -> None:
    await eventually(lambda: any(e.open and e.valve == n for e in sim.valve_events), within=5, every=0.002)


@pytest.mark.parametrize("timed_by", ["plc", "agent"])
async def test_nested_loops_run_to_success(
    timed_by: str, connections: int, make_simulator: MakeSim, connect: Connect
) -> None:
    """The same run whether the PLC times the pulses (the reference map) or the agent does (no pulse timers)."""
    simulator = await make_simulator(None if timed_by == "plc" else agent_timed_map())
    device = await connect(simulator, connections=connections)
    r = recipe(
        param("mfc_1.flow_sp", 10.0, "flow"),
        loop(2, valve(1, 30, "A"), loop(2, wait(5, "w")), purge(20, "p", flow_sccm=10), name="cycle"),
        valve(2, 40, "B"),
    )
    rec = Recorder()
    executor = _executor(device, r, rec)
    outcome = await executor.run()

    assert outcome == RunOutcome(
        status=RunStatus.SUCCEEDED,
        error=None,
        completed_steps=10,
        total_steps=10,
        reason="completed",
        safe_state_ok=True,
        touched=(
            ("mfc_1.flow_sp", "valve_1.pulse_trigger", "valve_1.state", "valve_2.pulse_trigger", "valve_2.state")
            if timed_by == "plc"
            else ("mfc_1.flow_sp", "valve_1.state", "valve_2.state")
        ),
    )
    assert rec.transitions == [(IDLE, RUNNING), (RUNNING, FINISHED)]
    cycle = [("2/1", OK), ("2/2/1", OK), ("2/2/1", OK), ("2/3", OK)]
    assert rec.ends == [("1", OK), *cycle, *cycle, ("3", OK)]
    assert rec.started == [path for path, _ in rec.ends]
    assert [s.seq for s in rec.ended] == list(range(10))
    assert executor.outcome is outcome and executor.state is FINISHED
    assert (executor.progress.completed, executor.progress.total, executor.progress.current) == (10, 10, None)

    pulses = _pulses(simulator)
    assert [v for v, _ in pulses] == [1, 1, 2]
    for (_, held_ms), planned in zip(pulses, [30, 30, 40], strict=True):
        assert planned - PULSE_EARLY_MS <= held_ms <= planned + PULSE_LATE_MS
    first_pulse = rec.ended[1].detail
    assert first_pulse["valve"] == 1 and first_pulse["loops"] == [{"path": "2", "iteration": 1, "count": 2}]
    assert first_pulse["timed_by"] == timed_by
    assert first_pulse["timing_error_ms"] == pytest.approx(first_pulse["held_ms"] - 30)
    assert first_pulse["open_latency_ms"] >= 0
    if timed_by == "plc":  # the PLC's own measurement, and what the simulator saw, agree
        assert first_pulse["held_ms"] == pytest.approx(first_pulse["plc_measured_us"] / 1000)
        assert first_pulse["held_ms"] == pytest.approx(pulses[0][1], abs=0.01)
        assert first_pulse["plc_status"] == "done" and first_pulse["trigger"] >= 1
    else:
        assert first_pulse["close_latency_ms"] >= 0 and "plc_measured_us" not in first_pulse
    assert first_pulse["opened_at"] < first_pulse["closed_at"]  # ISO text in UTC sorts by time
    assert rec.ended[4].path == "2/3" and rec.ended[4].detail["flow_sccm"] == 10.0  # read back from the MFC
    assert not any(_is_open(simulator, n) for n in range(1, 7))
    assert simulator.image.get(simulator.register_map["mfc_1.flow_sp"]) == 0.0  # safe state at the end


async def test_pause_takes_effect_at_the_next_boundary_with_valves_closed(
    simulator: Simulator, device: PlcDevice
) -> None:
    rec = Recorder()
    executor = _executor(device, recipe(loop(3, valve(1, 20, "A"), wait(10, "w"), name="c")), rec)
    paused = asyncio.Event()
    rec.on_start = lambda step: executor.pause() if step.index == 0 else None
    rec.on_state = lambda state: paused.set() if state is PAUSED else None
    task = asyncio.create_task(executor.run())
    await asyncio.wait_for(paused.wait(), 5)

    progress = executor.progress
    assert (progress.state, progress.completed, progress.current and progress.current.path) == (PAUSED, 1, "1/2")
    assert (progress.loop_iteration, progress.loop_count) == (1, 3)
    assert rec.ends == [("1/1", OK)] and not _is_open(simulator, 1)
    events = len(simulator.valve_events)
    await asyncio.sleep(0.1)
    assert len(simulator.valve_events) == events and rec.ends == [("1/1", OK)]  # nothing moves while paused
    executor.pause()  # already paused: no-op

    executor.resume()
    outcome = await asyncio.wait_for(task, 5)
    assert (outcome.status, outcome.completed_steps) == (RunStatus.SUCCEEDED, 6)
    assert rec.transitions == [(IDLE, RUNNING), (RUNNING, PAUSED), (PAUSED, RUNNING), (RUNNING, FINISHED)]


async def test_resume_before_the_boundary_cancels_the_pause(device: PlcDevice) -> None:
    rec = Recorder()
    executor = _executor(device, recipe(wait(10), wait(10)), rec)
    rec.on_start = lambda step: (executor.pause(), executor.resume()) if step.index == 0 else None
    assert (await executor.run()).status is RunStatus.SUCCEEDED
    assert rec.transitions == [(IDLE, RUNNING), (RUNNING, FINISHED)]


async def test_stop_mid_pulse_closes_the_valve_within_100_ms(simulator: Simulator, device: PlcDevice) -> None:
    rec = Recorder()
    executor = _executor(device, recipe(valve(1, 5000, "long pulse"), wait(10)), rec)
    task = asyncio.create_task(executor.run())
    await _until_open(simulator, 1)
    asked = time.monotonic()
    executor.stop("operator stop")
    executor.stop("again")  # a second stop is a no-op
    outcome = await asyncio.wait_for(task, 5)

    closed = next(e for e in simulator.valve_events if e.valve == 1 and not e.open)
    assert closed.t - asked < SAFE_WITHIN_S
    assert (outcome.status, outcome.reason, outcome.completed_steps, outcome.safe_state_ok) == (
        RunStatus.ABORTED,
        "operator stop",
        0,
        True,
    )
    assert rec.ends == [("1", ABORTED)]
    assert rec.transitions == [(IDLE, RUNNING), (RUNNING, STOPPING), (STOPPING, FINISHED)]


class _RecordingDevice(PlcDevice):
    """Records each confirmed write, in order; `mfc_delay_s` makes every MFC write that much slower (a busy
    PLC, a long read-back), which once let a cancel land before the recipe's flow reached the PLC."""

    def __init__(self, device: PlcDevice, *, mfc_delay_s: float = 0.0) -> None:
        super().__init__(device.connection, device.map)
        self.mfc_delay_s = mfc_delay_s
        self.writes: list[tuple[str, object]] = []

    async def write(self, key: str, value: object, **kw: Any) -> Any:
        if key == "mfc_1.flow_sp":
            await asyncio.sleep(self.mfc_delay_s)
        result = await super().write(key, value, **kw)
        self.writes.append((key, value))
        return result


#: The safe state for the default map, in order: every pulse valve closed (by number), then the MFC to 0.
SAFE_STATE_WRITES = [
    *((f"valve_{n}.pulse_trigger", 0) for n in range(1, 7)),
    *((f"valve_{n}.state", False) for n in range(1, 7)),
    ("mfc_1.flow_sp", 0.0),
]


@pytest.mark.parametrize("mfc_delay_s", [0.0, 0.3], ids=["prompt-mfc-write", "slow-mfc-write"])
async def test_cancellation_applies_the_safe_state_and_re_raises(
    simulator: Simulator, device: PlcDevice, mfc_delay_s: float
) -> None:
    """The recipe's flow must be at the PLC before the cancel: otherwise a safe state that forgets the MFC
    still reads 0 there at the end (the test once passed that way whenever the MFC write was slow)."""
    recording = _RecordingDevice(device, mfc_delay_s=mfc_delay_s)
    rec = Recorder()
    plan = compile_recipe(recipe(purge(5000, flow_sccm=20), valve(2, 5000, "pulse")))
    executor = RecipeExecutor(recording, plan, outputs=WriteGate(recording).for_run(), **rec.hooks())
    flow_sp = simulator.register_map["mfc_1.flow_sp"]
    task = asyncio.create_task(executor.run())
    await eventually(lambda: simulator.image.get(flow_sp) == 20.0, within=5, every=0.005)
    # and the recipe's flow write has come back from its read-back (the recorder notes a write only then)
    await eventually(lambda: ("mfc_1.flow_sp", 20.0) in recording.writes, within=5, every=0.005)
    before = len(recording.writes)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task  # returns only after the whole safe state, the slow MFC write included

    assert recording.writes[before:] == SAFE_STATE_WRITES
    assert simulator.image.get(flow_sp) == 0.0
    assert not any(_is_open(simulator, n) for n in range(1, 7))
    assert executor.outcome is not None
    assert (executor.outcome.status, executor.outcome.reason, executor.outcome.safe_state_ok) == (
        RunStatus.ABORTED,
        "cancelled",
        True,
    )
    assert rec.ends == [("1", ABORTED)]
    assert rec.transitions == [(IDLE, RUNNING), (RUNNING, STOPPING), (STOPPING, FINISHED)]


async def test_cancel_mid_pulse_closes_the_valve_within_100_ms(simulator: Simulator, device: PlcDevice) -> None:
    executor = _executor(device, recipe(valve(3, 5000, "pulse")), Recorder())
    task = asyncio.create_task(executor.run())
    await _until_open(simulator, 3)
    asked = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    closed = next(e for e in simulator.valve_events if e.valve == 3 and not e.open)
    assert closed.t - asked < SAFE_WITHIN_S


async def test_plc_lost_mid_pulse_fails_unsafe_then_safe_state_after_replug(
    simulator: Simulator, device: PlcDevice
) -> None:
    rec = Recorder()
    executor = _executor(device, recipe(valve(1, 300, "pulse"), wait(50)), rec)
    task = asyncio.create_task(executor.run())
    await _until_open(simulator, 1)
    await simulator.unplug()
    outcome = await asyncio.wait_for(task, 10)

    assert outcome.status is RunStatus.FAILED
    assert outcome.error is not None and outcome.error.startswith("step 1 'pulse': ")
    assert not outcome.safe_state_ok and outcome.safe_state_errors
    assert rec.ends == [("1", FAILED)] and "close_error" in rec.ended[0].detail
    assert _is_open(simulator, 1)  # the close never reached the PLC: the app must re-apply the safe state

    await simulator.replug()
    assert await device.connection.wait_connected(5)
    result = await WriteGate(device).apply_safe_state()
    assert result.ok and not _is_open(simulator, 1)


async def test_a_close_queued_behind_a_read_the_plc_never_answers_fails_the_run_then_the_safe_state_closes_it(
    make_simulator: MakeSim, connect: Connect
) -> None:
    """The PLC stalls mid-pulse while a sampler read holds the only connection: the close queues behind it, the
    read times out and drops the link, and the close fails as a lost PLC (once an AttributeError of a client that
    was already gone). The run fails naming the step, and the safe state closes the valve when the PLC answers."""
    simulator = await make_simulator(agent_timed_map())
    device = await connect(simulator, timeout_s=1.0)  # one connection: the close must wait for the read
    rec = Recorder()
    executor = _executor(device, recipe(valve(1, 300, "pulse"), wait(50)), rec)
    task = asyncio.create_task(executor.run())
    await _until_open(simulator, 1)
    await asyncio.sleep(0.05)  # the open's reply is on its way; the hold has begun
    simulator.delay_s = 5.0  # the PLC stops answering: nothing it receives from now on is applied in time
    sampler_read = asyncio.create_task(device.read_all())
    outcome = await asyncio.wait_for(task, 10)

    assert outcome.status is RunStatus.FAILED and not outcome.safe_state_ok
    assert outcome.error is not None and outcome.error.startswith("step 1 'pulse': ")
    assert "lost while the request waited" in rec.ended[0].detail["close_error"]
    assert rec.ends == [("1", FAILED)]
    assert all(v is None for v in (await sampler_read).values.values())  # the frame it took is blanked
    assert _is_open(simulator, 1)  # the close never reached the PLC

    simulator.delay_s = 0.0
    assert await device.connection.wait_connected(5)
    assert (await WriteGate(device).apply_safe_state()).ok and not _is_open(simulator, 1)


async def test_plc_lost_during_a_long_pulse_fails_the_run_at_once_not_when_the_hold_ends(
    simulator: Simulator, device: PlcDevice
) -> None:
    """Nobody commands the PLC once the link is gone (its own watchdog takes over): the run must say so now,
    not after the 10 s hold (the longest pulse allowed), so the safe state is re-applied and the dashboard shows
    it as soon as it returns."""
    rec = Recorder()
    executor = _executor(device, recipe(valve(1, 10_000, "long pulse"), wait(50)), rec)
    task = asyncio.create_task(executor.run())
    await _until_open(simulator, 1)
    await simulator.unplug()
    lost_at = time.monotonic()
    outcome = await asyncio.wait_for(task, 10)
    assert time.monotonic() - lost_at < 2.0  # the connection's detection plus one failed close, not 10 s
    assert outcome.status is RunStatus.FAILED and "PLC connection lost during the step" in (outcome.error or "")
    assert rec.ends == [("1", FAILED)] and "close_error" in rec.ended[0].detail
    assert not outcome.safe_state_ok
    await simulator.replug()


async def test_a_plc_blip_between_steps_does_not_fail_the_next_hold(simulator: Simulator, device: PlcDevice) -> None:
    """A loss counts against the step it happened in; a reconnect before the next step leaves that one alone."""
    rec = Recorder()
    executor = _executor(device, recipe(wait(200), wait(400), wait(10)), rec)
    task = asyncio.create_task(executor.run())
    await eventually(lambda: rec.started == ["1"], within=5, every=0.005)
    executor.pause()  # taken after step 1; the PLC blips while the run waits there

    await eventually(lambda: executor.state is PAUSED, within=5)
    await simulator.unplug()
    await eventually(lambda: not device.connection.connected.is_set(), within=5)
    await simulator.replug()
    assert await device.connection.wait_connected(5)
    executor.resume()
    outcome = await asyncio.wait_for(task, 10)
    assert outcome.status is RunStatus.SUCCEEDED, outcome.error
    assert rec.ends == [("1", OK), ("2", OK), ("3", OK)]


async def test_parameter_wait_succeeds_when_the_pv_arrives(simulator: Simulator, device: PlcDevice) -> None:
    rec = Recorder()
    # the simulated MFC follows once the N2 generator is ready (~2 s after start), then within ~1 s
    executor = _executor(device, recipe(param("mfc_1.flow_sp", 20.0, "flow", tolerance=1.0, timeout_ms=8000)), rec)
    outcome = await executor.run()
    assert outcome.status is RunStatus.SUCCEEDED, outcome.error
    detail = rec.ended[0].detail
    assert (detail["pv_key"], detail["read_back"]) == ("mfc_1.flow", 20.0)
    assert detail["pv"] == pytest.approx(20.0, abs=1.0) and detail["polls"] >= 1


async def test_parameter_wait_times_out(simulator: Simulator, device: PlcDevice) -> None:
    rec = Recorder()
    executor = _executor(device, recipe(param("mfc_1.flow_sp", 20.0, "flow", tolerance=0, timeout_ms=300)), rec)
    started = time.monotonic()
    outcome = await executor.run()
    assert time.monotonic() - started < 2
    assert outcome.status is RunStatus.FAILED and outcome.reason == "error"
    assert outcome.error is not None
    assert re.fullmatch(r"step 1 'flow': mfc_1.flow did not reach 20.0 ± 0 within 300 ms \(last .+\)", outcome.error)
    assert rec.ends == [("1", FAILED)]


async def test_a_refused_write_fails_the_run_naming_the_step(simulator: Simulator, device: PlcDevice) -> None:
    rec = Recorder()
    # validation is skipped on purpose: the write path refuses the setpoint itself
    plan = compile_recipe(recipe(valve(1, 10), param("chamber_heater.temperature_sp", 999, "too hot"), wait(10)))
    outcome = await RecipeExecutor(device, plan, outputs=WriteGate(device).for_run(), **rec.hooks()).run()
    assert outcome.status is RunStatus.FAILED and outcome.completed_steps == 1 and outcome.safe_state_ok
    assert outcome.error == "step 2 'too hot': chamber_heater.temperature_sp: 999 is above the maximum 400 °C"
    assert rec.ends == [("1", OK), ("2", FAILED)]
    assert rec.transitions == [(IDLE, RUNNING), (RUNNING, STOPPING), (STOPPING, FINISHED)]


async def test_a_failing_hook_does_not_break_the_run(device: PlcDevice) -> None:
    def broken(record: StepRecord) -> None:
        raise RuntimeError("hook bug")

    plan = compile_recipe(recipe(wait(1), wait(1)))
    executor = RecipeExecutor(device, plan, outputs=WriteGate(device).for_run(), on_step_end=broken)
    assert (await executor.run()).status is RunStatus.SUCCEEDED


async def test_illegal_moves_raise_transition_error(device: PlcDevice) -> None:
    executor = RecipeExecutor(device, compile_recipe(recipe(wait(1))), outputs=WriteGate(device).for_run())
    with pytest.raises(TransitionError, match="not paused"):
        executor.resume()
    with pytest.raises(TransitionError, match="idle → paused"):
        executor.pause()
    await executor.run()
    with pytest.raises(TransitionError, match="already run"):
        await executor.run()
    with pytest.raises(TransitionError, match="finished → stopping"):
        executor.stop()
    with pytest.raises(TransitionError, match="not paused"):
        executor.resume()


async def test_stop_before_run_aborts_without_a_step(simulator: Simulator, device: PlcDevice) -> None:
    rec = Recorder()
    executor = _executor(device, recipe(valve(1, 10)), rec)
    executor.stop("changed my mind")
    outcome = await executor.run()
    assert (outcome.status, outcome.reason, outcome.completed_steps) == (RunStatus.ABORTED, "changed my mind", 0)
    assert rec.transitions == [(IDLE, STOPPING), (STOPPING, FINISHED)] and rec.ended == []
    assert not simulator.valve_events


async def test_regression_sequential_valves_never_overlap(simulator: Simulator, device: PlcDevice) -> None:
    """Upstream auto-closed valves in the background and moved on: three 'sequential' 500 ms pulses were all
    open at once (docs/DESIGN.md §5 "Recipes"). Each valve step must close before the next step opens anything."""
    outcome = await _executor(device, recipe(valve(1, 30), valve(2, 30), valve(3, 30)), Recorder()).run()
    assert outcome.status is RunStatus.SUCCEEDED
    events = [(e.valve, e.open) for e in simulator.valve_events]
    assert events == [(1, True), (1, False), (2, True), (2, False), (3, True), (3, False)]
    times = [e.t for e in simulator.valve_events]
    assert times == sorted(times)


class _SwallowingDevice(PlcDevice):
    """A write that swallows a cancellation, as Python 3.11's `wait_for` inside pymodbus can when the reply
    and the cancel arrive in the same loop iteration."""

    async def write(self, key: str, value: object, **kw: Any) -> Any:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.2)
        return await super().write(key, value, **kw)


async def test_regression_a_swallowed_cancellation_still_stops_the_run(device: PlcDevice) -> None:
    swallowing = _SwallowingDevice(device.connection, device.map)
    rec = Recorder()
    plan = compile_recipe(recipe(param("mfc_1.flow_sp", 5.0), wait(5000)))
    executor = RecipeExecutor(swallowing, plan, outputs=WriteGate(swallowing).for_run(), **rec.hooks())
    task = asyncio.create_task(executor.run())
    await eventually(lambda: rec.started == ["1"], within=5, every=0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 3)
    assert executor.outcome is not None and executor.outcome.reason == "cancelled"
    assert rec.started == ["1"]  # the 5 s wait never started
