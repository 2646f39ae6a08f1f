"""Whole-agent read path and cost (issue 14): read latency measured inside `python -m agent run`, CPU and RSS.

    .venv/bin/python bench/agent_read.py [--duration 60] [--warmup 5] [--params 500] [--scrape 5] [--reference 30]
                                         [--runtime-venv] [--ship-gap S] [--beside] [--connections N]
                                         [--plc-priority N] [--quick]

What runs where (each in its own process, as in bench/telemetry.py):
- the local stack (`python -m supalocal run`): PostgreSQL + the Supabase-compatible API;
- the simulator (`python -m agent simulate --map <synthetic map>`, bench/synthetic_map.py, 500 parameters
  over the four tables with gaps: 16 requests per full read); with --plc-priority N under SCHED_FIFO at
  priority N, as a PLC is its own real-time device and never waits for the agent's or the stack's processes;
- the agent (`python -m agent run`; with --runtime-venv from a virtualenv of the runtime dependencies only, as
  the image has them, bench/harness.py `runtime_python`), one per run (10 Hz, then 1 Hz), its map loaded from
  the bench machine's `parameters` rows, with everything a production agent does: shipping to the stack through
  the spool, realtime subscriptions, heartbeats, the lease, and HTTP (this process scrapes `/metrics` every
  --scrape seconds, as a Prometheus would, and reads `/health` at the window's ends).

Read latency is what the agent measured itself: the `ald_plc_read_duration_seconds` histogram (every full read
of the map, 1 ms buckets up to the 10 ms target), its difference between the window's first and last scrape, so
the warm-up is excluded. p50/p99 are interpolated within a bucket as Prometheus' `histogram_quantile` does;
"over 10 ms" is exact (10 ms is a bucket edge); the maximum is known to its bucket ("≤ bound"). CPU is utime +
stime of the agent process (all threads) from /proc over the window, as % of one core; RSS is VmRSS at the
window's end and VmHWM (the peak since start). Targets (issue 14): read p99 < 10 ms at 1 Hz and 10 Hz, CPU ≤ 8 %
at 10 Hz and ≤ 2 % at 1 Hz, RSS ≤ 65 MB. The box's 1-minute load average is printed beside each run: the
figures are only comparable at similar load.

Read → row is the agent's own `ald_read_to_row_seconds` (a frame's append → Supabase accepted it) over the same
window: with `TELEMETRY_SHIP_GAP` (0.25 s) at 10 Hz, two or three frames share a request, and this table shows
what that costs in latency; at 1 Hz it should not move.

With --beside, a second bare `PlcDevice` reads the map during each agent window, half a tick after the agent's
reads (their phase from the agent's own frames: a frame's `ts` is its read's midpoint, `read_ms` its duration),
and the bench counts how many of its reads overlapped one of the agent's (0 means they never shared the
simulator). It is the PLC layer under the same box load at the same moment, without the agent's event loop:
when the agent's tail is above the reference taken afterwards, this says whether the box or the agent caused it.

The reference table is the PLC layer alone, measured in this process right after each agent run: a bare
`PlcDevice` on its own connection to the same simulator, reading the same map every tick of the same rate for
--reference seconds (exact percentiles). Reads spaced like ticks are slower than back-to-back reads on a VM
(both ends sleep in between), so this, not bench/read_cycle.py's back-to-back figure, is the like-for-like floor.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import math
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.plc import PlcConnection, PlcDevice, parse_map_csv
from bench.children import AgentProcess, ProcSample, read_proc
from bench.harness import load1, log, parse_with_quick, run_until_interrupted, runtime_python
from bench.pg_probe import seed_bench_machine
from bench.read_cycle import pct
from bench.testbed import Testbed, start_testbed

DURATION_S, WARMUP_S, PARAMS, SCRAPE_S, REFERENCE_S = 60.0, 5.0, 500, 5.0, 30.0
QUICK = {"duration": 2.0, "warmup": 0.5, "params": 100, "scrape": 0.5, "reference": 1.0}
RATES = (("10 Hz", 0.1), ("1 Hz", 1.0))
READ_HISTOGRAM = "ald_plc_read_duration_seconds"
READ_TO_ROW_HISTOGRAM = "ald_read_to_row_seconds"  # a frame's append → Supabase accepted it (telemetry pacing)
TARGET_READ_P99_MS = 10.0
TARGET_CPU = {0.1: 8.0, 1.0: 2.0}  # % of a core, by interval
TARGET_RSS_MB = 65.0
FIRST_SHIP_TIMEOUT_S = 60.0

Buckets = dict[float, float]  # upper bound (s) → cumulative count


@dataclass
class Run:
    label: str
    interval_s: float
    t0: float = 0.0
    t1: float = 0.0
    buckets0: Buckets = field(default_factory=dict)
    buckets1: Buckets = field(default_factory=dict)
    rows0: Buckets = field(default_factory=dict)  # the read → row histogram at the window's ends
    rows1: Buckets = field(default_factory=dict)
    proc0: ProcSample | None = None
    proc1: ProcSample | None = None
    frames: int = 0
    skipped: int = 0
    shipped: int = 0
    depth_end: int = 0
    load: tuple[float, float] = (0.0, 0.0)
    scrapes: int = 0
    reference_ms: list[float] = field(default_factory=list)  # the bare PLC layer at the same rate
    reference_load: tuple[float, float] = (0.0, 0.0)
    beside_ms: list[float] = field(default_factory=list)  # --beside: the bare layer during the agent's window
    beside_overlaps: int = 0  # bare reads that overlapped one of the agent's (should be 0)


def read_histograms(text: str) -> tuple[Buckets, Buckets]:
    """The read and the read → row histograms' cumulative buckets, from one parse of a /metrics body."""
    found: dict[str, Buckets] = {READ_HISTOGRAM: {}, READ_TO_ROW_HISTOGRAM: {}}
    for family in text_string_to_metric_families(text):
        buckets = found.get(family.name)
        if buckets is None:
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                buckets[float(sample.labels["le"])] = sample.value
    return found[READ_HISTOGRAM], found[READ_TO_ROW_HISTOGRAM]


def window(before: Buckets, after: Buckets) -> Buckets:
    return {le: after[le] - before.get(le, 0.0) for le in sorted(after)}


def quantile(q: float, buckets: Buckets) -> float:
    """Like PromQL's histogram_quantile: linear interpolation inside the bucket holding rank q·n; seconds."""
    bounds = sorted(buckets)
    n = buckets[bounds[-1]]
    if n <= 0:
        return float("nan")
    rank = q * n
    lower, below = 0.0, 0.0
    for le in bounds:
        count = buckets[le]
        if count >= rank:
            if le == float("inf"):
                return lower
            return lower + (le - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = le, count
    return lower


def max_bound(buckets: Buckets) -> float:
    """The upper bound of the highest non-empty bucket (the maximum is at most this), seconds."""
    total = buckets[max(buckets)]
    return min(le for le, count in buckets.items() if count >= total)


async def reference_reads(
    map_csv: str,
    *,
    port: int,
    interval_s: float,
    duration_s: float,
    start: float | None = None,
    spans: list[tuple[float, float]] | None = None,
    connections: int = 1,
) -> list[float]:
    """Full-map reads by a bare `PlcDevice`, one per tick of `interval_s` for `duration_s`; milliseconds.

    `start` (monotonic) puts the ticks at `start + n·interval_s`: --beside uses it to read half a tick away
    from the agent's reads, so that the two never share the simulator; `spans` then collects each read's
    (start, end) in wall-clock seconds, to prove it."""
    async with PlcConnection(host="127.0.0.1", port=port, connections=connections) as connection:
        if not await connection.wait_connected(10):
            raise RuntimeError(f"the simulator on port {port} did not accept a connection")
        device = PlcDevice(connection, parse_map_csv(map_csv))
        for _ in range(5):  # warm-up, as the agent's window starts after one
            await device.read_all()
        durations: list[float] = []
        if start is None:
            start = time.monotonic()
        begin = time.monotonic()
        n = math.ceil((begin - start) / interval_s)
        while time.monotonic() - begin < duration_s:
            n += 1
            await asyncio.sleep(max(0.0, start + n * interval_s - time.monotonic()))
            began = time.time()
            durations.append((await device.read_all()).duration_s * 1000)
            if spans is not None:
                spans.append((began, time.time()))
    return durations


async def agent_read_spans(db: asyncpg.Connection, machine_id: str, *, since: float) -> list[tuple[float, float]]:
    """The agent's reads since `since` (wall clock) as (start, end) wall-clock seconds, in order, from its frames:
    a frame's `ts` is its read's midpoint (docs/CONTRACT.md) and `read_ms` its duration."""
    rows = await db.fetch(
        "select extract(epoch from ts) as ts, read_ms from public.parameter_history"
        " where machine_id = $1 and read_ms is not null and ts >= to_timestamp($2) order by ts",
        uuid.UUID(machine_id),
        since,
    )
    half = [(float(r["ts"]), float(r["read_ms"]) / 2000) for r in rows]
    return [(ts - h, ts + h) for ts, h in half]


def read_phase(spans: list[tuple[float, float]], interval_s: float) -> float:
    """When in the tick the reads of `spans` start, as a monotonic time of this process (any one of them).

    The agent's ticks are drift-free, so the median of the reads' starts modulo the interval is the phase. Wall
    and monotonic clocks are the same machine's, a minute apart at most: their offset is taken once here."""
    if not spans:
        raise RuntimeError("the agent has shipped no frame with read_ms: cannot find its tick phase")
    phases = sorted(begin % interval_s for begin, _ in spans)
    return phases[len(phases) // 2] - (time.time() - time.monotonic())


def overlaps(agent: list[tuple[float, float]], spans: list[tuple[float, float]]) -> int:
    """How many of `spans` overlap one of the `agent` spans (both in order, non-overlapping among themselves)."""
    starts = [begin for begin, _ in agent]
    hit = 0
    for begin, end in spans:
        i = bisect.bisect_left(starts, end)  # agent reads starting before this one ends
        if i and agent[i - 1][1] > begin:
            hit += 1
    return hit


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    response.raise_for_status()
    return response.text


async def measure(args: argparse.Namespace, bed: Testbed, *, label: str, interval_s: float) -> Run:
    log(f"{label}: agent at {interval_s} s for {args.duration:g} s (+ warm-up); load {load1():.2f}")
    machine_id = await seed_bench_machine(bed.db, bed.map_csv, label=f"read {label}")
    stack, sim_port = bed.supabase, bed.sim.port
    workdir = bed.tmp / label.replace(" ", "-")
    workdir.mkdir()
    agent = AgentProcess(
        {
            "SUPABASE_URL": stack.env["SUPABASE_URL"],
            "SUPABASE_KEY": stack.env["SUPABASE_SERVICE_ROLE_KEY"],
            "MACHINE_ID": machine_id,
            "PLC_HOST": "127.0.0.1",
            "PLC_PORT": str(sim_port),
            "PARAMETER_LOGGING_INTERVAL": str(interval_s),
            "SPOOL_PATH": str(workdir / "spool.sqlite"),
            "SHUTDOWN_TIMEOUT": "5",
            "PLC_CONNECTIONS": str(args.connections),
        }
        | ({} if args.ship_gap is None else {"TELEMETRY_SHIP_GAP": str(args.ship_gap)}),
        log=workdir / "agent.log",
        python=args.agent_python,
    )
    run = Run(label, interval_s)
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{agent.http_port}", timeout=5.0)
    try:
        await agent.wait_serving()
        async with asyncio.timeout(FIRST_SHIP_TIMEOUT_S):  # shipping works before the window opens
            while True:
                if (await agent.health())["metrics"]["shipped"]:
                    break
                await asyncio.sleep(0.2)
        await asyncio.sleep(args.warmup)
        run.load = (load1(), 0.0)
        health0 = await agent.health()
        run.buckets0, run.rows0 = read_histograms(await scrape(client))
        beside: asyncio.Task[list[float]] | None = None
        spans: list[tuple[float, float]] = []
        if args.beside:
            recent = await agent_read_spans(bed.db, machine_id, since=time.time() - 20 * interval_s)
            bare_start = read_phase(recent, interval_s) + interval_s / 2
            beside = asyncio.create_task(
                reference_reads(
                    bed.map_csv,
                    port=sim_port,
                    interval_s=interval_s,
                    duration_s=args.duration,
                    start=bare_start,
                    spans=spans,
                    connections=args.connections,
                )
            )
            await asyncio.sleep(1.0)  # its connection and warm-up reads are before the window
        run.proc0, run.t0 = read_proc(agent.pid), time.monotonic()
        until = run.t0 + args.duration
        while time.monotonic() < until:
            await asyncio.sleep(min(args.scrape, max(0.0, until - time.monotonic())))
            run.buckets1, run.rows1 = read_histograms(await scrape(client))
            run.scrapes += 1
        run.proc1, run.t1 = read_proc(agent.pid), time.monotonic()
        if beside is not None:
            run.beside_ms = await beside
            await asyncio.sleep(1.0)  # the agent's last frames of the window reach the database
            agent_spans = await agent_read_spans(bed.db, machine_id, since=spans[0][0] - 1) if spans else []
            run.beside_overlaps = overlaps(agent_spans, spans)
        health1 = await agent.health()
        run.load = (run.load[0], load1())
        m0, m1 = health0["metrics"], health1["metrics"]
        run.frames = m1["frames"] - m0["frames"]
        run.skipped = m1["skipped_ticks"] - m0["skipped_ticks"]
        run.shipped = m1["shipped"] - m0["shipped"]
        run.depth_end = m1["spool_depth"]
    finally:
        await client.aclose()
        await agent.stop()
    return run


def verdict(ok: bool) -> str:
    return "met" if ok else "**MISSED**"


def print_tables(runs: list[Run], params: int, plc_priority: int) -> None:
    policy = f"SCHED_FIFO {plc_priority}" if plc_priority else "the ordinary scheduler"
    print(f"\n## full-map read inside `python -m agent run` ({params} parameters; target p99 < 10 ms)")
    print(f"The simulator ran under {policy}.")
    print("| run | reads | p50 ms | p99 ms | max ms | over 10 ms | skipped ticks | load 1-min | target |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        b = window(r.buckets0, r.buckets1)
        n = b[float("inf")] if b else 0
        if not n:
            print(f"| {r.label} | 0 | - | - | - | - | {r.skipped} | {r.load[0]:.2f} | **no reads** |")
            continue
        p50, p99 = quantile(0.5, b) * 1000, quantile(0.99, b) * 1000
        over = n - b[TARGET_READ_P99_MS / 1000]
        top = max_bound(b)
        shown_max = "> 2500" if top == float("inf") else f"≤ {top * 1000:g}"
        ok = over <= 0.01 * n
        print(
            f"| {r.label} | {n:.0f} | {p50:.1f} | {p99:.1f} | {shown_max} | {over:.0f} ({100 * over / n:.1f} %) | "
            f"{r.skipped} | {r.load[0]:.2f}→{r.load[1]:.2f} | {verdict(ok)} |"
        )

    print("\n## reference: the PLC layer alone, reads spaced like the ticks (bare PlcDevice, same simulator and map)")
    print("| rate | reads | p50 ms | p99 ms | max ms | over 10 ms | load 1-min |")
    print("|---|---|---|---|---|---|---|")
    for r in runs:
        ms = r.reference_ms
        if not ms:
            print(f"| {r.label} | 0 | - | - | - | - | - |")
            continue
        over = sum(1 for d in ms if d > TARGET_READ_P99_MS)
        print(
            f"| {r.label} | {len(ms)} | {pct(ms, 50):.1f} | {pct(ms, 99):.1f} | {max(ms):.1f} | "
            f"{over} ({100 * over / len(ms):.1f} %) | {r.reference_load[0]:.2f}→{r.reference_load[1]:.2f} |"
        )

    if any(r.beside_ms for r in runs):
        print(
            "\n## beside: the PLC layer alone during the agent's window, half a tick after the agent's reads "
            "(same box load at the same time, not the agent's event loop)"
        )
        print(
            "| rate | reads | p50 ms | p99 ms | max ms | over 10 ms | offset after the agent's read start ms "
            "| overlapped an agent read |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for r in runs:
            ms = r.beside_ms
            if not ms:
                continue
            over = sum(1 for d in ms if d > TARGET_READ_P99_MS)
            print(
                f"| {r.label} | {len(ms)} | {pct(ms, 50):.1f} | {pct(ms, 99):.1f} | {max(ms):.1f} | "
                f"{over} ({100 * over / len(ms):.1f} %) | {r.interval_s * 500:.0f} | {r.beside_overlaps} |"
            )

    print("\n## read → row: a frame's append → Supabase accepted it (`ald_read_to_row_seconds`, TELEMETRY_SHIP_GAP)")
    print("| run | frames shipped | ≤ 100 ms | ≤ 250 ms | ≤ 500 ms | p50 ms (interpolated) |")
    print("|---|---|---|---|---|---|")
    for r in runs:
        b = window(r.rows0, r.rows1)
        n = b.get(float("inf"), 0.0)
        if not n:
            print(f"| {r.label} | 0 | - | - | - | - |")
            continue
        shares = " | ".join(f"{100 * b.get(le, 0.0) / n:.1f} %" for le in (0.1, 0.25, 0.5))
        print(f"| {r.label} | {n:.0f} | {shares} | {quantile(0.5, b) * 1000:.0f} |")

    print("\n## agent process cost (CPU: utime + stime, all threads, % of one core; RSS: VmRSS / VmHWM)")
    columns = (
        "run | window s | CPU s | CPU % | CPU target | RSS MB | VmHWM MB | RSS target | frames | shipped | spool end"
    )
    print(f"| {columns} |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        assert r.proc0 is not None and r.proc1 is not None
        seconds = r.t1 - r.t0
        cpu = r.proc1.cpu_s - r.proc0.cpu_s
        share = 100 * cpu / seconds
        cpu_target = TARGET_CPU[r.interval_s]
        cpu_ok, rss_ok = verdict(share <= cpu_target), verdict(r.proc1.rss_mb <= TARGET_RSS_MB)
        print(
            f"| {r.label} | {seconds:.1f} | {cpu:.2f} | {share:.2f} | ≤ {cpu_target:g} %: {cpu_ok} "
            f"| {r.proc1.rss_mb:.1f} | {r.proc1.hwm_mb:.1f} | ≤ {TARGET_RSS_MB:g}: {rss_ok} "
            f"| {r.frames} | {r.shipped} | {r.depth_end} |"
        )


async def bench_main(args: argparse.Namespace) -> None:
    async with contextlib.AsyncExitStack() as stack:
        bed = await start_testbed(
            stack, params=args.params, prefix="ald-bench-agent-read-", plc_priority=args.plc_priority
        )
        runs = []
        for label, interval in RATES:
            run = await measure(args, bed, label=label, interval_s=interval)
            log(f"{label}: reference, the PLC layer alone for {args.reference:g} s; load {load1():.2f}")
            load_before = load1()
            run.reference_ms = await reference_reads(
                bed.map_csv,
                port=bed.sim.port,
                interval_s=interval,
                duration_s=args.reference,
                connections=args.connections,
            )
            run.reference_load = (load_before, load1())
            runs.append(run)
        print_tables(runs, args.params, args.plc_priority)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=DURATION_S, help=f"window per rate, s ({DURATION_S:g})")
    parser.add_argument(
        "--ship-gap",
        type=float,
        default=None,
        help="the agent's TELEMETRY_SHIP_GAP, s (default: the agent's own, 0.25; 0 = a request per frame)",
    )
    parser.add_argument(
        "--warmup", type=float, default=WARMUP_S, help=f"after the first shipped record, s ({WARMUP_S:g})"
    )
    parser.add_argument("--params", type=int, default=PARAMS, help=f"parameters in the synthetic map ({PARAMS})")
    parser.add_argument("--scrape", type=float, default=SCRAPE_S, help=f"/metrics scrape period, s ({SCRAPE_S:g})")
    parser.add_argument(
        "--reference", type=float, default=REFERENCE_S, help=f"the bare PLC layer's run per rate, s ({REFERENCE_S:g})"
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=1,
        help="PLC_CONNECTIONS of the agent, and of the bare references (1)",
    )
    parser.add_argument(
        "--plc-priority",
        type=int,
        default=0,
        help="run the simulator under SCHED_FIFO at this priority, as a PLC on its own hardware never waits for "
        "this box's other processes (0 = the ordinary scheduler, the default)",
    )
    parser.add_argument(
        "--beside",
        action="store_true",
        help="also read the map with a bare PlcDevice during each agent window, half a tick after the agent's "
        "reads: the PLC layer under the same box load at the same time (adds that reader's load to the window)",
    )
    parser.add_argument(
        "--runtime-venv",
        action="store_true",
        help="run the agent from a virtualenv with the runtime dependencies only, as the image has "
        "(bench.harness.RUNTIME_VENV, built on first use); default: this interpreter",
    )
    args = parse_with_quick(parser, argv, QUICK)
    args.agent_python = runtime_python() if args.runtime_venv else sys.executable
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_until_interrupted(lambda: bench_main(args))


if __name__ == "__main__":
    sys.exit(main())
