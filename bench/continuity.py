"""Continuity benchmark (issue 12): kill -9 and restart, a recipe through a cloud outage, commands with crashes.

    .venv/bin/python bench/continuity.py [--kills [N]] [--outage [S]] [--commands [N]]
                                         [--baseline-s S] [--rate R] [--kill-every S] [--quick]

With none of --kills/--outage/--commands, all three run with their defaults (10 kills, a 600 s outage, 100
commands); otherwise only those given (a flag without a value takes its default).

What runs where (as bench/commands.py): the local stack (`python -m supalocal run`, a child), the reactor
simulator on the default map on its own thread of this process (bench/sim_thread.py: valve edges and watchdog
trips are seen *at the PLC*), and real agents (`python -m agent run`, children configured by environment
variables, production defaults: 1 Hz sampling, 5 s PLC watchdog, 15 s lease). This process is the dashboard
(asyncpg inserts) and the observer (PostgreSQL reads, /health polls).

1. `--kills N`: N times, with the agent active and idle: kill -9, insert a set_parameter, restart at once with the
   same settings (spool, color, machine; a new HTTP port). Measured from the kill: the lease retaken (the
   `machine_leases` row's `expires_at` moves: only a live process of the holder can move it) and the new
   process's /health saying `active`; the command's `claimed_at` and `finished_at` (database and bench clocks are
   the same host clock). Watchdog trips are rising edges of the simulator's `watchdog_tripped`.
2. `--outage S`: a recipe of ALD cycles (pulses of 20, 50 and 100 ms, 150 ms purges) long enough to cover the
   outage with margin, started by a `start_recipe` command; the agent reaches Supabase through a TCP proxy
   (tests/support/proxy.py) which the bench cuts for S seconds mid-run. The same recipe's length without an
   outage first (capped by --baseline-s) for comparison. Reported after the fact from PostgreSQL: the outcome,
   steps completed/total, each step's `actual_ms − planned_ms` (p50/p99/max; and for the steps that started
   during the outage alone), the run's drift (its span − the planned total), valve opens counted at the simulator
   vs planned, run_steps rows vs total, parameter_history rows of the run vs its span at 1 Hz and their largest
   gap, quarantined records, and the time from the restore until the agent's spool is empty.
3. `--commands N`: N set_parameter commands inserted at --rate per second while the agent is killed -9 and
   restarted every --kill-every seconds: insert → claimed and insert → finished p50/p99/max, how each command
   ended (a command a killed agent had claimed is settled `failed` by its successor), and the share of /health
   polls that found an active agent.

The box is shared: the 1-min load average is printed next to each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.plc import load_default_map
from bench.children import AgentProcess, StackProcess
from bench.commands import quiet_in_process_logs
from bench.harness import load1, log, parse_with_quick, run_until_interrupted
from bench.read_cycle import pct
from bench.sim_thread import SimulatorThread
from supalocal.testing import SEED_MACHINE_ID
from tests.e2e.recipes import Step, insert_command, insert_recipe, loop, purge, valve
from tests.support.proxy import TcpProxy

KILLS, OUTAGE_S, COMMANDS, RATE, KILL_EVERY_S = 10, 600.0, 100, 2.0, 10.0
WATCHDOG_TIMEOUT_S = 5.0  # the agent's and the simulator's (production default)
LOGGING_INTERVAL_S = 1.0
SET_KEY = "frontline_heater.temperature_sp"  # writable and harmless
FINAL = ("succeeded", "failed", "rejected", "expired")
#: one ALD cycle: (valve, pulse ms) each followed by a purge
CYCLE = ((1, 20.0), (2, 50.0), (1, 100.0))
PURGE_MS = 150.0
QUICK = {"kills": 1, "outage": 3.0, "commands": 4, "kill_every": 1.0, "baseline_s": 3.0}
KILL_SETTLE_S = 2.0  # the restarted agent steady before the next kill
POLL_S = 0.05  # kill → retaken: lease row and /health
CLAIM_TIMEOUT_S = 60.0
RUN_GRACE_S = 90.0


@dataclass
class Bench:
    tmp: Path
    stack: StackProcess
    sim: SimulatorThread
    db: asyncpg.Connection
    proxy: TcpProxy


def pstats(values: list[float], *, scale: float = 1.0) -> str:
    """`p50 / p99 / max` of `values` (times `scale`), or `-`."""
    if not values:
        return "-"
    p50, p99, top = (v * scale for v in (statistics.median(values), pct(values, 99), max(values)))
    return f"{p50:.2f} / {p99:.2f} / {top:.2f}"


# --- agents ----------------------------------------------------------------------------------------------------


def agent_settings(bench: Bench, workdir: Path, *, url: str) -> dict[str, str]:
    workdir.mkdir(parents=True, exist_ok=True)
    return {
        "SUPABASE_URL": url,
        "SUPABASE_KEY": bench.stack.env["SUPABASE_SERVICE_ROLE_KEY"],
        "MACHINE_ID": SEED_MACHINE_ID,
        "PLC_HOST": "127.0.0.1",
        "PLC_PORT": str(bench.sim.port),
        "SPOOL_PATH": str(workdir / "spool.sqlite"),
        "SHUTDOWN_TIMEOUT": "5",
        "PARAMETER_LOGGING_INTERVAL": str(LOGGING_INTERVAL_S),
        "WATCHDOG_TIMEOUT": str(WATCHDOG_TIMEOUT_S),
    }


async def health_or_none(agent: AgentProcess) -> dict[str, Any] | None:
    """The /health body, or None while the process is not (yet) serving."""
    with contextlib.suppress(httpx.HTTPError, ValueError):
        return await agent.health()
    return None


async def until_active(agent: AgentProcess, *, since: float, timeout_s: float = 60.0) -> float | None:
    """Seconds from `since` (epoch) until the agent's /health says `active`; None on timeout or death."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            while agent.returncode() is None:
                body = await health_or_none(agent)
                if body is not None and body["role"] == "active":
                    return time.time() - since
                await asyncio.sleep(POLL_S)
    return None


async def start_active(settings: dict[str, str], log_path: Path) -> AgentProcess:
    agent = AgentProcess(settings, log=log_path)
    await agent.wait_serving()
    if await until_active(agent, since=time.time()) is None:
        await agent.stop()
        raise RuntimeError(f"the agent did not become active; see {log_path}")
    return agent


async def kill(agent: AgentProcess) -> None:
    agent.proc.kill()
    await asyncio.to_thread(agent.proc.wait)
    await agent.stop()  # closes its HTTP client and log; the process is gone already


async def wait_final(db: asyncpg.Connection, command: int, *, timeout_s: float) -> asyncpg.Record:
    async with asyncio.timeout(timeout_s):
        while True:
            row = await db.fetchrow("select * from machine_commands where id = $1", command)
            if row is not None and row["status"] in FINAL:
                return row
            await asyncio.sleep(0.1)


async def set_parameter(db: asyncpg.Connection, value: float) -> int:
    return await insert_command(db, SEED_MACHINE_ID, "set_parameter", {"key": SET_KEY, "value": value})


# --- 1. kill -9 → retaken ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KillSample:
    lease_s: float | None  # kill → machine_leases.expires_at moved
    active_s: float | None  # kill → the new process's /health role active
    claimed_s: float | None
    finished_s: float | None
    status: str
    trips: int
    load: float


async def lease_moved(db: asyncpg.Connection, before: Any, *, since: float, timeout_s: float = 60.0) -> float | None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            while True:
                now = await db.fetchval("select expires_at from machine_leases where machine_id = $1", SEED_MACHINE_ID)
                if now is not None and (before is None or now > before):
                    return time.time() - since
                await asyncio.sleep(POLL_S)
    return None


async def run_kills(bench: Bench, count: int) -> list[KillSample]:
    log(f"kills: {count} × kill -9 and restart")
    workdir = bench.tmp / "kills"
    settings = agent_settings(bench, workdir, url=bench.stack.env["SUPABASE_URL"])
    agent = await start_active(settings, workdir / "agent.log")
    samples: list[KillSample] = []
    try:
        await wait_final(bench.db, await set_parameter(bench.db, 100.0), timeout_s=CLAIM_TIMEOUT_S)
        for n in range(count):
            await asyncio.sleep(KILL_SETTLE_S)
            before = await bench.db.fetchval(
                "select expires_at from machine_leases where machine_id = $1", SEED_MACHINE_ID
            )
            trips0, load = bench.sim.watchdog_trips, load1()
            killed = time.time()
            await kill(agent)
            command = await set_parameter(bench.db, 101.0 + n % 10)
            agent = AgentProcess(settings, log=workdir / "agent.log")
            lease_s, active_s = await asyncio.gather(
                lease_moved(bench.db, before, since=killed), until_active(agent, since=killed)
            )
            row = await wait_final(bench.db, command, timeout_s=CLAIM_TIMEOUT_S)
            sample = KillSample(
                lease_s,
                active_s,
                row["claimed_at"].timestamp() - killed if row["claimed_at"] else None,
                row["finished_at"].timestamp() - killed if row["finished_at"] else None,
                row["status"],
                bench.sim.watchdog_trips - trips0,
                load,
            )
            samples.append(sample)
            log(f"kill {n + 1}/{count}: {sample}")
    finally:
        await agent.stop()
    return samples


def print_kills(samples: list[KillSample]) -> None:
    print(f"\n## kill -9 → restarted agent claiming again ({len(samples)} kills, restart at once)")
    print("| from the kill to | n | p50 / p99 / max s | load 1-min |")
    print("|---|---|---|---|")
    loads = f"{min(s.load for s in samples):.2f}–{max(s.load for s in samples):.2f}" if samples else "-"
    for label, values in (
        ("lease retaken (machine_leases.expires_at moved)", [s.lease_s for s in samples]),
        ("/health role active (new process)", [s.active_s for s in samples]),
        ("first command claimed (claimed_at)", [s.claimed_s for s in samples]),
        ("first command finished (finished_at)", [s.finished_s for s in samples]),
    ):
        got = [v for v in values if v is not None]
        print(f"| {label} | {len(got)} of {len(values)} | {pstats(got)} | {loads} |")
    statuses = Counter(s.status for s in samples)
    trips = sum(s.trips for s in samples)
    print(
        f"\nPLC watchdog trips (at the simulator, timeout {WATCHDOG_TIMEOUT_S:g} s): **{trips}** over "
        f"{len(samples)} restarts; commands: {dict(statuses)}"
    )


# --- 2. a recipe through an outage -----------------------------------------------------------------------------


def ald_recipe(seconds: float) -> tuple[list[Step], int, float]:
    """ALD cycles covering `seconds`: the steps, the number of pulses, the planned duration (s)."""
    cycle_ms = sum(ms + PURGE_MS for _, ms in CYCLE)
    cycles = max(1, math.ceil(seconds * 1000 / cycle_ms))
    body = [s for v, ms in CYCLE for s in (valve(v, ms, f"valve {v} {ms:g} ms pulse"), purge(PURGE_MS))]
    return [loop(cycles, *body, name="ALD cycle")], cycles * len(CYCLE), cycles * cycle_ms / 1000


@dataclass
class RunResult:
    label: str
    planned_s: float
    cut_s: float = 0.0
    command: str = ""
    run: str = ""
    completed: int = 0
    total: int = 0
    step_rows: int = 0
    errors_ms: list[float] = field(default_factory=list)  # actual − planned, every step
    during_ms: list[float] = field(default_factory=list)  # the same, steps started while cut
    drift_ms: float = 0.0
    pulses_planned: int = 0
    pulses_seen: int = 0
    frames: int = 0
    frames_expected: float = 0.0
    max_gap_s: float = 0.0
    quarantined: int = -1
    depth_at_restore: int = 0
    drain_s: float | None = None
    run_alive_while_cut: bool = True
    load: list[float] = field(default_factory=list)


async def shipped_steps(db: asyncpg.Connection, run_id: Any) -> int:
    return int(await db.fetchval("select count(*) from run_steps where run_id = $1", run_id))


async def wait_drained(agent: AgentProcess, *, since: float, timeout_s: float = RUN_GRACE_S) -> float | None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            while True:
                body = await health_or_none(agent)
                if body is not None and body["metrics"]["spool_depth"] == 0:
                    return time.time() - since
                await asyncio.sleep(0.2)
    return None


async def ride_out(bench: Bench, agent: AgentProcess, result: RunResult, *, outage_s: float) -> tuple[float, float]:
    """Cut the proxy for `outage_s`, watching /health once a second; restore; the (cut, restore) epochs."""
    await bench.proxy.cut()
    cut = time.time()
    while time.time() < cut + outage_s:
        body = await health_or_none(agent)
        if body is not None and body["current_run"] is None:
            result.run_alive_while_cut = False
        await asyncio.sleep(min(1.0, max(0.0, cut + outage_s - time.time())))
    body = await health_or_none(agent)
    result.depth_at_restore = body["metrics"]["spool_depth"] if body else -1
    await bench.proxy.restore()
    restored = time.time()
    result.cut_s = restored - cut
    result.drain_s = await wait_drained(agent, since=restored)
    log(f"{result.label}: restored after {result.cut_s:.1f} s; spool empty {result.drain_s} s later")
    return cut, restored


async def run_recipe(
    bench: Bench, agent: AgentProcess, *, label: str, seconds: float, outage_s: float, lead_s: float = 0.0
) -> RunResult:
    """Run ALD cycles for about `seconds`; with `outage_s`, cut Supabase `lead_s` into the run for that long."""
    steps, pulses, planned_s = ald_recipe(seconds)
    result = RunResult(label, planned_s, pulses_planned=pulses, load=[load1()])
    log(f"{label}: {pulses} pulses, {planned_s:.1f} s planned" + (f", outage {outage_s:g} s" if outage_s else ""))
    opens0 = sum(1 for e in bench.sim.valve_events() if e.open)
    command = await insert_command(
        bench.db, SEED_MACHINE_ID, "start_recipe", {"recipe_id": await insert_recipe(bench.db, label, steps)}
    )
    async with asyncio.timeout(CLAIM_TIMEOUT_S):
        while (body := await health_or_none(agent)) is None or body["current_run"] is None:  # noqa: ASYNC110
            await asyncio.sleep(0.2)  # another process's state: no event to wait on
    window: tuple[float, float] | None = None
    if outage_s > 0:
        await asyncio.sleep(lead_s)
        window = await ride_out(bench, agent, result, outage_s=outage_s)
    row = await wait_final(bench.db, command, timeout_s=planned_s + RUN_GRACE_S)
    result.command = f"{row['status']}" + (f" ({row['error']})" if row["error"] else "")
    run = await bench.db.fetchrow("select * from process_runs where command_id = $1", command)
    if run is None:
        raise RuntimeError(f"{label}: command {command} {result.command} left no process_runs row")
    result.run, result.completed, result.total = run["status"], run["completed_steps"], run["total_steps"]
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(RUN_GRACE_S):
            while await shipped_steps(bench.db, run["id"]) < result.total:  # noqa: ASYNC110 - state in PostgreSQL
                await asyncio.sleep(0.5)
    if window is None:
        result.drain_s = await wait_drained(agent, since=time.time())
    rows = await bench.db.fetch("select * from run_steps where run_id = $1 order by seq", run["id"])
    result.step_rows = len(rows)
    timed = [r for r in rows if r["actual_ms"] is not None and r["planned_ms"] is not None]
    result.errors_ms = [r["actual_ms"] - r["planned_ms"] for r in timed]
    if window is not None:
        result.during_ms = [
            r["actual_ms"] - r["planned_ms"] for r in timed if window[0] <= r["started_at"].timestamp() <= window[1]
        ]
    span_s = 0.0
    if timed:
        span_s = (timed[-1]["ended_at"] - timed[0]["started_at"]).total_seconds()
        result.drift_ms = span_s * 1000 - sum(r["planned_ms"] for r in timed)
    result.pulses_seen = sum(1 for e in bench.sim.valve_events() if e.open) - opens0
    frames = [
        f["ts"].timestamp()
        for f in await bench.db.fetch("select ts from parameter_history where run_id = $1 order by ts", run["id"])
    ]
    result.frames, result.frames_expected = len(frames), span_s / LOGGING_INTERVAL_S
    result.max_gap_s = max((b - a for a, b in itertools.pairwise(frames)), default=0.0)
    body = await health_or_none(agent)
    result.quarantined = body["metrics"]["quarantined"] if body else -1
    result.load.append(load1())
    return result


async def run_outage(bench: Bench, *, outage_s: float, baseline_s: float) -> list[RunResult]:
    workdir = bench.tmp / "outage"
    agent = await start_active(agent_settings(bench, workdir, url=bench.proxy.url), workdir / "agent.log")
    lead_s = min(10.0, max(1.0, outage_s / 3))  # the run under way before the cut
    seconds = lead_s + outage_s + max(5.0, min(30.0, outage_s / 4))  # and a tail after the restore
    try:
        results = []
        if baseline_s > 0:
            baseline = await run_recipe(bench, agent, label="no outage", seconds=min(baseline_s, seconds), outage_s=0)
            results.append(baseline)
        label = f"outage {outage_s:g} s"
        results.append(await run_recipe(bench, agent, label=label, seconds=seconds, outage_s=outage_s, lead_s=lead_s))
    finally:
        await agent.stop()
    return results


def print_outage(results: list[RunResult]) -> None:
    print("\n## a recipe through a cloud outage (ALD cycles: 20/50/100 ms pulses, 150 ms purges)")
    print(
        "| run | planned s | cut s | command | run | steps completed / total | run_steps rows | "
        "step error p50 / p99 / max ms | steps during the cut, same | run drift ms | pulses at the PLC / planned | "
        "load 1-min |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r.label} | {r.planned_s:.1f} | {r.cut_s:.1f} | {r.command} | {r.run} | {r.completed} / {r.total} | "
            f"{r.step_rows} | {pstats(r.errors_ms)} | {pstats(r.during_ms) if r.cut_s else '-'} | {r.drift_ms:.0f} | "
            f"{r.pulses_seen} / {r.pulses_planned} | {r.load[0]:.2f}→{r.load[-1]:.2f} |"
        )
    print("\n## records after the outage")
    print(
        "| run | spool records at restore | restore → spool empty s | parameter_history rows of the run | "
        "expected (≈ span at 1 Hz) | largest gap s | quarantined | run active all through the cut |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        drain = f"{r.drain_s:.2f}" if r.drain_s is not None else "**not drained**"
        print(
            f"| {r.label} | {r.depth_at_restore if r.cut_s else '-'} | {drain if r.cut_s else '-'} | {r.frames} | "
            f"{r.frames_expected:.0f} | {r.max_gap_s:.2f} | {r.quarantined} | "
            f"{('yes' if r.run_alive_while_cut else '**no**') if r.cut_s else '-'} |"
        )


# --- 3. commands with kills --------------------------------------------------------------------------------------


@dataclass
class Drill:
    rows: list[asyncpg.Record] = field(default_factory=list)
    restarts: int = 0
    polls: int = 0
    active_polls: int = 0
    trips: int = 0
    load: list[float] = field(default_factory=list)


async def run_drill(bench: Bench, *, count: int, rate: float, kill_every_s: float) -> Drill:
    log(f"commands: {count} set_parameter at {rate:g}/s, kill -9 + restart every {kill_every_s:g} s")
    workdir = bench.tmp / "drill"
    settings = agent_settings(bench, workdir, url=bench.stack.env["SUPABASE_URL"])
    drill = Drill(load=[load1()])
    current = [await start_active(settings, workdir / "agent.log")]
    trips0 = bench.sim.watchdog_trips

    async def killer() -> None:
        while True:
            await asyncio.sleep(kill_every_s)
            await kill(current[0])
            current[0] = AgentProcess(settings, log=workdir / "agent.log")
            drill.restarts += 1

    async def observer() -> None:
        while True:
            body = await health_or_none(current[0])
            drill.polls += 1
            drill.active_polls += body is not None and body["role"] == "active"
            await asyncio.sleep(0.25)

    ids: list[int] = []
    tasks = [asyncio.create_task(killer()), asyncio.create_task(observer())]
    try:
        t0 = time.monotonic()
        for n in range(count):
            await asyncio.sleep(max(0.0, t0 + n / rate - time.monotonic()))
            ids.append(await set_parameter(bench.db, 100.0 + n % 10))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for command in ids:
            await wait_final(bench.db, command, timeout_s=CLAIM_TIMEOUT_S)
        drill.rows = await bench.db.fetch("select * from machine_commands where id = any($1) order by id", ids)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await current[0].stop()
    drill.trips = bench.sim.watchdog_trips - trips0
    drill.load.append(load1())
    return drill


def print_drill(drill: Drill, *, rate: float, kill_every_s: float) -> None:
    rows = drill.rows
    claimed = [(r["claimed_at"] - r["created_at"]).total_seconds() for r in rows if r["claimed_at"]]
    finished = [(r["finished_at"] - r["created_at"]).total_seconds() for r in rows if r["finished_at"]]
    print(
        f"\n## commands drill: insert → claimed with kill -9 + restart every {kill_every_s:g} s "
        f"({len(rows)} set_parameter at {rate:g}/s)"
    )
    print("| measure | n | p50 / p99 / max ms | load 1-min |")
    print("|---|---|---|---|")
    load = f"{drill.load[0]:.2f}→{drill.load[-1]:.2f}"
    print(f"| insert → claimed | {len(claimed)} | {pstats(claimed, scale=1000)} | {load} |")
    print(f"| insert → finished | {len(finished)} | {pstats(finished, scale=1000)} | {load} |")
    statuses = Counter(r["status"] for r in rows)
    reasons = Counter((r["error"] or "")[:90] for r in rows if r["status"] != "succeeded")
    share = drill.active_polls / drill.polls if drill.polls else 0.0
    print(
        f"\n{drill.restarts} restarts; commands ended {dict(statuses)}; an active agent answered "
        f"{share:.0%} of {drill.polls} /health polls; PLC watchdog trips: {drill.trips}"
    )
    for reason, n in reasons.most_common(3):
        print(f"- {n} × {reason}")


# --- main ----------------------------------------------------------------------------------------------------------


async def bench_main(args: argparse.Namespace) -> None:
    async with contextlib.AsyncExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ald-bench-continuity-")))
        log(f"starting the local stack and the simulator; load {load1():.2f}")
        supabase = StackProcess(tmp / "supalocal")
        stack.callback(supabase.stop)
        supabase.launch()
        await supabase.wait_ready()
        sim = stack.enter_context(SimulatorThread(load_default_map(), watchdog_timeout_s=WATCHDOG_TIMEOUT_S))
        db = await asyncpg.connect(supabase.env["DATABASE_URL"])
        stack.push_async_callback(db.close)
        host, port = supabase.env["SUPABASE_URL"].removeprefix("http://").rsplit(":", 1)
        proxy = await stack.enter_async_context(TcpProxy(host, int(port)))
        bench = Bench(tmp, supabase, sim, db, proxy)
        if args.kills:
            print_kills(await run_kills(bench, args.kills))
        if args.outage:
            print_outage(await run_outage(bench, outage_s=args.outage, baseline_s=args.baseline_s))
        if args.commands:
            drill = await run_drill(bench, count=args.commands, rate=args.rate, kill_every_s=args.kill_every)
            print_drill(drill, rate=args.rate, kill_every_s=args.kill_every)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, nargs="?", const=KILLS, help=f"kill -9 + restart N times ({KILLS})")
    parser.add_argument(
        "--outage", type=float, nargs="?", const=OUTAGE_S, help=f"cut Supabase for S s mid-recipe ({OUTAGE_S:g})"
    )
    parser.add_argument(
        "--commands", type=int, nargs="?", const=COMMANDS, help=f"commands in the kill drill ({COMMANDS})"
    )
    parser.add_argument(
        "--baseline-s",
        type=float,
        default=math.inf,
        help="cap on the no-outage run's length, s; 0 skips it (default: as long as the outage run)",
    )
    parser.add_argument("--rate", type=float, default=RATE, help=f"drill inserts per second ({RATE:g})")
    parser.add_argument(
        "--kill-every", type=float, default=KILL_EVERY_S, help=f"drill: s between kills ({KILL_EVERY_S:g})"
    )
    args = parse_with_quick(parser, argv, QUICK)
    if args.kills is None and args.outage is None and args.commands is None:
        args.kills, args.outage, args.commands = KILLS, OUTAGE_S, COMMANDS
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_in_process_logs()
    return run_until_interrupted(lambda: bench_main(args))


if __name__ == "__main__":
    sys.exit(main())
