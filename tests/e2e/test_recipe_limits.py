"""The largest recipe the limits allow, started through the real path, while the agent keeps its deadlines.

A recipe that validates must not defeat the machine's safety by its size: before the limits and the compact
plan, 999,996 steps compiled on the event loop for 22 s, the PLC watchdog tripped and the lease was lost.
Here the dashboard stores a recipe at both limits (1,000 rows and 199,800 plan steps), a start_recipe
command goes through the local stack, and the simulator — over Modbus TCP — sees
the watchdog register keep changing while the sampler keeps every tick, all the time the recipe is loaded,
validated, compiled and started; the run is recorded whole (its snapshot fits in one request).
"""

from __future__ import annotations

import asyncio
import time

import asyncpg

from agent.limits import MAX_PLAN_STEPS, MAX_RECIPE_STEPS
from agent.plc.sim import Simulator
from supalocal.testing import SEED_MACHINE_ID
from tests.e2e.conftest import StartAgent
from tests.e2e.recipes import insert_command, insert_wide_recipe
from tests.e2e.test_commands import active_agent, until_final
from tests.support.poll import eventually

WATCHDOG_TIMEOUT_S = 1.0
#: Generous on purpose (a shared 2-core box): a blocked loop shows up as seconds, a busy one as tens of ms.
MAX_LATENESS_S = 0.25


async def watch_register(simulator: Simulator, key: str, changes: list[float], every: float = 0.01) -> None:
    """Append the time of every change of `key` at the simulator (its register image, not the agent's view)."""
    param = simulator.register_map[key]
    last = simulator.image.get(param)
    while True:
        await asyncio.sleep(every)
        value = simulator.image.get(param)
        if value != last:
            changes.append(time.monotonic())
            last = value


async def test_the_largest_recipe_allowed_starts_while_the_sampler_and_the_watchdog_keep_their_deadlines(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator
) -> None:
    simulator.model.watchdog_timeout_s = WATCHDOG_TIMEOUT_S
    agent = await active_agent(start_agent, WATCHDOG_TIMEOUT=WATCHDOG_TIMEOUT_S)
    assert agent.parts is not None and agent.parts is not None
    runs = agent.parts.runs
    await eventually(lambda: simulator.model.watchdog_armed, within=5)
    # a 200× loop over 999 one-second waits: 1,000 stored steps, 199,800 plan steps, 55.5 h planned
    body = MAX_RECIPE_STEPS - 1
    recipe_id = await insert_wide_recipe(db, "largest allowed", rows=MAX_RECIPE_STEPS, loop=MAX_PLAN_STEPS // body)
    plan_steps = MAX_PLAN_STEPS // body * body
    assert plan_steps == 199_800

    changes: list[float] = []
    watcher = asyncio.create_task(watch_register(simulator, "plc.watchdog", changes))
    stats = agent.parts.sampler.stats
    ticks, skipped = stats.ticks, stats.skipped
    started = time.monotonic()
    command_id = await insert_command(db, SEED_MACHINE_ID, "start_recipe", {"recipe_id": recipe_id})
    try:
        await eventually(lambda: runs.active is not None, within=60, every=0.05)
        loaded_s = time.monotonic() - started
        await asyncio.sleep(1.0)  # and the run's first second: its row and snapshot go to the spool
    finally:
        watcher.cancel()
    window_s = time.monotonic() - started
    window_ticks = stats.ticks - ticks
    late = list(stats.lateness_s)[-window_ticks:] if window_ticks else []
    gaps = [b - a for a, b in zip([started, *changes], [*changes, time.monotonic()], strict=True)]
    print(
        f"\nloaded in {loaded_s:.2f} s; {window_ticks} ticks in {window_s:.2f} s, max lateness "
        f"{max(late, default=0) * 1000:.0f} ms, {stats.skipped - skipped} skipped; watchdog changed {len(changes)}×, "
        f"max gap {max(gaps):.2f} s"
    )

    active = runs.active
    assert active is not None and active.plan.total_steps == plan_steps
    assert stats.skipped == skipped  # no tick skipped
    assert window_ticks >= window_s / agent.settings.PARAMETER_LOGGING_INTERVAL - 2
    assert max(late) < MAX_LATENESS_S, late
    assert max(gaps) < WATCHDOG_TIMEOUT_S, gaps  # the watchdog register kept changing at the PLC
    assert not simulator.model.watchdog_tripped

    async def recorded() -> bool:  # the run's row (with the 1,000-step snapshot) reached the database
        row = await db.fetchrow("select total_steps from process_runs where command_id = $1", command_id)
        return row is not None and row["total_steps"] == plan_steps

    await eventually(recorded, within=15, every=0.2)
    stop_id = await insert_command(db, SEED_MACHINE_ID, "stop_recipe", {})
    assert (await until_final(db, stop_id))["status"] == "succeeded"
    assert (await until_final(db, command_id))["status"] == "failed"  # the run was aborted by the stop


async def test_a_set_parameter_of_1e400_is_rejected_with_a_clear_reason(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator
) -> None:
    """PostgreSQL keeps `1e400` exact in jsonb and hands it back as a 401-digit integer, which used to reach the
    PLC write and die in a float conversion (`OverflowError`), leaving the command `claimed` for ever."""
    await active_agent(start_agent)
    # the schema refuses such a number at insert now (20261201160000); an older schema did not: the agent's own
    # refusal is tested without the constraint, which is restored after (the stack's schema is shared)
    await db.execute("alter table machine_commands drop constraint machine_commands_payload_numbers_fit")
    try:
        command_id = await db.fetchval(
            "insert into machine_commands (machine_id, type, payload) values ($1, 'set_parameter', "
            "jsonb_build_object('key', 'mfc_1.flow_sp', 'value', 1e400::numeric)) returning id",
            SEED_MACHINE_ID,
        )
        row = await until_final(db, command_id)
        await db.execute("delete from machine_commands where id = $1", command_id)
    finally:
        await db.execute(
            "alter table machine_commands add constraint machine_commands_payload_numbers_fit "
            "check (public.json_numbers_fit_64_bits(payload))"
        )
    assert row["status"] == "rejected"
    assert row["error"] == (
        "set_parameter: invalid payload: value: must fit in 64 bits (-2**63 … 2**64-1) as every PLC register does, "
        "got an integer of about 401 digits"
    )
    assert simulator.image.get(simulator.register_map["mfc_1.flow_sp"]) == 0  # nothing written
