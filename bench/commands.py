"""Commands and recipes benchmark (issue #5): the real agent claims commands and runs recipes on the simulator.

    .venv/bin/python bench/commands.py [--commands 200] [--rate 5] [--poll-commands 100] [--pulses 20]
                                       [--wait-steps 500] [--wait-ms 10] [--quick]

What runs where:
- the local stack (`python -m supalocal run`, bench/children.py): PostgreSQL + the Supabase-compatible API,
  seeded with the reference machine, whose `parameters` rows are the default register map;
- the reactor simulator on the default map, *in this process* on its own thread and event loop
  (bench/sim_thread.py), so each valve edge is timed where docs/DESIGN.md §8 says: at the simulator, as it
  processes the write;
- the agent (`python -m agent run`, configured by environment variables as in production, 1 Hz sampling);
  one for the realtime runs, a second one for the poll-only run;
- this process: the "dashboard" (asyncpg inserts, as tests/e2e does), a second realtime subscriber, and
  reads of the results in PostgreSQL.

Measurements (docs/DESIGN.md §8 targets):
1. command insert → claimed: --commands `set_parameter` commands inserted at --rate per second; latency =
   `claimed_at − created_at`, both `now()` of their transactions, so both on the database's clock
   (target p50 < 100 ms, p99 < 500 ms). The agent polls every 5 s (the default) as well, as in production.
   Split: insert → the INSERT event at this process's own realtime subscription (the same server fan-out
   the agent's subscription gets), event → claimed, claimed → finished (the verified PLC write; `finished_at`
   is the agent's clock, the same host clock).
   Then the same with realtime off (the table taken out of the `supabase_realtime` publication of the
   bench's throw-away stack) and COMMAND_POLL_INTERVAL=1: the safety net alone, informational.
2. valve pulse duration error at the simulator: one recipe started by a `start_recipe` command, with --pulses
   pulses of 50 and 100 ms and half as many of 500 and 1000 ms (valves 1 and 2 alternating, a --gap-ms wait
   after each). Each open/close pair of `ValveEvent`s gives the duration the simulator saw; error = that −
   planned (target p99 |error| < 5 ms). Compared with the agent's own record in `run_steps` (`detail`'s
   `timing_error_ms`: midpoints of its request/acknowledgement pairs; and the step's `actual_ms − planned_ms`),
   and split into where the error comes from, from the agent's stamps (same monotonic clock). Diagnostics
   next to it: lateness by phase after a telemetry frame, the worst pulses, the agent's and the simulator's
   run-queue waits (/proc schedstat), a bare sleeper process's wake-up lateness (bench/wakeup_probe.py: the
   box's own noise), and an estimate of the error had the hold been timed from the open request.
3. step-boundary overhead: a recipe of --wait-steps wait steps of --wait-ms each (one loop): (actual run
   time − planned)/steps, with the run from the first step's start to the last step's end (`run_steps`,
   agent clock); and the spacing of consecutive step starts minus the planned duration.

The box is shared: the 1-min load average is printed next to each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from loguru import logger

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.cloud import CloudClient, Watch
from agent.plc import load_default_map
from bench.children import AgentProcess, StackProcess
from bench.command_report import CommandTiming, Pulse, SchedDelta, StepTiming, print_tables
from bench.harness import load1, log, parse_with_quick, run_until_interrupted
from bench.sim_thread import SimulatorThread
from supalocal.testing import SEED_MACHINE_ID
from tests.e2e.recipes import insert_command, insert_recipe, loop, valve, wait

COMMANDS, RATE, POLL_COMMANDS, PULSES, GAP_MS, WAIT_STEPS, WAIT_MS = 200, 5.0, 100, 20, 50.0, 500, 10.0
LOGGING_INTERVAL_S = 1.0
QUICK = {"commands": 10, "rate": 10.0, "poll_commands": 4, "pulses": 2, "wait_steps": 50}
PULSE_MS = (50.0, 100.0, 500.0, 1000.0)
SET_KEY = "frontline_heater.temperature_sp"  # writable, harmless to the other measurements
POLL_S = 1.0  # the poll-only run's COMMAND_POLL_INTERVAL
FINAL = ("succeeded", "failed", "rejected", "expired")
SETTLE_S = 1.0  # after the agent is active and subscribed, before inserting
CLAIM_TIMEOUT_S = 30.0
RUN_GRACE_S = 60.0  # beyond a recipe's planned time, for it to finish and its steps to ship


@dataclass
class Bench:
    """What every run shares."""

    tmp: Path
    stack: StackProcess
    sim: SimulatorThread
    db: asyncpg.Connection
    events: dict[int, float] = field(default_factory=dict)  # command id → INSERT event at this process (epoch)


def schedstat(pid: int, *, only: int | None = None) -> dict[str, tuple[int, int, int]]:
    """Per thread of `pid` ("main" or its tid; `only` = just that tid): CPU ns, run-queue wait ns, timeslices."""
    threads: dict[str, tuple[int, int, int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        if only is not None and task.name != str(only):
            continue
        with contextlib.suppress(OSError):  # a thread may end between the listing and the read
            cpu, wait, slices = (task / "schedstat").read_text().split()[:3]
            threads["main (event loop)" if task.name == str(pid) else f"tid {task.name}"] = (
                int(cpu),
                int(wait),
                int(slices),
            )
    return threads


def sched_delta(before: dict[str, tuple[int, int, int]], after: dict[str, tuple[int, int, int]]) -> list[SchedDelta]:
    return [
        SchedDelta(name, (c - before[name][0]) / 1e6, (w - before[name][1]) / 1e6, s - before[name][2])
        for name, (c, w, s) in after.items()
        if name in before and s > before[name][2]
    ]


# --- the agent -------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running_agent(
    bench: Bench, *, label: str, realtime: bool, logging_interval_s: float, poll_s: float | None = None
) -> Any:
    """An agent for the seeded machine, active (lease held) and, with `realtime`, subscribed; stopped after."""
    workdir = bench.tmp / label
    workdir.mkdir()
    settings = {
        "SUPABASE_URL": bench.stack.env["SUPABASE_URL"],
        "SUPABASE_KEY": bench.stack.env["SUPABASE_SERVICE_ROLE_KEY"],
        "MACHINE_ID": SEED_MACHINE_ID,
        "PLC_HOST": "127.0.0.1",
        "PLC_PORT": str(bench.sim.port),
        "SPOOL_PATH": str(workdir / "spool.sqlite"),
        "SHUTDOWN_TIMEOUT": "5",
        "PARAMETER_LOGGING_INTERVAL": str(logging_interval_s),
    }
    if poll_s is not None:
        settings["COMMAND_POLL_INTERVAL"] = str(poll_s)
    agent = AgentProcess(settings, log=workdir / "agent.log")
    try:
        await agent.wait_serving()
        async with asyncio.timeout(30):
            while True:
                body = await agent.health()
                if body["role"] == "active" and (not realtime or body["services"]["realtime"]["status"] == "up"):
                    break
                await asyncio.sleep(0.1)
        await asyncio.sleep(SETTLE_S)
        yield agent
    finally:
        await agent.stop()


async def until(check: Callable[[], Awaitable[bool]], *, timeout_s: float, every_s: float, what: str) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            while not await check():  # noqa: ASYNC110 - state in PostgreSQL: no event to wait on
                await asyncio.sleep(every_s)
    except TimeoutError:
        raise RuntimeError(f"timed out after {timeout_s:.0f}s waiting for {what}") from None


# --- 1. command insert → claimed ---------------------------------------------------------------------------


async def run_commands(bench: Bench, *, count: int, rate: float, label: str) -> list[CommandTiming]:
    """Insert `count` set_parameter commands at `rate`/s; their timings once every one is final."""
    log(f"{label}: {count} set_parameter commands at {rate:g}/s")
    ids: list[int] = []
    loop_ = asyncio.get_running_loop()
    t0 = loop_.time()
    for n in range(count):
        await asyncio.sleep(max(0.0, t0 + n / rate - loop_.time()))
        payload = {"key": SET_KEY, "value": 100.0 + n % 10}
        ids.append(await insert_command(bench.db, SEED_MACHINE_ID, "set_parameter", payload))

    async def all_final() -> bool:
        done = await bench.db.fetchval(
            "select count(*) from machine_commands where id = any($1) and status = any($2)", ids, list(FINAL)
        )
        return int(done) == len(ids)

    await until(all_final, timeout_s=CLAIM_TIMEOUT_S, every_s=0.2, what=f"{label}: commands to finish")
    rows = await bench.db.fetch(
        "select id, status, created_at, claimed_at, finished_at from machine_commands where id = any($1) order by id",
        ids,
    )
    return [
        CommandTiming(
            id=r["id"],
            status=r["status"],
            created=r["created_at"].timestamp(),
            claimed=r["claimed_at"].timestamp() if r["claimed_at"] else None,
            finished=r["finished_at"].timestamp() if r["finished_at"] else None,
            event=bench.events.get(r["id"]),
        )
        for r in rows
    ]


async def disable_realtime_for_commands(db: asyncpg.Connection) -> None:
    """Realtime off for commands on the server: the table leaves the publication (the stack drops its trigger)."""
    await db.execute("alter publication supabase_realtime drop table public.machine_commands")


# --- 2. and 3. recipes ---------------------------------------------------------------------------------------


async def run_recipe(
    bench: Bench, name: str, steps: list[Any], *, planned_s: float
) -> tuple[list[dict[str, Any]], list[float]]:
    """Insert the recipe, start it with a start_recipe command, wait for it and its shipped steps.

    Returns the run's steps and the acquisition times (`ts`, agent wall clock) of the frames sampled
    during it, for the pulses' phase analysis."""
    recipe_id = await insert_recipe(bench.db, name, steps)
    command_id = await insert_command(bench.db, SEED_MACHINE_ID, "start_recipe", {"recipe_id": recipe_id})

    async def finished() -> bool:
        status = await bench.db.fetchval("select status from machine_commands where id = $1", command_id)
        if status in FINAL and status != "succeeded":
            row = await bench.db.fetchrow("select status, error from machine_commands where id = $1", command_id)
            raise RuntimeError(f"{name}: command {command_id} {row['status']}: {row['error']}")
        return status == "succeeded"

    # one poll a second: the bench's thread stays idle while the simulator thread times the valves
    await until(finished, timeout_s=planned_s + RUN_GRACE_S, every_s=1.0, what=f"{name} to finish")
    run = await bench.db.fetchrow("select id, total_steps from process_runs where command_id = $1", command_id)

    async def shipped() -> bool:
        n = await bench.db.fetchval("select count(*) from run_steps where run_id = $1", run["id"])
        return int(n) == run["total_steps"]

    await until(shipped, timeout_s=RUN_GRACE_S, every_s=0.5, what=f"{name}: run_steps to ship")
    rows = await bench.db.fetch("select * from run_steps where run_id = $1 order by seq", run["id"])
    frames = await bench.db.fetch("select ts from parameter_history where run_id = $1 order by ts", run["id"])
    steps = [
        dict(r) | {"detail": json.loads(r["detail"]) if isinstance(r["detail"], str) else r["detail"]} for r in rows
    ]
    return steps, [f["ts"].timestamp() for f in frames]


def pulse_recipe(pulses: int, gap_ms: float) -> tuple[list[Any], float]:
    steps = []
    for duration in PULSE_MS:
        count = pulses if duration < 500 else max(1, pulses // 2)
        steps += [s for n in range(count) for s in (valve(1 + n % 2, duration), wait(gap_ms))]
    planned_ms = sum(cfg["duration_ms"] for _, _, cfg, _ in steps)
    return steps, planned_ms / 1000


def pair_pulses(steps: list[dict[str, Any]], events: list[Any]) -> list[Pulse]:
    """Each valve step with the simulator's open and close of its valve, in order, per valve."""
    edges: dict[int, list[tuple[float, float]]] = {}
    opened: dict[int, float] = {}
    for e in sorted(events, key=lambda e: e.t):
        if e.open:
            opened[e.valve] = e.t
        elif e.valve in opened:
            edges.setdefault(e.valve, []).append((opened.pop(e.valve), e.t))
    taken: dict[int, int] = {}
    pulses = []
    for step in (s for s in steps if s["type"] == "valve"):
        v = int(step["detail"]["valve"])
        k = taken.get(v, 0)
        taken[v] = k + 1
        sim_open, sim_close = edges.get(v, [])[k] if k < len(edges.get(v, [])) else (None, None)
        pulses.append(Pulse(step["planned_ms"], step["actual_ms"], step["detail"], sim_open, sim_close))
    return pulses


@dataclass
class PulseRun:
    pulses: list[Pulse]
    frames: list[float]  # acquisition times of the frames sampled during the run
    load: tuple[float, float]
    sched: dict[str, list[SchedDelta]]  # "agent", "simulator": run-queue waits over the run
    wakeup_late_ms: list[float]  # a bare sleeper process's lateness over the run (bench/wakeup_probe.py)


@contextlib.contextmanager
def wakeup_probe(late_ms: list[float]) -> Any:
    """bench/wakeup_probe.py in a child process for the duration; its lateness samples land in `late_ms`."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.wakeup_probe"],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # "ready"
        yield
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
        late_ms.extend(json.loads(out)["late_ms"][:-1])  # the last sleep was cut by the signal
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def run_pulses(bench: Bench, agent: AgentProcess, *, pulses: int, gap_ms: float) -> PulseRun:
    steps, planned_s = pulse_recipe(pulses, gap_ms)
    log(f"pulses: {len(steps) // 2} valve pulses, {planned_s:.1f} s planned")
    before = len(bench.sim.valve_events())
    load0 = load1()
    late_ms: list[float] = []
    with wakeup_probe(late_ms):
        agent0, sim0 = schedstat(agent.pid), schedstat(os.getpid(), only=bench.sim.native_id)
        rows, frames = await run_recipe(bench, "bench valve pulses", steps, planned_s=planned_s)
        agent1, sim1 = schedstat(agent.pid), schedstat(os.getpid(), only=bench.sim.native_id)
    events = bench.sim.valve_events()[before:]
    return PulseRun(
        pair_pulses(rows, events),
        frames,
        (load0, load1()),
        {"agent": sched_delta(agent0, agent1), "simulator (bench process)": sched_delta(sim0, sim1)},
        late_ms,
    )


async def run_waits(bench: Bench, *, count: int, wait_ms: float) -> tuple[list[StepTiming], tuple[float, float]]:
    log(f"step boundaries: {count} wait steps of {wait_ms:g} ms")
    load0 = load1()
    rows, _ = await run_recipe(
        bench, "bench wait steps", [loop(count, wait(wait_ms))], planned_s=count * wait_ms / 1000
    )
    timings = [
        StepTiming(r["planned_ms"], r["actual_ms"], r["started_at"].timestamp(), r["ended_at"].timestamp())
        for r in rows
    ]
    return timings, (load0, load1())


# --- main ------------------------------------------------------------------------------------------------------


async def bench_main(args: argparse.Namespace) -> None:
    async with contextlib.AsyncExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ald-bench-commands-")))
        log(f"starting the local stack and the simulator; load {load1():.2f}")
        supabase = StackProcess(tmp / "supalocal")
        stack.callback(supabase.stop)
        supabase.launch()
        await supabase.wait_ready()
        sim = stack.enter_context(SimulatorThread(load_default_map()))
        db = await asyncpg.connect(supabase.env["DATABASE_URL"])
        stack.push_async_callback(db.close)
        # This bench measures the agent-timed pulse path (issue #5): the machine's map loses its PLC pulse timers
        # (docs/CONTRACT.md §8 "PLC-timed pulses") before the agent starts; bench/pulses.py measures both paths.
        await db.execute(
            "delete from parameters where machine_id = $1 and key like 'valve\\_%.pulse\\_%'", SEED_MACHINE_ID
        )
        bench = Bench(tmp, supabase, sim, db)

        # A second realtime subscriber (the dashboard's view of the server's fan-out): INSERT arrival times.
        cloud = await stack.enter_async_context(
            CloudClient(supabase.env["SUPABASE_URL"], supabase.env["SUPABASE_SERVICE_ROLE_KEY"])
        )

        def on_insert(change: dict[str, Any]) -> None:
            arrived = time.time()
            record = change.get("record") or {}
            if "id" in record:
                bench.events.setdefault(int(record["id"]), arrived)

        watch = await cloud.watch(
            Watch("machine_commands", f"machine_id=eq.{SEED_MACHINE_ID}", on_insert, events="INSERT")
        )
        async with asyncio.timeout(30):
            await watch.ready.wait()

        loads: dict[str, tuple[float, float]] = {}
        realtime: list[CommandTiming] = []
        poll_only: list[CommandTiming] = []
        pulses: PulseRun | None = None
        waits: list[StepTiming] = []
        async with running_agent(
            bench, label="realtime", realtime=True, logging_interval_s=args.logging_interval
        ) as agent:
            if args.commands > 0:
                load0 = load1()
                realtime = await run_commands(bench, count=args.commands, rate=args.rate, label="realtime")
                loads["realtime"] = (load0, load1())
            if args.pulses > 0:
                pulses = await run_pulses(bench, agent, pulses=args.pulses, gap_ms=args.gap_ms)
                loads["pulses"] = pulses.load
            if args.wait_steps > 0:
                waits, loads["waits"] = await run_waits(bench, count=args.wait_steps, wait_ms=args.wait_ms)
        if args.poll_commands > 0:
            await disable_realtime_for_commands(db)
            async with running_agent(
                bench, label="poll-only", realtime=False, logging_interval_s=args.logging_interval, poll_s=POLL_S
            ):
                load0 = load1()
                poll_only = await run_commands(
                    bench, count=args.poll_commands, rate=args.rate, label=f"poll only ({POLL_S:g} s)"
                )
                loads["poll only"] = (load0, load1())
        print_tables(
            realtime=realtime,
            poll_only=poll_only,
            pulses=pulses.pulses if pulses else [],
            frames=pulses.frames if pulses else [],
            sched=pulses.sched if pulses else {},
            wakeup_late_ms=pulses.wakeup_late_ms if pulses else [],
            waits=waits,
            loads=loads,
            rate=args.rate,
            poll_s=POLL_S,
            logging_interval_s=args.logging_interval,
        )


def quiet_in_process_logs() -> None:
    """The simulator and the bench's realtime client log through loguru in this process: warnings only."""
    logger.remove()
    logger.add(sys.stderr, level="WARNING")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--commands", type=int, default=COMMANDS, help=f"commands in the realtime run; 0 skips it ({COMMANDS})"
    )
    parser.add_argument("--rate", type=float, default=RATE, help=f"command inserts per second ({RATE:g})")
    parser.add_argument(
        "--poll-commands",
        type=int,
        default=POLL_COMMANDS,
        help=f"commands in the poll-only run; 0 skips it ({POLL_COMMANDS})",
    )
    parser.add_argument(
        "--pulses",
        type=int,
        default=PULSES,
        help=f"pulses of 50 and of 100 ms, half as many of 500 and 1000; 0 skips them ({PULSES})",
    )
    parser.add_argument(
        "--logging-interval",
        type=float,
        default=LOGGING_INTERVAL_S,
        help=f"the agent's PARAMETER_LOGGING_INTERVAL, s ({LOGGING_INTERVAL_S:g}, the production default)",
    )
    parser.add_argument("--gap-ms", type=float, default=GAP_MS, help=f"wait after each pulse, ms ({GAP_MS:g})")
    parser.add_argument(
        "--wait-steps", type=int, default=WAIT_STEPS, help=f"steps of the boundary recipe; 0 skips it ({WAIT_STEPS})"
    )
    parser.add_argument("--wait-ms", type=float, default=WAIT_MS, help=f"duration of each of them, ms ({WAIT_MS:g})")
    args = parse_with_quick(parser, argv, QUICK)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_in_process_logs()

    return run_until_interrupted(lambda: bench_main(args))


if __name__ == "__main__":
    sys.exit(main())
