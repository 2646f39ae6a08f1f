"""Telemetry-path benchmark (issue #4): the real agent, PLC → spool → Supabase → a row in PostgreSQL.

    .venv/bin/python bench/telemetry.py [--duration 60] [--outage 60] [--params 500] [--quick]

What runs where (each in its own process, so every figure is the agent's own):
- the local stack (`python -m supalocal run`): PostgreSQL + the Supabase-compatible API;
- the reactor simulator (`python -m agent simulate --map <synthetic 500-parameter map>`), as in read_cycle.py;
- the agent (`python -m agent run`, configured by environment variables as in production), one process per
  run below, each for its own bench machine whose 500 `parameters` rows the bench inserted (the agent loads
  its map from there) — the simulator serves the same synthetic map (bench/synthetic_map.py);
- this process: the probes only (LISTEN, /health polls, /proc reads, and the cuttable proxy of run 3).

Runs and what each one measures (docs/DESIGN.md §8 targets):
1. `10 Hz` (PARAMETER_LOGGING_INTERVAL=0.1) for --duration seconds: read → row-visible latency p50/p99
   (target p99 < 100 ms), sustained rate without backlog growth (spool depth over time, frames visible vs
   expected, skipped ticks), RSS (target < 100 MB).
2. `1 Hz` for --duration seconds: the agent's CPU, utime + stime of its process (all threads) from
   /proc/<pid>/stat over the window, as % of one core (target ≤ 5 %); latency and RSS again.
3. `outage` at 10 Hz through a TCP proxy the bench cuts for --outage seconds (Supabase unreachable, frames
   accumulate in the spool), then restores: reconnect delay, replay rate, frames lost, order kept.

Latency: `parameter_history.ts` is the acquisition time (the midpoint of the sampler's read); visibility is
the arrival of the commit's NOTIFY from a bench-only trigger (see bench/pg_probe.py for why that is sound).
Windows start after a warm-up (the first visible frame + --warmup seconds), so start-up is excluded.
Loss: at the end of each run the agent's own frame count (from /health, with its snapshot time) is compared
with the rows in PostgreSQL acquired up to that time.

The /health polls (every --poll seconds: 1 s at 10 Hz, 5 s at 1 Hz) cost the agent a little CPU; that cost
is included in the figures. Load average is printed next to each run: the box is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.children import AgentProcess, ProcSample, StackProcess, read_proc
from bench.harness import load1, log, parse_with_quick, run_until_interrupted
from bench.pg_probe import FrameWatch, Visible, count_rows, install_frame_trigger, seed_bench_machine
from bench.read_cycle import pct
from bench.testbed import start_testbed
from tests.support.proxy import TcpProxy

DURATION_S, OUTAGE_S, WARMUP_S, PARAMS = 60.0, 60.0, 5.0, 500
QUICK = {"duration": 1.0, "outage": 1.0, "warmup": 0.3}
FAST_INTERVAL_S, SLOW_INTERVAL_S = 0.1, 1.0
FIRST_FRAME_TIMEOUT_S = 60.0
RECONNECT_TIMEOUT_S = 90.0  # generous: the shipper retries at least every 5 s during an outage
GROWTH_LIMIT = 5  # spool records: a backlog that grows by more than this over the window is not sustained


@dataclass
class Bench:
    """What every run shares."""

    tmp: Path
    stack: StackProcess
    sim_port: int
    db: asyncpg.Connection
    watch: FrameWatch
    map_csv: str
    params: int


@dataclass
class Observed:
    """One agent run's samples over its window [t0, t1] (epoch seconds)."""

    label: str
    interval_s: float
    t0: float = 0.0
    t1: float = 0.0
    depth: list[tuple[float, int]] = field(default_factory=list)  # (t, spool records)
    proc: list[ProcSample] = field(default_factory=list)
    frames: list[Visible] = field(default_factory=list)  # visible, acquired in the window
    skipped: int = 0
    lost: int = 0
    order_kept: bool = True
    values_per_frame: int = 0
    load: tuple[float, float] = (0.0, 0.0)  # 1-min load average at start and end


@dataclass
class Replay:
    cut_s: float = 0.0
    backlog: int = 0  # frames acquired during the outage, shipped after the restore
    depth_at_restore: int = 0
    reconnect_s: float = 0.0  # restore → first commit
    drain_s: float = 0.0  # first commit → last backlog frame visible
    batches: list[int] = field(default_factory=list)
    steady_rate: float = 0.0  # frames/s between the first and the last backlog commit
    overall_rate: float = 0.0  # backlog / (restore → caught up), backoff included


# --- one agent run ---------------------------------------------------------------------------------------


async def start_agent(bench: Bench, *, label: str, interval_s: float, url: str) -> tuple[AgentProcess, str]:
    machine_id = await seed_bench_machine(bench.db, bench.map_csv, label=label)
    workdir = bench.tmp / label.replace(" ", "-")
    workdir.mkdir()
    agent = AgentProcess(
        {
            "SUPABASE_URL": url,
            "SUPABASE_KEY": bench.stack.env["SUPABASE_SERVICE_ROLE_KEY"],
            "MACHINE_ID": machine_id,
            "PLC_HOST": "127.0.0.1",
            "PLC_PORT": str(bench.sim_port),
            "PARAMETER_LOGGING_INTERVAL": str(interval_s),
            "SPOOL_PATH": str(workdir / "spool.sqlite"),
            "SHUTDOWN_TIMEOUT": "5",
        },
        log=workdir / "agent.log",
    )
    return agent, machine_id


async def warm_up(bench: Bench, agent: AgentProcess, machine_id: str, warmup_s: float) -> None:
    await agent.wait_serving()
    await bench.watch.wait_for(machine_id, ts_after=0.0, timeout_s=FIRST_FRAME_TIMEOUT_S)
    await asyncio.sleep(warmup_s)


async def sample(agent: AgentProcess, obs: Observed) -> dict[str, Any]:
    body = await agent.health()
    obs.depth.append((time.time(), int(body["metrics"]["spool_depth"])))
    obs.proc.append(read_proc(agent.pid))
    return body


async def observe(agent: AgentProcess, obs: Observed, *, until: float, poll_s: float) -> None:
    while time.time() < until:
        await sample(agent, obs)
        await asyncio.sleep(min(poll_s, max(0.0, until - time.time())))


async def close_window(agent: AgentProcess, obs: Observed, *, skipped0: int) -> dict[str, Any]:
    """End the window now: the last sample, whose /health body `finish` checks the frame count against."""
    obs.t1 = time.time()
    body = await sample(agent, obs)
    obs.skipped = int(body["metrics"]["skipped_ticks"]) - skipped0
    return body


async def finish(bench: Bench, machine_id: str, obs: Observed, last: dict[str, Any]) -> None:
    """Wait for the window's frames, then compare the agent's frame count (`last` /health) with PostgreSQL's rows.

    Frames ship FIFO, so once a frame acquired after the snapshot is visible, every counted one is too.
    """
    body = last
    snapshot_ts = datetime.fromisoformat(body["started_at"]).timestamp() + body["uptime_s"]
    await bench.watch.wait_for(machine_id, ts_after=snapshot_ts, timeout_s=RECONNECT_TIMEOUT_S)
    rows = await count_rows(bench.db, machine_id, until_ts=snapshot_ts)
    obs.lost = max(0, int(body["metrics"]["frames"]) - rows)  # rows may exceed by one: a read in flight
    seen = bench.watch.of(machine_id)
    obs.order_kept = all(a.ts < b.ts for a, b in itertools.pairwise(seen))
    obs.frames = [f for f in seen if obs.t0 <= f.ts <= obs.t1]
    obs.values_per_frame = min((f.values for f in obs.frames), default=0)
    obs.load = (obs.load[0], load1())


async def run_steady(
    bench: Bench, *, label: str, interval_s: float, duration_s: float, warmup_s: float, poll_s: float
) -> Observed:
    log(f"{label}: agent at {interval_s} s for {duration_s:g} s (+ warm-up)")
    url = bench.stack.env["SUPABASE_URL"]
    agent, machine_id = await start_agent(bench, label=label, interval_s=interval_s, url=url)
    obs = Observed(label, interval_s)
    try:
        await warm_up(bench, agent, machine_id, warmup_s)
        obs.load = (load1(), 0.0)
        obs.t0 = time.time()
        skipped0 = (await sample(agent, obs))["metrics"]["skipped_ticks"]
        await observe(agent, obs, until=obs.t0 + duration_s, poll_s=poll_s)
        last = await close_window(agent, obs, skipped0=skipped0)
        await finish(bench, machine_id, obs, last)
    finally:
        await agent.stop()
    return obs


async def run_outage(
    bench: Bench, *, interval_s: float, outage_s: float, warmup_s: float, poll_s: float
) -> tuple[Observed, Replay]:
    log(f"outage: agent at {interval_s} s through a proxy cut for {outage_s:g} s")
    host, port = bench.stack.env["SUPABASE_URL"].removeprefix("http://").rsplit(":", 1)
    replay = Replay()
    async with TcpProxy(host, int(port)) as proxy:
        agent, machine_id = await start_agent(bench, label="outage", interval_s=interval_s, url=proxy.url)
        obs = Observed("outage", interval_s)
        try:
            await warm_up(bench, agent, machine_id, warmup_s)
            obs.load = (load1(), 0.0)
            obs.t0 = time.time()
            skipped0 = (await sample(agent, obs))["metrics"]["skipped_ticks"]
            await proxy.cut()
            await observe(agent, obs, until=obs.t0 + outage_s, poll_s=poll_s)
            replay.depth_at_restore = (await sample(agent, obs))["metrics"]["spool_depth"]
            restored = time.time()
            replay.cut_s = restored - obs.t0
            await proxy.restore()
            first_new = await bench.watch.wait_for(machine_id, ts_after=restored, timeout_s=RECONNECT_TIMEOUT_S)
            await observe(agent, obs, until=time.time() + 1.0, poll_s=poll_s)
            last = await close_window(agent, obs, skipped0=skipped0)
            await finish(bench, machine_id, obs, last)
        finally:
            await agent.stop()
    after = [f for f in bench.watch.of(machine_id) if f.visible_at >= restored]
    backlog = [f for f in after if f.ts <= restored]
    first_commit = min(f.visible_at for f in after)
    caught_up = max((f.visible_at for f in backlog), default=first_new.visible_at)
    batches: dict[int, int] = {}
    for frame in backlog:
        batches[frame.txid] = batches.get(frame.txid, 0) + 1
    replay.backlog = len(backlog)
    replay.batches = list(batches.values())
    replay.reconnect_s = first_commit - restored
    replay.drain_s = caught_up - first_commit
    if len(replay.batches) > 1 and replay.drain_s > 0:
        replay.steady_rate = (replay.backlog - replay.batches[0]) / replay.drain_s
    replay.overall_rate = replay.backlog / (caught_up - restored)
    return obs, replay


# --- tables ----------------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "**MISSED**"


def print_tables(runs: list[Observed], replay: Replay | None, params: int) -> None:
    steady = [r for r in runs if r.label != "outage"]
    print(f"\n## read → row visible in PostgreSQL ({params} parameters; target p99 < 100 ms)")
    print("| run | frames | values/frame | p50 ms | p99 ms | max ms | load 1-min | target |")
    print("|---|---|---|---|---|---|---|---|")
    for r in steady:
        lat = [f.latency_s * 1000 for f in r.frames]
        if not lat:
            print(f"| {r.label} | 0 | - | - | - | - | {r.load[0]:.2f} | **no frames** |")
            continue
        print(
            f"| {r.label} | {len(lat)} | {r.values_per_frame} | {statistics.median(lat):.1f} | {pct(lat, 99):.1f} | "
            f"{max(lat):.1f} | {r.load[0]:.2f}→{r.load[1]:.2f} | {verdict(pct(lat, 99) < 100)} |"
        )

    print("\n## sustained rate (spool depth in records: history + latest + heartbeat)")
    print(
        "| run | window s | frames visible / expected | skipped ticks | depth start / middle / end / max | "
        "growth | lost | order | verdict |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in steady:
        window = r.t1 - r.t0
        expected = int(window / r.interval_s)
        depths = [d for _, d in r.depth]
        quarter = max(1, len(depths) // 4)
        growth = statistics.mean(depths[-quarter:]) - statistics.mean(depths[:quarter])
        ok = growth <= GROWTH_LIMIT and len(r.frames) + r.skipped >= expected - 1 and r.lost == 0
        print(
            f"| {r.label} | {window:.1f} | {len(r.frames)} / {expected} | {r.skipped} | {depths[0]} / "
            f"{depths[len(depths) // 2]} / {depths[-1]} / {max(depths)} | {growth:+.1f} | {r.lost} | "
            f"{'kept' if r.order_kept else '**BROKEN**'} | {verdict(ok)} |"
        )

    print("\n## agent process memory (VmRSS; target < 100 MB)")
    print("| run | RSS start MB | RSS end MB | RSS max sampled MB | VmHWM MB | target |")
    print("|---|---|---|---|---|---|")
    for r in runs:
        peak = r.proc[-1].hwm_mb
        print(
            f"| {r.label} | {r.proc[0].rss_mb:.1f} | {r.proc[-1].rss_mb:.1f} | "
            f"{max(p.rss_mb for p in r.proc):.1f} | {peak:.1f} | {verdict(peak < 100)} |"
        )

    print("\n## agent process CPU (utime + stime, all threads; target ≤ 5 % of a core at 1 Hz)")
    print("| run | window s | CPU s | % of a core | load 1-min | target |")
    print("|---|---|---|---|---|---|")
    for r in steady:
        cpu = r.proc[-1].cpu_s - r.proc[0].cpu_s
        share = cpu / (r.t1 - r.t0) * 100
        target = verdict(share <= 5) if r.interval_s >= SLOW_INTERVAL_S else "(info)"
        print(
            f"| {r.label} | {r.t1 - r.t0:.1f} | {cpu:.2f} | {share:.2f} | {r.load[0]:.2f}→{r.load[1]:.2f} | {target} |"
        )

    if replay is not None:
        r = next(r for r in runs if r.label == "outage")
        print("\n## replay after an outage (Supabase unreachable through a cut proxy, agent at 10 Hz)")
        print(
            "| outage s | backlog frames | spool records at restore | reconnect s | drain s | batches | "
            "replay frames/s (first → last commit) | frames/s (restore → caught up) | lost | order |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        steady_rate = f"{replay.steady_rate:.0f}" if replay.steady_rate else "- (one batch)"
        print(
            f"| {replay.cut_s:.1f} | {replay.backlog} | {replay.depth_at_restore} | "
            f"{replay.reconnect_s:.2f} | {replay.drain_s:.2f} | {'+'.join(map(str, replay.batches))} | "
            f"{steady_rate} | {replay.overall_rate:.0f} | {r.lost} | {'kept' if r.order_kept else '**BROKEN**'} |"
        )


# --- main ------------------------------------------------------------------------------------------------


async def bench_main(args: argparse.Namespace) -> None:
    async with contextlib.AsyncExitStack() as stack:
        bed = await start_testbed(stack, params=args.params, prefix="ald-bench-telemetry-")
        await install_frame_trigger(bed.db)
        watch = await stack.enter_async_context(FrameWatch(bed.supabase.env["DATABASE_URL"]))
        bench = Bench(bed.tmp, bed.supabase, bed.sim.port, bed.db, watch, bed.map_csv, args.params)

        runs = [
            await run_steady(
                bench,
                label="10 Hz",
                interval_s=FAST_INTERVAL_S,
                duration_s=args.duration,
                warmup_s=args.warmup,
                poll_s=args.poll or 1.0,
            ),
            await run_steady(
                bench,
                label="1 Hz",
                interval_s=SLOW_INTERVAL_S,
                duration_s=args.duration,
                warmup_s=args.warmup,
                poll_s=args.poll or 5.0,
            ),
        ]
        replay = None
        if args.outage > 0:
            outage, replay = await run_outage(
                bench, interval_s=FAST_INTERVAL_S, outage_s=args.outage, warmup_s=args.warmup, poll_s=args.poll or 1.0
            )
            runs.append(outage)
        if watch.duplicates:
            log(f"{watch.duplicates} frames were upserted again (replays after a lost response; idempotent)")
        print_tables(runs, replay, args.params)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--duration",
        type=float,
        default=DURATION_S,
        help=f"measurement window of the 10 Hz and 1 Hz runs, s ({DURATION_S:.0f})",
    )
    parser.add_argument(
        "--outage",
        type=float,
        default=OUTAGE_S,
        help=f"how long Supabase is unreachable in the outage run, s; 0 skips it ({OUTAGE_S:.0f})",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=WARMUP_S,
        help=f"after the first visible frame, before a window opens, s ({WARMUP_S:.0f})",
    )
    parser.add_argument("--poll", type=float, default=None, help="/health poll period, s (1 at 10 Hz, 5 at 1 Hz)")
    parser.add_argument("--params", type=int, default=PARAMS, help=f"parameters in the synthetic map ({PARAMS})")
    args = parse_with_quick(parser, argv, QUICK)
    if args.quick:
        args.poll = args.poll or 0.5
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    return run_until_interrupted(lambda: bench_main(args))


if __name__ == "__main__":
    sys.exit(main())
