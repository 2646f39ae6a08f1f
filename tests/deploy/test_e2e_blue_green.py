"""Blue-green on the local runtime with real agents, HAProxy, the local Supabase stack and the PLC simulator:
read traffic never fails, the PLC lease moves before traffic, a running recipe is never cut, and every command
inserted while the lease moves is run exactly once, by exactly one color. Then rollback.sh goes back."""

from __future__ import annotations

import asyncio
import re
import time

import asyncpg
from local_stage import ROLLBACK, Load, LocalStage

from supalocal.testing import SEED_MACHINE_ID
from tests.e2e.recipes import insert_command, insert_recipe, loop, valve, wait
from tests.support.poll import eventually

FINAL = ("succeeded", "failed", "rejected", "expired")


async def final_rows(db: asyncpg.Connection, ids: list[int], *, within: float = 20) -> list[asyncpg.Record]:
    async def all_final() -> bool:
        return await db.fetchval("select count(*) from machine_commands where id = any($1) and status = any($2)",
                                 ids, list(FINAL)) == len(ids)  # fmt: skip

    await eventually(all_final, within=within, every=0.1)
    return await db.fetch("select * from machine_commands where id = any($1) order by id", ids)


def executions(stage: LocalStage, command_id: int) -> int:
    """How many times a color's log says it ran the command (agent/commands/handler.py logs each run once)."""
    pattern = re.compile(rf"command {command_id}: set_parameter ")
    return sum(len(pattern.findall(stage.log(color))) for color in ("blue", "green"))


def color_of(instance_id: str) -> str:
    return "green" if instance_id.endswith("-green") else "blue"  # `<host>-<color>`


async def test_blue_green_under_load_commands_once_then_rollback(local: LocalStage) -> None:
    for tag in ("v1", "v2"):
        local.release(tag)
    first = await local.ascript(local.DEPLOY, "-e", "local", "-t", "v1")
    assert first.returncode == 0, first.output
    db = await asyncpg.connect(local.db_url)
    try:
        inserted: list[int] = []

        async def insert_continuously(stop: asyncio.Event) -> None:
            value = 10.0
            while not stop.is_set() and len(inserted) < 400:
                value = 10.0 + (len(inserted) % 20)
                inserted.append(await insert_command(db, SEED_MACHINE_ID, "set_parameter",
                                                     {"key": "mfc_1.flow_sp", "value": value}))  # fmt: skip
                await asyncio.sleep(0.05)

        stop = asyncio.Event()
        with Load(f"{local.lb_url}/health") as load:
            inserter = asyncio.create_task(insert_continuously(stop))
            deployed = await local.ascript(local.DEPLOY, "-e", "local", "-t", "v2")
            stop.set()
            await inserter
        print(f"\n{deployed.stdout}\nrequests during the deploy: {dict(load.results)}")
        assert deployed.returncode == 0, deployed.output
        assert load.failed == {} and load.results["green"] > 0, load.results  # (a) 0 failed requests

        rows = await final_rows(db, inserted)
        assert {r["status"] for r in rows} == {"succeeded"}, [dict(r) for r in rows if r["status"] != "succeeded"]
        assert all(executions(local, r["id"]) == 1 for r in rows)  # (c) each run once, by one color
        by_time = sorted(rows, key=lambda r: r["claimed_at"])
        colors = [color_of(r["claimed_by"]) for r in by_time]
        switch = colors.index("green")
        assert set(colors[:switch]) == {"blue"} and set(colors[switch:]) == {"green"}  # one hand-over, no overlap
        gap = (by_time[switch]["claimed_at"] - by_time[switch - 1]["claimed_at"]).total_seconds()
        entry = local.state()["history"][-1]
        print(f"commands: {len(rows)} ({switch} blue, {len(rows) - switch} green); command gap {gap:.3f}s; "
              f"deploy {deployed.seconds:.2f}s; history {entry}")  # fmt: skip
        assert (entry["result"], entry["handover"]["from"], entry["handover"]["to"]) == ("success", "blue", "green")
        assert local.weights() == {"blue": 0, "green": 100}
        assert (local.health("green")["role"], local.health("blue")["role"]) == ("active", "standby")

        # (e) rollback.sh: back to v1 on the warm blue, under load: a lease hand-over and a weight flip
        with Load(f"{local.lb_url}/health") as load:
            rolled = await local.ascript(ROLLBACK, "-e", "local", "--yes")
        assert rolled.returncode == 0, rolled.output
        assert load.failed == {}, load.results
        assert "blue already runs v1: checking it, then flipping" in rolled.stdout and "starting" not in rolled.stdout
        assert local.weights() == {"blue": 100, "green": 0}
        assert (local.health("blue")["role"], local.health("green")["role"]) == ("active", "standby")
        state = local.state()
        assert (state["active_color"], state["active_version"]) == ("blue", "v1")
        assert [(h["strategy"], h["version"], h["result"]) for h in state["history"]] == [
            ("blue-green", "v1", "success"),
            ("blue-green", "v2", "success"),
            ("rollback-version", "v1", "success"),
        ]
        print(f"rollback {rolled.seconds:.2f}s, requests {dict(load.results)}")
        after = await insert_command(db, SEED_MACHINE_ID, "set_parameter", {"key": "mfc_1.flow_sp", "value": 7})
        (row,) = await final_rows(db, [after])
        assert row["status"] == "succeeded" and color_of(row["claimed_by"]) == "blue"
    finally:
        await db.close()


async def test_deploy_waits_for_the_running_recipe(local: LocalStage) -> None:
    """(b) A deploy started while a recipe runs: the old color finishes it, the lease moves after, one run."""
    local.release("v1")
    local.release("v2")
    assert (await local.ascript(local.DEPLOY, "-e", "local", "-t", "v1")).returncode == 0
    db = await asyncpg.connect(local.db_url)
    try:
        recipe = await insert_recipe(db, "e2e deploy", [loop(20, valve(1, 20), wait(130))])  # ≈ 3 s
        start = await insert_command(db, SEED_MACHINE_ID, "start_recipe", {"recipe_id": recipe})
        await eventually(lambda: local.health("blue").get("current_run") is not None, within=10)
        started = time.monotonic()
        deployed = await local.ascript(local.DEPLOY, "-e", "local", "-t", "v2")
        assert deployed.returncode == 0, deployed.output
        (command,) = await final_rows(db, [start])
        runs = await db.fetch("select * from process_runs where command_id = $1", start)
        assert command["status"] == "succeeded" and color_of(command["claimed_by"]) == "blue"
        assert len(runs) == 1 and runs[0]["status"] == "succeeded"
        assert "waiting for it to finish" in deployed.stdout
        entry = local.state()["history"][-1]
        assert entry["waited_for_run"] == str(runs[0]["id"]) and entry["handover"]["released_s"] > 0.5
        print(f"\ndeploy with a recipe running: {time.monotonic() - started:.2f}s, history {entry}")
    finally:
        await db.close()
