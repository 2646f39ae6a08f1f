"""Valve steps on PLC-timed valves, against the simulator over real Modbus TCP: the executor takes the PLC path
where the map declares the valve's pulse timer and the agent-timed path where it does not; a stop, a
cancellation or a pause mid-pulse behave as for an agent-timed pulse; a pulse the PLC rejects, does not finish, or
is already running fails the step with the valve closed. What the PLC did is read from `sim.image`/`sim.pulses`.

Times only against generous bounds (CI shares two cores); precise figures are bench/pulses.py's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest
from recipe_support import agent_timed_map, recipe, valve, wait

from agent.plc import PlcDevice, PulseStatus, RegisterMap, Value, load_default_map
from agent.plc.sim import Simulator
from agent.recipes import RecipeExecutor, RunStatus, State, StepRecord, StepStatus, compile_recipe, validate
from agent.safety import WriteGate
from tests.support.poll import eventually

MakeSim = Callable[..., Awaitable[Simulator]]
Connect = Callable[[Simulator], Awaitable[PlcDevice]]


def at_plc(sim: Simulator, key: str) -> Value:
    return sim.image.get(sim.register_map[key])


def executor_for(device: PlcDevice, *steps: dict[str, object], ended: list[StepRecord]) -> RecipeExecutor:
    r = recipe(*steps)
    assert validate(r, device.map) == []
    return RecipeExecutor(device, compile_recipe(r), outputs=WriteGate(device).for_run(), on_step_end=ended.append)


MEASURED_ONLY = RegisterMap.build(
    p for p in load_default_map() if p.key not in ("valve_2.pulse_ms", "valve_2.pulse_trigger")
)


@pytest.mark.parametrize(
    ("agent_map", "timed_by", "triggers", "measured"),
    [(load_default_map(), "plc", 1, True), (MEASURED_ONLY, "agent", 0, True), (agent_timed_map(), "agent", 0, False)],
    ids=["map-has-the-timer", "map-has-only-the-measurement", "map-without-either"],
)
async def test_the_map_decides_who_times_the_pulse(
    simulator: Simulator, connect: Connect, agent_map: RegisterMap, timed_by: str, triggers: int, measured: bool
) -> None:
    """The same simulator every time (it has the timers): only the agent's map decides the path, and whether
    the PLC's measurement of the opening is recorded."""
    device = await connect(simulator)
    device.set_map(agent_map)
    ended: list[StepRecord] = []
    outcome = await executor_for(device, valve(2, 30), ended=ended).run()
    assert outcome.status is RunStatus.SUCCEEDED
    assert simulator.pulses.counts["started"] == triggers
    detail = ended[0].detail
    assert detail["timed_by"] == timed_by
    if measured:
        assert 30_000 - 1 <= detail["plc_measured_us"] <= 30_000 + 200_000
    else:
        assert "plc_measured_us" not in detail


@pytest.mark.parametrize("how", ["stop", "cancel"])
async def test_a_stop_or_sigterm_mid_pulse_cancels_it_and_closes_the_valve(
    simulator: Simulator, connect: Connect, how: str
) -> None:
    device = await connect(simulator)
    ended: list[StepRecord] = []
    executor = executor_for(device, valve(1, 5000), wait(10), ended=ended)
    task = asyncio.create_task(executor.run())
    await eventually(lambda: at_plc(simulator, "valve_1.state") is True, within=5, every=0.002)
    if how == "stop":
        executor.stop("operator stop")
        outcome = await asyncio.wait_for(task, 5)
    else:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        assert executor.outcome is not None
        outcome = executor.outcome
    assert (outcome.status, outcome.safe_state_ok) == (RunStatus.ABORTED, True)
    assert at_plc(simulator, "valve_1.state") is False
    assert PulseStatus(int(at_plc(simulator, "valve_1.pulse_status"))) is PulseStatus.ABORTED
    assert simulator.pulses.counts["done"] == 0 and not simulator.pulses.running(1)
    assert at_plc(simulator, "valve_1.pulse_trigger") == 0  # cancelled (the step's finally, then the safe state)
    (record,) = ended
    assert record.status is StepStatus.ABORTED
    assert record.detail["cancelled"] is True and record.detail["timed_by"] == "plc"
    if how == "stop":  # the cancel's report was read back: how long the PLC really held the valve
        assert record.detail["plc_status"] == "aborted"
        assert 0 < record.detail["plc_measured_us"] < 5_000_000


async def test_a_pause_mid_pulse_lets_the_plc_finish_it_then_holds(simulator: Simulator, connect: Connect) -> None:
    device = await connect(simulator)
    ended: list[StepRecord] = []
    executor = executor_for(device, valve(1, 200), wait(10), ended=ended)
    task = asyncio.create_task(executor.run())
    await eventually(lambda: at_plc(simulator, "valve_1.state") is True, within=5, every=0.002)
    executor.pause()
    await eventually(lambda: executor.state is State.PAUSED, within=5)
    assert [r.status for r in ended] == [StepStatus.SUCCEEDED]
    assert ended[0].detail["plc_status"] == "done" and ended[0].detail["plc_measured_us"] >= 200_000 - 1
    assert at_plc(simulator, "valve_1.state") is False
    executor.resume()
    assert (await asyncio.wait_for(task, 5)).status is RunStatus.SUCCEEDED


async def test_a_pulse_the_plc_rejects_fails_the_step_and_never_opens_the_valve(
    make_simulator: MakeSim, connect: Connect
) -> None:
    """The PLC's accepted range is its own: here 50 ms, while the agent's map allows 10 s."""
    plc_map = RegisterMap.build(
        replace(p, max_value=50.0) if p.key == "valve_1.pulse_ms" else p for p in load_default_map()
    )
    sim = await make_simulator(plc_map)
    device = await connect(sim)
    device.set_map(load_default_map())
    ended: list[StepRecord] = []
    outcome = await executor_for(device, valve(1, 100), ended=ended).run()
    assert outcome.status is RunStatus.FAILED and "rejected" in (outcome.error or "")
    assert ended[0].detail["plc_status"] == "rejected" and "held_ms" not in ended[0].detail
    assert [e for e in sim.valve_events if e.valve == 1] == []


async def test_a_plc_that_never_acknowledges_fails_the_step_and_the_valve_is_closed(
    simulator: Simulator, connect: Connect
) -> None:
    simulator.pulses.stop()  # the PLC's pulse task hangs: the valve opens and nothing ends the pulse
    device = await connect(simulator)
    ended: list[StepRecord] = []
    outcome = await asyncio.wait_for(executor_for(device, valve(1, 50), ended=ended).run(), 10)
    assert outcome.status is RunStatus.FAILED and "did not report the end" in (outcome.error or "")
    assert ended[0].detail["cancelled"] is True
    assert at_plc(simulator, "valve_1.state") is False  # the cancel closed it
    assert PulseStatus(int(at_plc(simulator, "valve_1.pulse_status"))) is PulseStatus.ABORTED


async def test_a_pulse_already_running_fails_the_step_without_a_trigger(simulator: Simulator, connect: Connect) -> None:
    """Someone else's pulse (another master, a previous agent's) is never joined or restarted."""
    device = await connect(simulator)
    await device.write("valve_3.pulse_ms", 5000)
    await device.write("valve_3.pulse_trigger", 77, verify=False)  # as another master: not through the gate
    ended: list[StepRecord] = []
    outcome = await executor_for(device, valve(3, 20), ended=ended).run()
    assert outcome.status is RunStatus.FAILED and "already running" in (outcome.error or "")
    assert "trigger" not in ended[0].detail and simulator.pulses.counts["started"] == 1
    assert at_plc(simulator, "valve_3.state") is False  # the run's safe state cancelled the stray pulse


async def test_a_run_after_a_run_pulses_again_despite_the_stale_acknowledgement(
    simulator: Simulator, connect: Connect
) -> None:
    """Regression: the first run's safe state sets the trigger to 0 while `pulse_done` keeps that run's last
    trigger (1); the next run's trigger must skip 1, or the stale acknowledgement ends its pulse at once."""
    device = await connect(simulator)
    for run in (1, 2):
        ended: list[StepRecord] = []
        outcome = await executor_for(device, valve(1, 20), ended=ended).run()
        assert outcome.status is RunStatus.SUCCEEDED, (run, outcome.error)
        assert ended[0].detail["plc_status"] == "done" and ended[0].detail["plc_measured_us"] >= 20_000 - 1
        assert at_plc(simulator, "valve_1.pulse_trigger") == 0  # the run's safe state
    assert ended[0].detail["trigger"] == 2 and simulator.pulses.counts["done"] == 2


async def test_a_plc_lost_mid_pulse_fails_the_step_and_the_plcs_timer_still_ends_the_pulse(
    simulator: Simulator, connect: Connect
) -> None:
    """The difference PLC timing makes when the agent is cut off: the valve closes at the pulse's length, not
    when the watchdog trips (an agent-timed valve stays open until then)."""
    device = await connect(simulator)
    ended: list[StepRecord] = []
    task = asyncio.create_task(executor_for(device, valve(1, 400), ended=ended).run())
    await eventually(lambda: at_plc(simulator, "valve_1.state") is True, within=5, every=0.002)
    await simulator.unplug()
    outcome = await asyncio.wait_for(task, 10)
    assert outcome.status is RunStatus.FAILED and not outcome.safe_state_ok
    assert "connection lost" in (outcome.error or "")
    await eventually(lambda: at_plc(simulator, "valve_1.state") is False, within=5, every=0.005)
    assert PulseStatus(int(at_plc(simulator, "valve_1.pulse_status"))) is PulseStatus.DONE  # ran its length
    assert 400_000 - 1 <= int(at_plc(simulator, "valve_1.pulse_measured_us")) <= 400_000 + 200_000
    assert "close_error" in ended[0].detail  # the cancel could not reach the PLC
    await simulator.replug()
