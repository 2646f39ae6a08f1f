"""What a claimed command's final status promises, with a real run on the simulator over Modbus TCP.

The dashboard reads `succeeded` on a stop as "the machine is stopped and safe"; the handler must not report it
when the stop was merely requested. A start reads the whole recipe from the local stack (every page), does
its CPU work off the event loop, and a refusal's reason is bounded.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import agent.commands.handler as handler_module
from agent.cloud import CloudClient
from agent.commands import CommandHandler, load_recipe
from agent.limits import MAX_ERROR_CHARS, MAX_RECIPE_STEPS
from agent.plc import PlcDevice, RegisterMap
from agent.plc.sim import Simulator
from agent.recipes import Recipe, compile_recipe, validate
from agent.safety import RunController, WriteGate
from agent.spool import Spool, SpoolWriter
from supalocal.stack import BackgroundStack
from supalocal.testing import SEED_MACHINE_ID
from tests.e2e.recipes import insert_wide_recipe
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


def start_row(command_id: int, recipe_id: str) -> dict[str, Any]:
    payload = {"recipe_id": recipe_id}
    return {"id": command_id, "machine_id": SEED_MACHINE_ID, "type": "start_recipe", "payload": payload}


@pytest.fixture
async def cloud(clean_db: BackgroundStack) -> AsyncIterator[CloudClient]:
    async with CloudClient(clean_db.url, clean_db.service_key) as client:
        yield client


@pytest.mark.parametrize(
    ("rows", "stored", "problems"),
    [
        (MAX_RECIPE_STEPS, MAX_RECIPE_STEPS, []),
        (2_500, 2_000, ["recipe: has more than 1,000 steps as stored (2,000 read)"]),
    ],
    ids=["at-the-limit-one-full-page", "beyond-it-seen-on-the-second-page-and-reading-stops"],
)
async def test_load_recipe_reads_every_page_beyond_postgrest_max_rows(
    db: asyncpg.Connection, cloud: CloudClient, default_map: RegisterMap, rows: int, stored: int, problems: list[str]
) -> None:
    """PostgREST answers at most 1,000 rows a request: one select silently cut a 2,500-step recipe to its first
    1,000 (and ran that). Now the second page shows there are more, and reading stops there."""
    recipe_id = await insert_wide_recipe(db, "wide", rows=rows)
    loaded = await load_recipe(cloud, recipe_id)
    assert loaded.stored_steps == stored
    assert [str(p) for p in validate(loaded, default_map)] == problems
    if not problems:
        assert len(loaded.steps) == rows and [s.name for s in loaded.steps[-2:]] == [
            f"wait {rows - 2}",
            f"wait {rows - 1}",
        ]


async def test_a_start_loads_validates_and_compiles_off_the_event_loop(
    db: asyncpg.Connection, cloud: CloudClient, device: PlcDevice, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CPU work of a start runs in a worker thread, so the sampler and the watchdog keep the loop. The real
    functions run; the spies only note the thread (timings on a shared box would prove nothing either way)."""
    threads: dict[str, str] = {}

    def spy(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            threads[name] = threading.current_thread().name
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(handler_module, "compile_recipe", spy("compile_recipe", compile_recipe))
    monkeypatch.setattr(Recipe, "from_rows", spy("from_rows", Recipe.from_rows))
    recipe_id = await insert_wide_recipe(db, "wide", rows=1_000, loop=2)
    async with Spool(tmp_path / "spool.sqlite") as spool:
        gate = WriteGate(device)
        runs = RunController(device=device, gate=gate, writer=SpoolWriter(spool), machine_id=SEED_MACHINE_ID)
        handle = CommandHandler(cloud=cloud, gate=gate, runs=runs)
        await handle(
            {"id": 1, "machine_id": SEED_MACHINE_ID, "type": "start_recipe", "payload": {"recipe_id": recipe_id}}
        )
        assert runs.active is not None and runs.active.plan.total_steps == 2 * 999
        runs.stop("test over")
        await runs.wait()
    main = threading.main_thread().name
    assert set(threads) == {"from_rows", "compile_recipe"}  # compile_recipe validates against the map too
    assert main not in threads.values(), threads


async def test_a_refused_start_writes_a_bounded_reason(
    db: asyncpg.Connection, cloud: CloudClient, device: PlcDevice, tmp_path: Path
) -> None:
    """1,000 waits of 2 h (the database's shape check allows them; the limit is 1 h), named with 100,000
    characters each (2,000 problems): `machine_commands.error` is still at most 2,000 characters."""
    recipe_id = await insert_wide_recipe(db, "too long", rows=1_000, ms=7_200_000, step_name="x" * 100_000)
    async with Spool(tmp_path / "spool.sqlite") as spool:
        writer = SpoolWriter(spool)
        gate = WriteGate(device)
        runs = RunController(device=device, gate=gate, writer=writer, machine_id=SEED_MACHINE_ID)
        handle = CommandHandler(cloud=cloud, gate=gate, runs=runs)
        await handle(
            {"id": 7, "machine_id": SEED_MACHINE_ID, "type": "start_recipe", "payload": {"recipe_id": recipe_id}}
        )
        await writer.drain()
        (record,) = [r.payload for r in await spool.peek("command", 10)]
    values = record["values"]
    assert values["status"] == "rejected"
    assert values["error"].startswith("recipe 'too long' is invalid (2,000 problems):\n  1 'xxxx")
    assert len(values["error"]) <= MAX_ERROR_CHARS
