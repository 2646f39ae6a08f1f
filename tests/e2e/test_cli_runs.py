"""The operator's CLI against the real agent, the simulator and the local stack: `command start-recipe` follows
the run to its end with a progress line (also through a silent first step, as a heat-up is), `pause` and
`resume` answer once the run is in that state, and `runs list|show` report status, progress and step timings."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys

import asyncpg

from agent.cli import build_parser
from supalocal.stack import BackgroundStack
from supalocal.testing import SEED_MACHINE_ID
from tests.e2e.conftest import StartAgent
from tests.e2e.recipes import insert_recipe, loop, valve, wait
from tests.e2e.test_commands import active_agent
from tests.support.poll import eventually


def cli_env(stack: BackgroundStack) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLC_", "SUPABASE_", "MACHINE_", "LOG_"))}
    return env | {"SUPABASE_URL": stack.url, "SUPABASE_KEY": stack.service_key, "MACHINE_ID": SEED_MACHINE_ID}


async def spawn(stack: BackgroundStack, *args: str) -> asyncio.subprocess.Process:
    pipe = asyncio.subprocess.PIPE
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", *args, env=cli_env(stack), stdout=pipe, stderr=pipe
    )


async def cli(stack: BackgroundStack, *args: str, within: float = 60) -> tuple[int, str, str]:
    proc = await spawn(stack, *args)
    out, err = await asyncio.wait_for(proc.communicate(), within)
    return proc.returncode or 0, out.decode(), err.decode()


def test_start_recipe_has_no_timeout_by_default() -> None:
    """Before, it gave up after 60 s with exit 1 while the run went on (a real recipe takes minutes)."""
    assert build_parser().parse_args(["command", "start-recipe", "x"]).timeout is None


async def test_start_recipe_follows_the_run_to_its_end_with_progress(
    start_agent: StartAgent, db: asyncpg.Connection, clean_db: BackgroundStack
) -> None:
    await active_agent(start_agent)
    # a first step that holds 3 s without completing anything (as a heat-up does), then 8 short steps
    recipe_id = await insert_recipe(db, "cli progress", [wait(3000), loop(4, valve(1, 20, "TMA pulse"), wait(300))])
    code, out, err = await cli(clean_db, "command", "start-recipe", recipe_id)
    assert code == 0, out + err
    lines = out.splitlines()
    progress = [line for line in lines if re.match(r"run [0-9a-f]{8} running \[[#-]{24}\] \d+/9 \(\d+%\)", line)]
    assert progress, out
    assert progress[0].startswith(f"run {progress[0][4:12]} running [------------------------] 0/9 (0%) step 1 wait")
    assert "elapsed 0:00:0" in progress[0] and "remaining ≥ 0:00:0" in progress[0]
    assert any(re.search(r"step 2/[12] \S+.* \(cycle [1-4]/4\)", line) for line in progress), out
    assert re.fullmatch(r"run [0-9a-f-]{36} succeeded: 9/9 steps in 0:00:0\d", lines[-1]), lines[-1]


async def test_pause_and_resume_answer_once_the_run_is_in_that_state(
    start_agent: StartAgent, db: asyncpg.Connection, clean_db: BackgroundStack
) -> None:
    agent = await active_agent(start_agent)
    recipe_id = await insert_recipe(db, "cli pause", [loop(40, valve(1, 20), wait(150))])
    starter = await spawn(clean_db, "command", "start-recipe", recipe_id)
    try:
        await eventually(lambda: agent.parts is not None and agent.parts.runs.active is not None, within=15)
        code, out, _ = await cli(clean_db, "command", "pause")
        assert code == 0, out
        # when the CLI says paused, the database says so too (before, "succeeded" came when it was only asked)
        assert await db.fetchval("select status from process_runs where machine_id = $1 and finished_at is null",
                                 SEED_MACHINE_ID) == "paused"  # fmt: skip
        assert re.search(r"^run [0-9a-f-]{36}: paused \(\d+/80 steps\)$", out, re.M), out
        code, out, _ = await cli(clean_db, "command", "resume")
        assert code == 0 and re.search(r"^run [0-9a-f-]{36}: running \(\d+/80 steps\)$", out, re.M), out
        code, out, _ = await cli(clean_db, "command", "stop")
        assert code == 0, out
        started_out, _ = await asyncio.wait_for(starter.communicate(), 30)
    finally:
        if starter.returncode is None:
            starter.kill()
            await starter.wait()
    assert starter.returncode == 1  # the run's outcome: aborted by the stop
    assert re.search(r"^run [0-9a-f-]{36} aborted: \d+/80 steps in", started_out.decode(), re.M)

    code, out, _ = await cli(clean_db, "command", "pause")  # nothing to pause: refused by the agent
    assert code == 1 and "rejected" in out


async def test_runs_list_and_show(start_agent: StartAgent, db: asyncpg.Connection, clean_db: BackgroundStack) -> None:
    await active_agent(start_agent)
    recipe_id = await insert_recipe(db, "cli runs", [loop(3, valve(1, 50, "TMA pulse"), wait(50))])
    assert (await cli(clean_db, "command", "start-recipe", recipe_id))[0] == 0
    code, out, err = await cli(clean_db, "runs", "list")
    assert code == 0, err
    header, first = out.splitlines()[:2]
    assert header.split() == ["RUN", "STATUS", "STEPS", "STARTED", "(UTC)", "TIME", "RECIPE"]
    run_id = first.split()[0]
    assert first.split()[1:3] == ["succeeded", "6/6"] and first.endswith("cli runs v1")

    code, out, err = await cli(clean_db, "runs", "show", run_id[:8], "--steps")
    assert code == 0, err
    assert out.splitlines()[0].startswith(f"run {run_id[:8]} succeeded [########################] 6/6 (100%)")
    timing = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith(("valve ", "wait "))}
    assert timing["valve"][1] == "3" and timing["wait"][1] == "3"
    assert len([line for line in out.splitlines() if re.match(r"\s+\d+\s+\d", line)]) == 6  # every step listed

    shown = json.loads((await cli(clean_db, "runs", "show", run_id, "--json"))[1])
    assert (shown["id"], shown["status"], shown["completed_steps"]) == (run_id, "succeeded", 6)
    assert {t["type"]: t["steps"] for t in shown["timings"]} == {"valve": 3, "wait": 3}

    for bad, message in [("0000000", "at least its first 8"), ("ffffffff", "no run ffffffff"), ("x" * 36, "not a run")]:
        code, _, err = await cli(clean_db, "runs", "show", bad)
        assert code == 2 and err.startswith("error: RUN_ID: ") and message in err, err
