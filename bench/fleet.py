"""Fleet benchmark (issue 14 item 6): many machines' agents against ONE local stack on real PostgreSQL.

    .venv/bin/python bench/fleet.py [--machines 50] [--duration 60] [--warmup 10] [--command-rate 2]
                                    [--per-worker 50] [--interval 1.0] [--worker-nice 0] [--quick]

What runs where:
- the local stack (`python -m supalocal run --ephemeral`, bench/children.py): PostgreSQL with our migrations
  and seed + the PostgREST/Realtime stand-in, in its own process;
- the fleet: `--machines` virtual agents (bench/fleet_agent.py), `--per-worker` per worker process
  (bench/fleet_worker.py) — a real agent process costs ~90 MB, 200 of them would not fit beside the stack
  on 2 cores. Each virtual agent is the agent's own cloud side for one machine: its own `CloudClient`
  (HTTP client + Realtime socket with the three channels a real agent holds), map loaded from its own
  `parameters` rows, the real `Sampler` / `PlcDevice` planner and codecs / `TelemetryPublisher` / `SpoolWriter` /
  SQLite `Spool` / `Shipper`, the real `Lease` (renewed every 3 s) and `CommandIntake` (Realtime + 5 s poll +
  `claim_command`). Skipped: Modbus TCP (the device reads the simulator's register image, stepped by the
  simulator's own `ReactorModel`), the HTTP server, the watchdog, recipes and the safety gate; the heartbeat
  row and the command's `succeeded` report are built by the bench with the real columns, through the spool;
- machine 1 is the seed's reference reactor; every other machine gets its own `machines` row and its own
  copy of the reference map (`agent/plc/default_map.csv`) as `parameters` rows;
- spools live in `--spool-dir` (tmpfs by default): each edge box fsyncs its own disk, not the stack's, so
  200 spools' fsyncs on this box's one disk are kept out of the stack's figures;
- `--worker-nice 10` runs the workers niced, so the stack gets a CPU before the simulated fleet does, as it
  would if the agents ran on their own boxes (other programs on the box still compete at their own niceness);
- this process: a LISTEN probe (bench/pg_probe.py's trigger: read → row visible), the dashboard inserting
  `machine_commands` (asyncpg) and /proc readings of the stack (bench/proc_tree.py) and the workers.

Measured over a window of --duration s after every agent holds its lease and is subscribed, plus --warmup s:
frames/s sustained (frames visible with `ts` in the window / window, against machines / interval), spool
depth of the whole fleet over time (a sustained load keeps it flat), read → row p50/p99 (`ts`, taken by the
sampler at acquisition, to the commit's NOTIFY), command insert → claimed (`claimed_at − created_at`, both
the database's clock; --command-rate commands per second spread over the machines), CPU (% of one core) and
PSS of the stand-in and of PostgreSQL, the workers' CPU and RSS, the box's load, and PostgreSQL's bytes per
`parameter_history` row, from which rows/day and partition sizes follow.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.children import REPO, StackProcess, read_proc
from bench.fleet_report import CommandRow, Report, print_tables
from bench.harness import load1, log, parse_with_quick, run_until_interrupted
from bench.pg_probe import FrameWatch, install_frame_trigger, seed_bench_machine
from bench.proc_tree import StackSample, sample_stack, sched_wait_s
from supalocal.testing import SEED_MACHINE_ID

MACHINES, DURATION_S, WARMUP_S, COMMAND_RATE, PER_WORKER, INTERVAL_S = 50, 60.0, 10.0, 2.0, 50, 1.0
QUICK = {"machines": 2, "duration": 3.0, "warmup": 1.0, "command_rate": 2.0}
READY_TIMEOUT_S = 180.0
SETTLE_TIMEOUT_S = 30.0
SAMPLE_S = 2.0
WORKER_STOP_S = 30.0
SET_PAYLOAD = {"key": "frontline_heater.temperature_sp", "value": 80}


@dataclass
class Worker:
    proc: asyncio.subprocess.Process
    machines: list[str]
    out: Path
    depth: list[tuple[float, int]] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None

    async def read_lines(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            message = json.loads(line)
            if "ready" in message:
                self.ready.set()
            else:
                self.depth.append((float(message["t"]), int(message["depth"])))

    async def stop(self) -> dict[str, Any]:
        if self.proc.returncode is None:
            self.proc.terminate()
        try:
            async with asyncio.timeout(WORKER_STOP_S):
                await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        if self.reader is not None:
            self.reader.cancel()
        try:
            result: dict[str, Any] = json.loads(self.out.read_text())
        except (OSError, ValueError):
            result = {"agents": {}, "cpu_s": 0.0, "maxrss_mb": 0.0}
        return result


def _open_log(path: Path) -> IO[bytes]:
    return open(path, "ab")  # the caller's `with` closes it once the child has its own descriptor


def loadavg() -> str:
    """/proc/loadavg as it reads now (1, 5, 15-min load, runnable/total tasks): a 30-byte procfs read."""
    return Path("/proc/loadavg").read_text().strip()


def reference_map_csv() -> str:
    text = (REPO / "agent" / "plc" / "default_map.csv").read_text()
    return "\n".join(line for line in text.splitlines() if not line.startswith("#")) + "\n"


async def seed_fleet(db: asyncpg.Connection, machines: int) -> list[str]:
    """Machine 1 is the seed's reference reactor; the others get their own rows and a copy of its map."""
    csv_text = reference_map_csv()
    ids = [SEED_MACHINE_ID]
    for n in range(2, machines + 1):
        ids.append(await seed_bench_machine(db, csv_text, label=f"fleet {n}"))
    return ids


async def start_worker(
    stack: StackProcess, *, machines: list[str], tmp: Path, spool_dir: Path, n: int, interval_s: float, nice: int
) -> Worker:
    out = tmp / f"worker-{n}.json"
    config = {
        "url": stack.env["SUPABASE_URL"],
        "key": stack.env["SUPABASE_SERVICE_ROLE_KEY"],
        "interval_s": interval_s,
        "workdir": str(spool_dir / f"worker-{n}"),
        "machines": machines,
        "out": str(out),
    }
    config_file = tmp / f"worker-{n}.config.json"
    config_file.write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "MACHINE_", "PLC_"))}
    with _open_log(tmp / f"worker-{n}.log") as log_file:
        proc = await asyncio.create_subprocess_exec(
            *(("nice", "-n", str(nice)) if nice else ()),  # nice execs the worker: the pid stays the worker's
            *(sys.executable, str(REPO / "bench" / "fleet_worker.py"), str(config_file)),
            cwd=REPO,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=log_file,
            start_new_session=True,
        )
    worker = Worker(proc, machines, out)
    worker.reader = asyncio.create_task(worker.read_lines())
    return worker


async def wait_ready(workers: list[Worker], tmp: Path) -> None:
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            while not all(w.ready.is_set() for w in workers):
                dead = [w for w in workers if w.proc.returncode is not None]
                if dead:
                    raise RuntimeError(f"a fleet worker exited ({dead[0].proc.returncode}); see {tmp}/worker-*.log")
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise RuntimeError(f"the fleet was not ready within {READY_TIMEOUT_S:.0f}s; see {tmp}/worker-*.log") from None


async def insert_commands(db: asyncpg.Connection, machines: list[str], *, rate: float, until: float) -> list[int]:
    """`set_parameter` commands at `rate` per second, machines in turn, until `until` (epoch s)."""
    ids: list[int] = []
    if rate <= 0:
        return ids
    start = time.time()
    for n, machine_id in enumerate(itertools.cycle(machines)):
        due = start + n / rate
        if due >= until:
            return ids
        await asyncio.sleep(max(0.0, due - time.time()))
        ids.append(
            await db.fetchval(
                "insert into public.machine_commands (machine_id, type, payload)"
                " values ($1, 'set_parameter', $2::jsonb) returning id",
                uuid.UUID(machine_id),
                json.dumps(SET_PAYLOAD),
            )
        )
    return ids


async def settle(
    db: asyncpg.Connection, watch: FrameWatch, machines: list[str], command_ids: list[int], t1: float
) -> None:
    """Until every machine's frame acquired after `t1` is visible and every command left `pending` (or timeout)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(SETTLE_TIMEOUT_S):
            for machine_id in machines:
                await watch.wait_for(machine_id, ts_after=t1, timeout_s=SETTLE_TIMEOUT_S)
            while await db.fetchval(  # noqa: ASYNC110 - state in PostgreSQL: no event to wait on
                "select count(*) from public.machine_commands where id = any($1) and status = 'pending'", command_ids
            ):
                await asyncio.sleep(0.5)


async def command_rows(db: asyncpg.Connection, ids: list[int]) -> list[CommandRow]:
    rows = await db.fetch(
        "select status, extract(epoch from claimed_at - created_at) as claim_s from public.machine_commands"
        " where id = any($1)",
        ids,
    )
    return [CommandRow(r["status"], None if r["claim_s"] is None else float(r["claim_s"])) for r in rows]


async def storage(db: asyncpg.Connection) -> tuple[int, int, float]:
    """(rows, bytes of every partition with its indexes and TOAST, mean stored size of `values`)."""
    rows = int(await db.fetchval("select count(*) from public.parameter_history"))
    size = int(
        await db.fetchval(
            "select coalesce(sum(pg_total_relation_size(inhrelid)), 0) from pg_catalog.pg_inherits"
            " where inhparent = 'public.parameter_history'::regclass"
        )
    )
    values = float(await db.fetchval('select coalesce(avg(pg_column_size("values")), 0) from public.parameter_history'))
    return rows, size, values


_TABLE_WRITES_SQL = """
select case when relname like 'parameter_history%' then 'parameter_history' else relname end as name,
       sum(n_tup_ins + n_tup_upd)::bigint as writes
from pg_catalog.pg_stat_user_tables where schemaname = 'public' group by 1
"""


async def table_writes(db: asyncpg.Connection) -> dict[str, int]:
    """Rows inserted + updated per public table so far (PostgreSQL's statistics; partitions summed)."""
    return {r["name"]: int(r["writes"]) for r in await db.fetch(_TABLE_WRITES_SQL)}


async def bench_main(args: argparse.Namespace) -> None:
    async with contextlib.AsyncExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ald-bench-fleet-")))
        spool_dir = Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="ald-fleet-spools-", dir=args.spool_dir))
        )
        log(f"starting the local stack; load {load1():.2f}")
        supabase = StackProcess(tmp / "supalocal")
        stack.callback(supabase.stop)
        supabase.launch()
        await supabase.wait_ready()
        assert supabase.proc is not None
        db = await asyncpg.connect(supabase.env["DATABASE_URL"])
        stack.push_async_callback(db.close)
        await install_frame_trigger(db)
        watch = await stack.enter_async_context(FrameWatch(supabase.env["DATABASE_URL"]))

        machines = await seed_fleet(db, args.machines)
        groups = [machines[i : i + args.per_worker] for i in range(0, len(machines), args.per_worker)]
        log(f"{len(machines)} machines seeded; starting {len(groups)} worker process(es)")
        workers: list[Worker] = []
        results: list[dict[str, Any]] = []
        try:
            for n, group in enumerate(groups):
                workers.append(
                    await start_worker(
                        supabase,
                        machines=group,
                        tmp=tmp,
                        spool_dir=spool_dir,
                        n=n,
                        interval_s=args.interval,
                        nice=args.worker_nice,
                    )
                )
            report = await measure(args, supabase, db, watch, machines, workers, tmp)
        finally:
            results = list(await asyncio.gather(*(w.stop() for w in workers)))
        report.agents = [a for r in results for a in r["agents"].values()]
        report.worker_maxrss_mb = [float(r["maxrss_mb"]) for r in results]
        report.requests = [tuple(x) for r in results for x in r.get("requests", [])]
        report.shipped = [tuple(x) for r in results for x in r.get("shipped", [])]
        report.lag = [tuple(x) for r in results for x in r.get("lag", [])]
        print_tables(report)


async def measure(
    args: argparse.Namespace,
    supabase: StackProcess,
    db: asyncpg.Connection,
    watch: FrameWatch,
    machines: list[str],
    workers: list[Worker],
    tmp: Path,
) -> Report:
    """Wait for the fleet, warm up, run the window with the command inserts, settle; the figures."""
    assert supabase.proc is not None
    await wait_ready(workers, tmp)
    log(f"every agent holds its lease and is subscribed; warm-up {args.warmup:g} s")
    await asyncio.sleep(args.warmup)
    report = Report(machines=len(machines), workers=len(workers), interval_s=args.interval)
    report.load = (load1(), 0.0)
    report.uptime = (loadavg(), "")
    writes_before = await table_writes(db)
    t0 = time.time()
    before: StackSample = sample_stack(supabase.proc.pid)
    workers_before = [read_proc(w.proc.pid) for w in workers]
    wait_before = sum(sched_wait_s(w.proc.pid) for w in workers)
    inserter = asyncio.create_task(insert_commands(db, machines, rate=args.command_rate, until=t0 + args.duration))
    while time.time() < t0 + args.duration:
        await asyncio.sleep(min(SAMPLE_S, max(0.0, t0 + args.duration - time.time())))
        report.stack_samples.append(sample_stack(supabase.proc.pid))
        report.worker_rss_mb.append(sum(read_proc(w.proc.pid).rss_mb for w in workers))
    t1 = time.time()
    writes_after = await table_writes(db)
    after = sample_stack(supabase.proc.pid)
    workers_after = [read_proc(w.proc.pid) for w in workers]
    report.workers_wait_s = sum(sched_wait_s(w.proc.pid) for w in workers) - wait_before
    report.load = (report.load[0], load1())
    report.uptime = (report.uptime[0], loadavg())
    command_ids = await inserter
    log(f"window closed ({t1 - t0:.1f} s); waiting for the last frames and commands")
    await settle(db, watch, machines, command_ids, t1)
    report.window = (t0, t1)
    report.table_writes = {
        k: v - writes_before.get(k, 0) for k, v in writes_after.items() if v > writes_before.get(k, 0)
    }
    report.stack = (before, after)
    report.workers_cpu_s = sum(a.cpu_s - b.cpu_s for a, b in zip(workers_after, workers_before, strict=True))
    report.frames = [f for m in machines for f in watch.of(m) if t0 <= f.ts <= t1]
    report.depth = _fleet_depth(workers, t0, t1)
    report.commands = await command_rows(db, command_ids)
    report.rows, report.bytes, report.values_bytes = await storage(db)
    return report


def _fleet_depth(workers: list[Worker], t0: float, t1: float) -> list[int]:
    """The whole fleet's spool depth per second of the window (the workers' samples, summed by second)."""
    by_second: dict[int, int] = {}
    for w in workers:
        for t, depth in w.depth:
            if t0 <= t <= t1:
                by_second[int(t)] = by_second.get(int(t), 0) + depth
    return [by_second[s] for s in sorted(by_second)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--machines", type=int, default=MACHINES, help=f"fleet size ({MACHINES})")
    parser.add_argument("--duration", type=float, default=DURATION_S, help=f"measurement window, s ({DURATION_S:g})")
    parser.add_argument("--warmup", type=float, default=WARMUP_S, help=f"after the fleet is ready, s ({WARMUP_S:g})")
    parser.add_argument(
        "--command-rate", type=float, default=COMMAND_RATE, help=f"commands inserted per second ({COMMAND_RATE:g})"
    )
    parser.add_argument("--per-worker", type=int, default=PER_WORKER, help=f"agents per worker process ({PER_WORKER})")
    parser.add_argument(
        "--worker-nice",
        type=int,
        default=0,
        help="niceness of the fleet workers (0); e.g. 10 gives the stack the CPU first, as if the agents ran on "
        "their own boxes",
    )
    parser.add_argument("--interval", type=float, default=INTERVAL_S, help=f"sampling interval, s ({INTERVAL_S:g})")
    parser.add_argument(
        "--spool-dir",
        type=Path,
        default=Path("/dev/shm") if Path("/dev/shm").is_dir() else None,
        help="where the agents' spools live (/dev/shm: tmpfs)",
    )
    args = parse_with_quick(parser, argv, QUICK)
    if args.machines < 1 or args.per_worker < 1:
        parser.error("--machines and --per-worker must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_until_interrupted(lambda: bench_main(args))


if __name__ == "__main__":
    sys.exit(main())
