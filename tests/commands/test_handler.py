"""What a claimed command's final status promises, with a real run on the simulator over Modbus TCP.

The dashboard reads `succeeded` on a stop as "the machine is stopped and safe"; the handler must not report it
when the stop was merely requested.
"""

from __future__ import annotations

from pathlib import Path

from agent.commands import CommandHandler
from agent.plc import PlcDevice
from agent.plc.sim import Simulator
from agent.recipes import compile_recipe
from agent.safety import RunController, WriteGate
from agent.spool import Spool, SpoolWriter
from supalocal.testing import SEED_MACHINE_ID
from tests.recipes.recipe_support import recipe, valve
from tests.support.poll import eventually


def _valve_open(simulator: Simulator, n: int) -> bool:
    return bool(simulator.image.get(simulator.register_map[f"valve_{n}.state"]))


async def test_a_stop_succeeds_only_once_the_run_ended_in_the_safe_state(
    simulator: Simulator, device: PlcDevice, tmp_path: Path
) -> None:
    async with Spool(tmp_path / "spool.sqlite") as spool:
        writer = SpoolWriter(spool)
        gate = WriteGate(device)
        runs = RunController(device=device, gate=gate, writer=writer, machine_id=SEED_MACHINE_ID)
        handle = CommandHandler(cloud=None, gate=gate, runs=runs)  # type: ignore[arg-type]  # a stop needs none
        long_pulse = recipe(valve(2, 10_000, "long pulse"))
        runs.start(long_pulse, compile_recipe(long_pulse), command_id=1)
        await eventually(lambda: _valve_open(simulator, 2), within=5, every=0.005)

        await handle({"id": 2, "machine_id": SEED_MACHINE_ID, "type": "stop_recipe", "payload": {}})

        assert not _valve_open(simulator, 2) and runs.active is None  # done, not just asked
        await writer.drain()
        commands = [(r.payload["id"], r.payload["values"]["status"]) for r in await spool.peek("command", 10)]
        assert commands == [(1, "failed"), (2, "succeeded")]  # the run's own command ends first
