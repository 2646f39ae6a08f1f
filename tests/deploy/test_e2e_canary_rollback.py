"""A canary that breaches during its bake is rolled back automatically, with real agents on the local runtime.

The new release (v2) talks to its own PLC simulator, which the test stops once v2 holds the lease and takes its
first share of traffic: v2's sample frames then fail (`ald_failed_frames_total` rises during the bake; its
/health only says "degraded", which the gate accepts), so the canary gate (no new agent errors) fails. The
lease and the traffic must go back to blue (v1), not one read may fail, green is stopped and the deploy history
records the rollback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

from deploy_support import ROOT, stop_process
from local_stage import Load, LocalStage

from tests.support.poll import eventually


@contextlib.contextmanager
def simulator() -> Iterator[tuple[int, subprocess.Popen]]:
    """A second PLC simulator (`python -m agent simulate --port 0`): its port and process; stopped on exit."""
    proc = subprocess.Popen([sys.executable, "-m", "agent", "simulate", "--port", "0"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("listening on "):
            raise RuntimeError(f"simulator did not start: {line!r}")
        yield int(line.rsplit(":", 1)[1]), proc
    finally:
        stop_process(proc)
        if proc.stdout:
            proc.stdout.close()


async def test_canary_breaching_during_its_bake_is_rolled_back(local: LocalStage) -> None:
    local.release("v1")
    assert (await local.ascript(local.DEPLOY, "-e", "local", "-t", "v1")).returncode == 0
    with simulator() as (port, plc), Load(f"{local.lb_url}/health") as load:
        local.release("v2", env={"PLC_PORT": str(port)})
        deploy = asyncio.create_task(local.ascript(local.DEPLOY, "-e", "local", "-t", "v2", "-s", "canary",
                                                   CANARY_STEPS="25 100", CANARY_PAUSE="4"))  # fmt: skip
        # v2 holds the lease and HAProxy gives it 25 %: the bake has begun. Then its PLC goes away.
        await eventually(lambda: local.health("green").get("role") == "active" and local.weights()["green"] == 25,
                         within=30, every=0.05)  # fmt: skip
        stop_process(plc)
        canary = await deploy
    assert canary.returncode == 1, canary.output
    assert "canary failed at 25%" in canary.stderr and "new agent error(s)" in canary.stderr
    assert "==> canary rollback: lease and traffic back to blue" in canary.stdout
    assert "==> weights: green=100" not in canary.stdout  # never went past the breached step
    assert load.failed == {} and load.results["blue"] > 0, load.results  # 0 failed reads
    assert local.weights() == {"blue": 100, "green": 0}
    assert local.health("blue")["role"] == "active" and local.health("green") == {}  # green stopped
    state = local.state()
    assert (state["active_color"], state["active_version"]) == ("blue", "v1")
    entry = state["history"][-1]
    assert (entry["strategy"], entry["version"], entry["color"], entry["result"]) == (
        "canary", "v2", "green", "aborted@25%")  # fmt: skip
    assert (entry["handover"]["from"], entry["handover"]["to"]) == ("green", "blue")  # the last move: the rollback
    print(f"\ncanary rolled back in {canary.seconds:.2f}s; requests {dict(load.results)}; history {entry}")


async def test_canary_killed_during_its_bake_is_rolled_back_once_its_lease_expires(local: LocalStage) -> None:
    """The canary process dies (kill -9: no hand-over, no release) while it holds the lease. The old color can
    only take the lease back when the dead holder's lease expires on the server (TTL), and must then: the gate
    sees a canary that does not answer, and the rollback waits for the lease instead of giving up."""
    local.release("v1")
    assert (await local.ascript(local.DEPLOY, "-e", "local", "-t", "v1")).returncode == 0
    threads = 2
    with Load(f"{local.lb_url}/health", threads=threads) as load:
        local.release("v2")
        deploy = asyncio.create_task(local.ascript(local.DEPLOY, "-e", "local", "-t", "v2", "-s", "canary",
                                                   CANARY_STEPS="25 100", CANARY_PAUSE="2"))  # fmt: skip
        await eventually(lambda: local.health("green").get("role") == "active" and local.weights()["green"] == 25,
                         within=30, every=0.05)  # fmt: skip
        green_pid = int((local.run_dir / "green/agent.pid").read_text())
        os.kill(green_pid, signal.SIGKILL)
        canary = await deploy
    assert canary.returncode == 1, canary.output
    assert "canary failed at 25%" in canary.stderr
    assert "==> canary rollback: lease and traffic back to blue" in canary.stdout
    assert local.health("blue")["role"] == "active"  # took the lease back after the dead holder's expired
    assert local.weights() == {"blue": 100, "green": 0}
    # only a request in flight to green at the moment of the kill can fail (HAProxy redispatches the rest)
    assert sum(load.failed.values()) <= threads and load.results["blue"] > 0, load.results
    entry = local.state()["history"][-1]
    assert (entry["version"], entry["result"]) == ("v2", "aborted@25%")
    assert (local.state()["active_color"], local.state()["active_version"]) == ("blue", "v1")
    print(f"\ncanary killed mid-bake, rolled back in {canary.seconds:.2f}s; requests {dict(load.results)}")
