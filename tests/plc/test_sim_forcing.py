"""Driving the simulator by hand: `--force KEY=VALUE` parsing, and the force file it follows while running (read
back over real Modbus TCP)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from agent.plc import PlcDevice
from agent.plc.sim import Simulator, follow_force_file, parse_force, parse_forces
from agent.tasks import cancel_and_wait
from tests.support.poll import eventually

TEMP = "chamber_heater.temperature"


@pytest.mark.parametrize(
    ("text", "expected"),
    [(f"{TEMP}=360", (TEMP, 360.0)), ("vacuum_pump.running=false", ("vacuum_pump.running", False))],
    ids=["number", "boolean"],
)
def test_parse_force(text: str, expected: tuple[str, object]) -> None:
    assert parse_force(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [(TEMP, "KEY=VALUE"), (f"{TEMP}=hot", "JSON number or true/false"), (f"{TEMP}=NaN", "finite number")],
    ids=["no-value", "not-a-number", "nan"],
)
def test_a_bad_force_is_refused(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_force(text)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[1]", "JSON object"),
        ("{", "not JSON"),
        ('{"no.such.key": 1}', "no.such.key"),
        (f'{{"{TEMP}": "x"}}', "finite"),
    ],
    ids=["array", "broken", "unknown-key", "string-value"],
)
def test_a_bad_force_file_is_refused(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_forces(text, {TEMP})


async def test_the_force_file_pins_and_releases_values_while_the_simulator_runs(
    simulator: Simulator, connect: Callable[..., Awaitable[PlcDevice]], tmp_path: Path
) -> None:
    device = await connect(simulator)
    path = tmp_path / "sim-force.json"
    following = asyncio.create_task(follow_force_file(simulator, path, every_s=0.02))
    try:
        path.write_text(json.dumps({TEMP: 360}))
        await eventually(lambda: simulator.model.forced.get(TEMP) == 360.0, within=5)
        assert (await device.read([TEMP])).values[TEMP] == pytest.approx(360.0)

        path.write_text("not json")  # refused: the force in effect stays
        await asyncio.sleep(0.1)
        assert simulator.model.forced.get(TEMP) == 360.0

        path.write_text("{}")
        await eventually(lambda: TEMP not in simulator.model.forced, within=5)
    finally:
        await cancel_and_wait([following])
