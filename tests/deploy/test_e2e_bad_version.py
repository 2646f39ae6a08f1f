"""(d) Bad versions on the local runtime are refused automatically, and the old color keeps lease and traffic:
a release that cannot start, one that is up but degraded (its PLC unreachable) when HEALTH_ACCEPT=healthy, and
one that passes every check but cannot take the lease (Supabase unreachable), so the lease goes back."""

from __future__ import annotations

import asyncpg
from deploy_support import free_port
from local_stage import Load, LocalStage
from test_e2e_blue_green import color_of, final_rows

from supalocal.testing import SEED_MACHINE_ID
from tests.e2e.recipes import insert_command


def assert_blue_kept_everything(local: LocalStage, result: str) -> None:
    assert local.weights() == {"blue": 100, "green": 0}
    assert local.health("blue")["role"] == "active" and local.health("green") == {}  # green stopped
    state = local.state()
    assert (state["active_color"], state["active_version"]) == ("blue", "v1")
    assert (state["history"][-1]["result"], state["colors"]["green"]["version"]) == (result, None)


async def test_bad_versions_are_rolled_back_and_blue_keeps_lease_and_traffic(local: LocalStage) -> None:
    local.release("v1")
    local.release("crash", env={"PLC_PORT": "70000"})  # invalid setting: the agent exits 2 at start
    local.release("noplc", env={"PLC_PORT": str(free_port())})  # nothing listens there: degraded
    local.release("nocloud", env={"SUPABASE_URL": f"http://127.0.0.1:{free_port()}"})  # never holds the lease
    assert (await local.ascript(local.DEPLOY, "-e", "local", "-t", "v1")).returncode == 0
    db = await asyncpg.connect(local.db_url)
    try:
        with Load(f"{local.lb_url}/health") as load:
            crash = await local.ascript(local.DEPLOY, "-e", "local", "-t", "crash")
            assert crash.returncode == 1 and "the green process exited" in crash.stderr
            assert "PLC_PORT" in crash.stderr  # the log tail is printed before the color is stopped
            assert "==> lease" not in crash.stdout  # the lease was never asked to move
            assert_blue_kept_everything(local, "aborted")

            noplc = await local.ascript(local.DEPLOY, "-e", "local", "-t", "noplc", "--timeout", "5",
                                        HEALTH_ACCEPT="healthy")  # fmt: skip
            assert noplc.returncode == 1 and "green failed its health check" in noplc.stderr
            assert "==> lease" not in noplc.stdout
            assert_blue_kept_everything(local, "aborted")

            nocloud = await local.ascript(local.DEPLOY, "-e", "local", "-t", "nocloud", LEASE_TIMEOUT="3")
            assert nocloud.returncode == 1, nocloud.output
            assert "==> lease: back to blue" in nocloud.stdout and "blue keeps lease and traffic" in nocloud.stderr
            assert_blue_kept_everything(local, "aborted")
        assert load.failed == {} and set(load.results) == {"blue"}, load.results
        command = await insert_command(db, SEED_MACHINE_ID, "set_parameter", {"key": "mfc_1.flow_sp", "value": 3})
        (row,) = await final_rows(db, [command])
        assert row["status"] == "succeeded" and color_of(row["claimed_by"]) == "blue"
        print(f"\nrefused: crash {crash.seconds:.1f}s, noplc {noplc.seconds:.1f}s, nocloud {nocloud.seconds:.1f}s; "
              f"requests {dict(load.results)}")  # fmt: skip
    finally:
        await db.close()
