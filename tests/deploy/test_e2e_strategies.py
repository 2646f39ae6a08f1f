"""Canary and rolling on the local runtime with real agents. Canary: the lease moves first (one writer), read
traffic then steps 25 % → 100 % while the old color stays warm; no request fails. Rolling (stop-then-start in
place, for hosts that cannot run two agents): honest about its gap — HAProxy answers 503 while the only agent
restarts, commands wait in the table and each is still run exactly once."""

from __future__ import annotations

import asyncio
import itertools

import asyncpg
from local_stage import Load, LocalStage
from test_e2e_blue_green import color_of, executions, final_rows

from supalocal.testing import SEED_MACHINE_ID
from tests.e2e.recipes import insert_command


async def test_canary_then_rolling(local: LocalStage) -> None:
    for tag in ("v1", "v2", "v3"):
        local.release(tag)
    assert (await local.ascript(local.DEPLOY, "-e", "local", "-t", "v1")).returncode == 0

    with Load(f"{local.lb_url}/health") as load:
        canary = await local.ascript(local.DEPLOY, "-e", "local", "-t", "v2", "-s", "canary",
                                     CANARY_STEPS="25 100", CANARY_PAUSE="1")  # fmt: skip
    assert canary.returncode == 0, canary.output
    assert load.failed == {} and load.results["blue"] > 0 and load.results["green"] > 0, load.results
    steps = [ln for ln in canary.stdout.splitlines() if ln.startswith(("==> lease", "==> weights"))]
    assert steps == ["==> lease: blue stops claiming, lets a running recipe finish, releases (up to 20s)",
                     "==> lease: green takes it (activate, then /health role active, up to 20s)",
                     "==> weights: green=25, blue=75", "==> weights: green=100, blue=0"]  # fmt: skip
    assert (local.health("green")["role"], local.health("blue")["role"]) == ("active", "standby")  # blue warm
    print(f"\ncanary {canary.seconds:.2f}s, requests {dict(load.results)}")

    db = await asyncpg.connect(local.db_url)
    try:
        inserted: list[int] = []

        async def insert_continuously(stop: asyncio.Event) -> None:
            while not stop.is_set() and len(inserted) < 400:
                inserted.append(await insert_command(db, SEED_MACHINE_ID, "set_parameter",
                                                     {"key": "mfc_1.flow_sp", "value": 12}))  # fmt: skip
                await asyncio.sleep(0.05)

        stop = asyncio.Event()
        with Load(f"{local.lb_url}/health") as load:
            inserter = asyncio.create_task(insert_continuously(stop))
            rolling = await local.ascript(local.DEPLOY, "-e", "local", "-t", "v3", "-s", "rolling")
            stop.set()
            await inserter
        assert rolling.returncode == 0, rolling.output
        assert "==> starting green on v3" in rolling.stdout and "==> stopping blue" in rolling.stdout
        assert set(load.failed) <= {"http 503"}, load.results  # the gap: no agent, HAProxy says so at once
        assert "gap without an agent" in rolling.stdout
        rows = await final_rows(db, inserted)
        assert all(executions(local, r["id"]) == 1 for r in rows)  # none lost, none run twice
        # The gap may outlast the PLC watchdog (simulator: 5 s without a kick), which then forces its safe state
        # (MFC flow 0, valves shut). The new holder moves the watchdog before its first claim, so no command is
        # claimed into a tripped PLC: every set_parameter reads back what it wrote.
        failed = [r for r in rows if r["status"] != "succeeded"]
        assert failed == [], [dict(r) for r in failed]
        by_time = sorted(rows, key=lambda r: r["claimed_at"])
        gaps = [(b["claimed_at"] - a["claimed_at"]).total_seconds() for a, b in itertools.pairwise(by_time)]
        entry = local.state()["history"][-1]
        assert (entry["strategy"], entry["result"], entry["color"]) == ("rolling", "success", "green")
        assert entry["gap_s"] > 0 and local.state()["colors"]["blue"]["version"] is None
        assert {color_of(r["claimed_by"]) for r in rows} == {"green"}
        print(f"rolling {rolling.seconds:.2f}s, gap {entry['gap_s']}s, longest command gap {max(gaps):.3f}s, "
              f"commands {len(rows)}, requests {dict(load.results)}")  # fmt: skip

    finally:
        await db.close()
