"""The simulator's PLC-timed pulses over real Modbus TCP: the handshake of docs/CONTRACT.md §8 "PLC-timed pulses"
and each of its edge cases (a repeated trigger, duration 0 or out of range, a trigger while a pulse runs, a cancel,
the coil closed mid-pulse, the watchdog tripping mid-pulse), and every opening of a timed valve measured.

The PLC's state is read from the simulator's own memory (`sim.image`); times are checked only against generous
bounds (the simulator's timer never ends a pulse early; how late it is belongs to bench/pulses.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest

from agent.plc import PlcDevice, PulseStatus, RegisterMap, Value
from agent.plc.sim import Simulator
from tests.support.poll import eventually

Connect = Callable[..., Awaitable[PlcDevice]]
MakeSim = Callable[..., Awaitable[Simulator]]
LATE_US = 200_000  # generous: CI shares two cores


def at_plc(sim: Simulator, key: str) -> Value:
    return sim.image.get(sim.register_map[key])


def any_length(register_map: RegisterMap) -> RegisterMap:
    """The agent's map refuses a bad length before sending it; another master (this one) can send anything."""
    return RegisterMap.build(
        replace(p, min_value=None, max_value=None) if p.key.endswith(".pulse_ms") else p for p in register_map
    )


async def master(sim: Simulator, connect: Connect) -> PlcDevice:
    device = await connect(sim)
    device.set_map(any_length(sim.register_map))
    return device


async def trigger(device: PlcDevice, valve: int, value: int, *, ms: int | None = None) -> None:
    if ms is not None:
        await device.write(f"valve_{valve}.pulse_ms", ms)
    await device.write(f"valve_{valve}.pulse_trigger", value, verify=False)


def feedback(sim: Simulator, valve: int) -> tuple[Value, PulseStatus, Value]:
    done, status, measured = (
        at_plc(sim, f"valve_{valve}.{f}") for f in ("pulse_done", "pulse_status", "pulse_measured_us")
    )
    return done, PulseStatus(int(status)), measured


async def acknowledged(sim: Simulator, valve: int, value: int, *, within: float = 5) -> None:
    await eventually(lambda: at_plc(sim, f"valve_{valve}.pulse_done") == value, within=within, every=0.002)


async def test_a_trigger_opens_the_valve_times_it_and_acknowledges(simulator: Simulator, connect: Connect) -> None:
    device = await master(simulator, connect)
    await trigger(device, 1, 1, ms=40)
    assert at_plc(simulator, "valve_1.state") is True  # energised when the PLC took the write
    assert feedback(simulator, 1)[1] is PulseStatus.RUNNING
    await acknowledged(simulator, 1, 1)
    done, status, measured = feedback(simulator, 1)
    assert (done, status, at_plc(simulator, "valve_1.state")) == (1, PulseStatus.DONE, False)
    assert 40_000 - 1 <= int(measured) <= 40_000 + LATE_US  # µs: never short
    events = [(e.valve, e.open) for e in simulator.valve_events]
    assert events == [(1, True), (1, False)]
    opened, closed = simulator.valve_events
    assert closed.t - opened.t == pytest.approx(int(measured) / 1e6, abs=2e-6)
    assert at_plc(simulator, "valve_1.cycle_count") == 1


async def test_the_same_trigger_value_again_starts_nothing(simulator: Simulator, connect: Connect) -> None:
    """A write repeated after a lost reply (a retry) cannot pulse twice."""
    device = await master(simulator, connect)
    await trigger(device, 2, 7, ms=10)
    await acknowledged(simulator, 2, 7)
    await trigger(device, 2, 7)
    await asyncio.sleep(0.05)
    assert (simulator.pulses.counts["started"], at_plc(simulator, "valve_2.state")) == (1, False)


@pytest.mark.parametrize(
    ("ms", "tripped"), [(0, False), (10_001, False), (50, True)], ids=["zero", "above-range", "tripped"]
)
async def test_a_pulse_the_plc_cannot_run_is_rejected_without_moving_the_valve(
    make_simulator: MakeSim, connect: Connect, ms: int, tripped: bool
) -> None:
    sim = await make_simulator(watchdog_timeout_s=0.2)
    device = await master(sim, connect)
    if tripped:  # arm the watchdog (two different values), then let it trip
        await device.write("plc.watchdog", 1, verify=False)
        await device.write("plc.watchdog", 2, verify=False)
        await eventually(lambda: sim.model.watchdog_tripped, within=5)
    before = at_plc(sim, "valve_3.pulse_measured_us")
    await trigger(device, 3, 5, ms=ms)
    await acknowledged(sim, 3, 5)
    assert feedback(sim, 3) == (5, PulseStatus.REJECTED, before)
    assert [e for e in sim.valve_events if e.valve == 3] == []
    assert sim.pulses.counts["rejected"] == 1


async def test_a_trigger_while_a_pulse_runs_is_ignored_and_the_pulse_keeps_its_length(
    simulator: Simulator, connect: Connect
) -> None:
    device = await master(simulator, connect)
    await trigger(device, 1, 1, ms=300)
    await trigger(device, 1, 2, ms=20)  # neither the new length nor the new trigger touch the running pulse
    assert feedback(simulator, 1)[1] is PulseStatus.RUNNING
    await acknowledged(simulator, 1, 1)
    done, status, measured = feedback(simulator, 1)
    assert (done, status) == (1, PulseStatus.DONE) and int(measured) >= 300_000 - 1
    await asyncio.sleep(0.05)
    assert simulator.pulses.counts == {"started": 1, "done": 1, "aborted": 0, "rejected": 0, "ignored": 1}
    assert at_plc(simulator, "valve_1.pulse_done") == 1  # trigger 2 is never acknowledged


@pytest.mark.parametrize("how", ["trigger-0", "coil-false"])
async def test_a_pulse_cut_short_closes_the_valve_and_reports_aborted(
    simulator: Simulator, connect: Connect, how: str
) -> None:
    device = await master(simulator, connect)
    await trigger(device, 4, 9, ms=5000)
    await asyncio.sleep(0.05)
    if how == "trigger-0":
        await device.write("valve_4.pulse_trigger", 0, verify=False)
    else:
        await device.write("valve_4.state", False, verify=False)
    assert at_plc(simulator, "valve_4.state") is False  # at once, not at the pulse's end
    done, status, measured = feedback(simulator, 4)
    assert (done, status) == (9, PulseStatus.ABORTED)
    assert 50_000 - 1 <= int(measured) < 5_000_000
    assert not simulator.pulses.running(4)


async def test_the_watchdog_tripping_mid_pulse_aborts_it(make_simulator: MakeSim, connect: Connect) -> None:
    sim = await make_simulator(watchdog_timeout_s=0.3)
    device = await master(sim, connect)
    await device.write("plc.watchdog", 1, verify=False)
    await device.write("plc.watchdog", 2, verify=False)  # armed; no more kicks from here
    await trigger(device, 5, 3, ms=10_000)
    assert at_plc(sim, "valve_5.state") is True
    await acknowledged(sim, 5, 3)  # within the watchdog timeout, not the pulse's 10 s
    assert sim.model.watchdog_tripped and at_plc(sim, "valve_5.state") is False
    assert feedback(sim, 5)[:2] == (3, PulseStatus.ABORTED)
    await device.write("plc.watchdog", 3, verify=False)  # the trip clears; nothing restarts the pulse
    await asyncio.sleep(0.1)
    assert at_plc(sim, "valve_5.state") is False and sim.pulses.counts["started"] == 1


async def test_every_opening_of_a_timed_valve_is_measured_even_an_agent_timed_one(
    simulator: Simulator, connect: Connect
) -> None:
    device = await master(simulator, connect)
    await device.write("valve_6.state", True, verify=False)
    await asyncio.sleep(0.05)
    await device.write("valve_6.state", False, verify=False)
    done, status, measured = feedback(simulator, 6)
    assert (done, status) == (0, PulseStatus.IDLE)  # no handshake: nothing was triggered
    opened, closed = simulator.valve_events
    assert int(measured) == round((closed.t - opened.t) * 1e6) and int(measured) >= 50_000 - 1  # the same instants
