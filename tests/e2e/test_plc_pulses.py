"""PLC-timed pulses end to end: the real agent runs recipes from Supabase against the simulator (whose reference
map declares a pulse timer per valve), and the tests read what the dashboard sees in `run_steps` and what the
PLC did in the simulator's own memory.

- every valve step is PLC-timed, and its `run_steps.detail` records the PLC's measured open time and status,
  which agree with the coil edges the simulator saw;
- `set_parameter` cannot trigger a pulse (refused, the trigger register untouched);
- a trip interlock mid PLC-pulse aborts it at once: the valve closes long before the pulse's end and the step
  records the PLC's report of the aborted pulse.
Times only against generous bounds; bench/pulses.py measures them.
"""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest

from agent.plc import PulseStatus, Value
from agent.plc.sim import Simulator
from supalocal.testing import SEED_MACHINE_ID
from tests.e2e.conftest import StartAgent
from tests.e2e.recipes import insert_command, insert_recipe, loop, purge, valve, wait
from tests.e2e.test_commands import active_agent, run_of, until_final
from tests.e2e.test_safety import open_valves, set_parameter, start
from tests.support.poll import eventually


def at_plc(sim: Simulator, key: str) -> Value:
    return sim.image.get(sim.register_map[key])


async def test_run_steps_record_the_plc_measured_pulse_times(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator
) -> None:
    agent = await active_agent(start_agent)
    command = await start(db, "PLC-timed", [loop(3, valve(1, 20, "TMA"), purge(20), valve(2, 35, "H2O"), wait(10))])
    row = await until_final(db, command, within=60)
    assert row["status"] == "succeeded", row["error"]
    await eventually(lambda: agent.parts is not None and agent.parts.spool.stats.depth == 0)
    run = await run_of(db, command)
    steps = await db.fetch(
        "select planned_ms, detail from run_steps where run_id = $1 and type = 'valve' order by seq", run["id"]
    )
    details = [json.loads(s["detail"]) for s in steps]
    assert [d["timed_by"] for d in details] == ["plc"] * 6
    assert [d["plc_status"] for d in details] == ["done"] * 6
    assert [d["trigger"] for d in details] == [1, 1, 2, 2, 3, 3]  # one counter per valve, from what the PLC held
    opened: dict[int, float] = {}
    seen: list[float] = []
    for event in simulator.valve_events:
        if event.open:
            opened[event.valve] = event.t
        else:
            seen.append((event.t - opened.pop(event.valve)) * 1e6)
    for s, d, at_sim_us in zip(steps, details, seen, strict=True):
        planned_us = s["planned_ms"] * 1000
        assert planned_us - 1 <= d["plc_measured_us"] <= planned_us + 200_000  # never short; generous when late
        assert abs(d["plc_measured_us"] - at_sim_us) <= 2  # the PLC's report is what the coil did
        assert d["held_ms"] == pytest.approx(d["plc_measured_us"] / 1000)
        assert d["timing_error_ms"] == pytest.approx(d["held_ms"] - s["planned_ms"])
    assert open_valves(simulator) == [] and simulator.pulses.counts["started"] == 6


async def test_set_parameter_cannot_trigger_a_pulse(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator
) -> None:
    await active_agent(start_agent)
    row = await set_parameter(db, "valve_1.pulse_trigger", 5)
    assert row["status"] == "rejected" and "only a recipe's valve step triggers it" in row["error"], row["error"]
    assert at_plc(simulator, "valve_1.pulse_trigger") == 0 and simulator.pulses.counts["started"] == 0


async def test_a_trip_mid_plc_pulse_aborts_it_and_closes_the_valve(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator
) -> None:
    agent = await active_agent(start_agent)
    recipe_id = await insert_recipe(db, "long PLC pulse", [valve(1, 8000, "long TMA"), wait(10)])
    command = await insert_command(db, SEED_MACHINE_ID, "start_recipe", {"recipe_id": recipe_id})
    await eventually(lambda: at_plc(simulator, "valve_1.state") is True, within=15, every=0.005)
    simulator.force("chamber_heater.temperature", 395.0)  # heater runaway: the overtemperature trip (hold 0)
    tripped_at = asyncio.get_running_loop().time()
    await eventually(lambda: at_plc(simulator, "valve_1.state") is False, within=5, every=0.005)
    assert asyncio.get_running_loop().time() - tripped_at < 4.0  # the pulse was 8 s: it was cut short
    row = await until_final(db, command, within=30)
    assert row["status"] == "failed"
    await eventually(lambda: agent.parts is not None and agent.parts.spool.stats.depth == 0)
    run = await run_of(db, command)
    assert run["status"] == "aborted" and "chamber-overtemperature" in run["error"]
    step = await db.fetchrow("select status, detail from run_steps where run_id = $1 and type = 'valve'", run["id"])
    detail = json.loads(step["detail"])
    assert step["status"] == "aborted" and "chamber-overtemperature" in detail["interrupted_by"]
    assert detail["cancelled"] is True and detail["plc_status"] == "aborted"
    assert 0 < detail["plc_measured_us"] < 8_000_000
    assert PulseStatus(int(at_plc(simulator, "valve_1.pulse_status"))) is PulseStatus.ABORTED
    simulator.force("chamber_heater.temperature", None)
