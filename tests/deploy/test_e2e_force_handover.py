"""`deploy.sh --force-handover` while a recipe runs, with real agents on the local runtime: the old color does not
wait for the recipe — it stops it into its safe state (the run ends `aborted`, every valve closed at the PLC
simulator), releases the lease, and the deploy completes with the new color holding it; no read fails."""

from __future__ import annotations

import json
import subprocess
import sys

import asyncpg
from deploy_support import ROOT
from local_stage import Load, LocalStage
from test_e2e_blue_green import color_of, final_rows

from supalocal.testing import SEED_MACHINE_ID
from tests.e2e.recipes import insert_command, insert_recipe, loop, valve
from tests.support.poll import eventually

VALVES = [f"valve_{n}.state" for n in range(1, 7)]


def valves(plc_port: int) -> dict[str, bool]:
    """The valve states as the PLC simulator reports them (`python -m agent plc read … --json`)."""
    env = {"PATH": "/usr/bin:/bin", "PLC_HOST": "127.0.0.1", "PLC_PORT": str(plc_port)}
    done = subprocess.run([sys.executable, "-m", "agent", "plc", "read", *VALVES, "--json"], cwd=ROOT, env=env,
                          text=True, capture_output=True, timeout=15, check=True, stdin=subprocess.DEVNULL)  # fmt: skip
    return json.loads(done.stdout)


async def test_force_handover_stops_the_running_recipe_safely(local: LocalStage, plc_port: int) -> None:
    local.release("v1")
    local.release("v2")
    assert (await local.ascript(local.DEPLOY, "-e", "local", "-t", "v1")).returncode == 0
    db = await asyncpg.connect(local.db_url)
    try:
        recipe = await insert_recipe(db, "e2e forced deploy", [loop(2, valve(1, 10_000))])  # 20 s of the longest pulse
        start = await insert_command(db, SEED_MACHINE_ID, "start_recipe", {"recipe_id": recipe})
        await eventually(lambda: local.health("blue").get("current_run") is not None, within=10)
        await eventually(lambda: valves(plc_port)["valve_1.state"], within=10)  # the pulse is on
        with Load(f"{local.lb_url}/health") as load:
            deployed = await local.ascript(local.DEPLOY, "-e", "local", "-t", "v2", "--force-handover")
        assert deployed.returncode == 0, deployed.output
        assert "stops a running recipe (safe state)" in deployed.stdout
        assert deployed.seconds < 15  # it did not wait for the 20 s pulse
        assert load.failed == {}, load.results
        assert valves(plc_port) == dict.fromkeys(VALVES, False)  # the safe state, at the PLC
        (command,) = await final_rows(db, [start])
        runs = await db.fetch("select * from process_runs where command_id = $1", start)
        assert color_of(command["claimed_by"]) == "blue" and command["status"] == "failed"
        assert len(runs) == 1 and runs[0]["status"] == "aborted", [dict(r) for r in runs]
        assert "stopped for a forced hand-over" in local.log("blue")
        assert (local.health("green")["role"], local.health("blue")["role"]) == ("active", "standby")
        assert local.weights() == {"blue": 0, "green": 100}
        entry = local.state()["history"][-1]
        assert (entry["result"], entry["handover"]["from"], entry["handover"]["to"]) == ("success", "blue", "green")
        assert entry["stopped_run"] == str(runs[0]["id"]) and "waited_for_run" not in entry  # what happened
        assert f"blue is stopping recipe run {runs[0]['id']} into its safe state" in deployed.stdout
        print(f"\nforced deploy {deployed.seconds:.2f}s, requests {dict(load.results)}, history {entry}")
    finally:
        await db.close()
