"""The run controller's observers (the console's journal hangs here): called in order for every step and once
at the end, after the controller's own records; an observer that raises never disturbs the run.

Real parts: the simulator over Modbus TCP, the gate, the spool writer (its records are not shipped here).
"""

from __future__ import annotations

from pathlib import Path

from agent.plc import PlcDevice
from agent.recipes import PlanStep, RunStatus, StepRecord, compile_recipe
from agent.safety import ActiveRun, RunController, WriteGate
from agent.spool import Spool, SpoolWriter
from supalocal.testing import SEED_MACHINE_ID
from tests.recipes.recipe_support import loop, purge, recipe, valve


async def test_observers_see_every_step_then_the_end_and_a_failing_one_is_ignored(
    device: PlcDevice, tmp_path: Path
) -> None:
    async with Spool(tmp_path / "spool.sqlite") as spool:
        writer = SpoolWriter(spool)
        runs = RunController(device=device, gate=WriteGate(device), writer=writer, machine_id=SEED_MACHINE_ID)
        seen: list[tuple[str, object]] = []

        def broken(*_args: object) -> None:
            raise RuntimeError("observer bug")

        def started(run: ActiveRun, step: PlanStep) -> None:
            seen.append(("start", step.index))

        def ended(run: ActiveRun, record: StepRecord) -> None:
            seen.append(("end", (record.seq, str(record.status), run.row["completed_steps"])))

        def finished(run: ActiveRun) -> None:
            seen.append(("run", (run.row["status"], runs.active is run)))

        runs.on_step_started += [broken, started]
        runs.on_step_ended += [broken, ended]
        runs.on_run_ended += [broken, finished]
        doc = recipe(loop(2, valve(1, 10), purge(10)), name="observed")
        runs.start(doc, compile_recipe(doc), command_id=None)
        outcome = await runs.wait()

    assert outcome is not None and outcome.status is RunStatus.SUCCEEDED
    assert seen == [
        ("start", 0), ("end", (0, "succeeded", 1)),
        ("start", 1), ("end", (1, "succeeded", 2)),
        ("start", 2), ("end", (2, "succeeded", 3)),
        ("start", 3), ("end", (3, "succeeded", 4)),
        ("run", ("succeeded", True)),  # the final row, while the run is still the active one
    ]  # fmt: skip
