"""The fleet bench's figures and its Markdown tables (bench/fleet.py measures, this prints). Pure."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from bench.pg_probe import Visible
from bench.proc_tree import StackSample
from bench.read_cycle import pct

__all__ = ["CommandRow", "Report", "print_tables"]

GROWTH_LIMIT = 5  # spool records per machine: a backlog growing by more than this is not sustained
SATURATED = 85.0  # % of one core: a single-threaded process (the stand-in) cannot go much past 100
ALWAYS_RUNNABLE = 95.0  # % of the window running or waiting for a CPU: the process always had work
STARVED = 25.0  # % of the window runnable without a CPU: the box, not the part, sets the pace
BOX_FULL = 170.0  # % of a core: the bench's own processes alone nearly fill the 2 cores
SECONDS_PER_DAY = 86_400
DAYS_PER_MONTH = 30.4


@dataclass(frozen=True, slots=True)
class CommandRow:
    status: str
    claim_s: float | None  # claimed_at − created_at (database clock), None while unclaimed


@dataclass
class Report:
    machines: int
    workers: int
    interval_s: float
    window: tuple[float, float] = (0.0, 0.0)
    load: tuple[float, float] = (0.0, 0.0)
    uptime: tuple[str, str] = ("", "")  # /proc/loadavg at the window's start and end
    frames: list[Visible] = field(default_factory=list)
    depth: list[int] = field(default_factory=list)  # the fleet's spool records, per second
    commands: list[CommandRow] = field(default_factory=list)
    stack: tuple[StackSample, StackSample] | None = None
    stack_samples: list[StackSample] = field(default_factory=list)
    workers_cpu_s: float = 0.0
    workers_wait_s: float = 0.0  # run-queue wait of the workers' threads over the window
    worker_rss_mb: list[float] = field(default_factory=list)  # summed over the workers, per sample
    worker_maxrss_mb: list[float] = field(default_factory=list)
    agents: list[dict[str, Any]] = field(default_factory=list)  # AgentCounts of every agent, at the end
    requests: list[tuple[float, str, float]] = field(default_factory=list)  # (end epoch, operation, s)
    shipped: list[tuple[float, float, float]] = field(default_factory=list)  # (ts, appended, accepted) epoch
    lag: list[tuple[float, float]] = field(default_factory=list)  # (epoch, workers' loop wake-up lag s)
    table_writes: dict[str, int] = field(default_factory=dict)  # rows inserted + updated in the window
    rows: int = 0
    bytes: int = 0
    values_bytes: float = 0.0

    @property
    def seconds(self) -> float:
        return self.window[1] - self.window[0]


def _ms(values: list[float]) -> tuple[str, str, str]:
    if not values:
        return "-", "-", "-"
    return f"{statistics.median(values):.0f}", f"{pct(values, 99):.0f}", f"{max(values):.0f}"


def cpu_shares(r: Report) -> tuple[float, float]:
    """(stand-in, PostgreSQL) CPU over the window, % of one core."""
    if r.stack is None or r.seconds <= 0:
        return 0.0, 0.0
    before, after = r.stack
    return (
        (after.api.cpu_s - before.api.cpu_s) / r.seconds * 100,
        (after.postgres.cpu_s - before.postgres.cpu_s) / r.seconds * 100,
    )


def waits(r: Report) -> tuple[float, float, float]:
    """(stand-in, PostgreSQL, workers) run-queue wait over the window, % of the window (sum over threads)."""
    if r.stack is None or r.seconds <= 0:
        return 0.0, 0.0, 0.0
    before, after = r.stack
    return (
        (after.api.wait_s - before.api.wait_s) / r.seconds * 100,
        (after.postgres.wait_s - before.postgres.wait_s) / r.seconds * 100,
        r.workers_wait_s / r.seconds * 100,
    )


def saturation(r: Report) -> str:
    """Which part is at its limit: the stand-in near its one core, or always runnable (it had work the whole
    window and got only the CPU the box gave it), or the box (the stack waiting for a CPU)."""
    api, pg = cpu_shares(r)
    api_wait, pg_wait, _ = waits(r)
    workers = r.workers_cpu_s / r.seconds * 100 if r.seconds else 0.0
    parts = []
    if api >= SATURATED:
        parts.append(f"the stand-in ({api:.0f} % of its one core: single-threaded)")
    elif api + api_wait >= ALWAYS_RUNNABLE:
        parts.append(
            f"the stand-in: runnable {api + api_wait:.0f} % of the window (ran {api:.0f}, waited {api_wait:.0f})"
        )
    if api_wait >= STARVED or pg_wait >= STARVED:
        parts.append(f"the box's CPUs (stack waited {api_wait:.0f} + {pg_wait:.0f} % for a CPU)")
    if api + pg + workers >= BOX_FULL:
        parts.append(f"stack + fleet use {api + pg + workers:.0f} % of the box's 200 %")
    return "; ".join(parts) or "nothing (no part near its limit)"


def sustained(r: Report) -> bool:
    if not r.depth:
        return False
    quarter = max(1, len(r.depth) // 4)
    growth = statistics.mean(r.depth[-quarter:]) - statistics.mean(r.depth[:quarter])
    expected = r.machines * r.seconds / r.interval_s
    return growth <= GROWTH_LIMIT * r.machines and len(r.frames) >= 0.98 * expected


def print_tables(r: Report) -> None:
    expected = r.machines * r.seconds / r.interval_s
    skipped = sum(int(a["skipped"]) for a in r.agents)
    dropped = sum(int(a["dropped"]) for a in r.agents)
    errors = sum(int(a["shipper_errors"]) for a in r.agents)
    depth = r.depth or [0]
    print(f"\n## fleet: frames/s sustained ({r.machines} machines at {1 / r.interval_s:g} Hz, reference map)")
    print(
        "| machines | worker processes | window s | frames visible / expected | frames/s | skipped ticks | "
        "fleet spool depth start / end / max | shipper errors | dropped | sustained | load 1-min |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {r.machines} | {r.workers} | {r.seconds:.1f} | {len(r.frames)} / {expected:.0f} | "
        f"{len(r.frames) / r.seconds:.1f} | {skipped} | {depth[0]} / {depth[-1]} / {max(depth)} | {errors} | "
        f"{dropped} | {'yes' if sustained(r) else '**NO**'} | {r.load[0]:.2f}→{r.load[1]:.2f} |"
    )

    lat = [f.latency_s * 1000 for f in r.frames]
    p50, p99, worst = _ms(lat)
    print("\n## fleet: read → row visible in PostgreSQL (frame ts → commit NOTIFY)")
    print("| machines | frames | values/frame | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|")
    values = min((f.values for f in r.frames), default=0)
    print(
        f"| {r.machines} | {len(lat)} | {values} | {p50} | {p99} | {worst} |"
        if lat
        else f"| {r.machines} | 0 | - | **no frames** | - | - |"
    )

    claimed = [c.claim_s * 1000 for c in r.commands if c.claim_s is not None]
    p50, p99, worst = _ms(claimed)
    statuses: dict[str, int] = {}
    for c in r.commands:
        statuses[c.status] = statuses.get(c.status, 0) + 1
    print("\n## fleet: command insert → claimed under that load (claimed_at − created_at, database clock)")
    print("| machines | commands | claimed | statuses | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|---|")
    summary = ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())) or "-"
    none = " **none claimed**" if r.commands and not claimed else ""
    print(f"| {r.machines} | {len(r.commands)} | {len(claimed)}{none} | {summary} | {p50} | {p99} | {worst} |")

    t0, t1 = r.window
    shipped = [x for x in r.shipped if t0 <= x[0] <= t1]
    lag = [x[1] * 1000 for x in r.lag if t0 <= x[0] <= t1]
    print("\n## fleet: where read → row goes (the agents' own stamps: frame ts, spool append, API accepted)")
    print(
        "| machines | ts → appended p50 / p99 ms | appended → accepted p50 / p99 ms | ts → accepted p50 / p99 ms | "
        "worker loop lag p50 / p99 / max ms |"
    )
    print("|---|---|---|---|---|")
    cells = []
    for part in ([(a - ts) * 1000 for ts, a, _ in shipped], [(d - a) * 1000 for _, a, d in shipped]):
        m50, m99, _ = _ms(part)
        cells.append(f"{m50} / {m99}")
    m50, m99, _ = _ms([(d - ts) * 1000 for ts, _, d in shipped])
    cells.append(f"{m50} / {m99}")
    l50, l99, lmax = _ms(lag)
    print(f"| {r.machines} | {' | '.join(cells)} | {l50} / {l99} / {lmax} |")

    print("\n## fleet: REST calls into the stand-in over the window (as the agents' CloudClient timed them)")
    print("| machines | operation | calls | per s | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|---|")
    by_op: dict[str, list[float]] = {}
    for t, op, seconds in r.requests:
        if t0 <= t <= t1:
            by_op.setdefault(op, []).append(seconds * 1000)
    total = sum(len(v) for v in by_op.values())
    for op, durations in sorted(by_op.items(), key=lambda kv: -len(kv[1])):
        d50, d99, dmax = _ms(durations)
        print(f"| {r.machines} | {op} | {len(durations)} | {len(durations) / r.seconds:.1f} | {d50} | {d99} | {dmax} |")
    print(f"| {r.machines} | all | {total} | {total / r.seconds:.1f} | | | |" if r.seconds else "")

    print("\n## fleet: row writes per table over the window (pg_stat_user_tables inserts + updates)")
    print("| machines | table | rows written | per s | per machine per s |")
    print("|---|---|---|---|---|")
    for name, writes in sorted(r.table_writes.items(), key=lambda kv: -kv[1]):
        per_s = writes / r.seconds if r.seconds else 0.0
        print(f"| {r.machines} | {name} | {writes} | {per_s:.1f} | {per_s / r.machines:.2f} |")

    api, pg = cpu_shares(r)
    api_pss = max((s.api.pss_mb for s in r.stack_samples), default=0.0)
    pg_pss = max((s.postgres.pss_mb for s in r.stack_samples), default=0.0)
    pg_procs = max((s.postgres.processes for s in r.stack_samples), default=0)
    workers = r.workers_cpu_s / r.seconds * 100 if r.seconds else 0.0
    worker_rss = max(r.worker_rss_mb, default=0.0)
    calls = total or 1
    api_ms, pg_ms = (share / 100 * r.seconds / calls * 1000 for share in (api, pg))
    print("\n## fleet: CPU and memory of the stack (% of one core over the window; PSS max sampled)")
    print(
        "| machines | stand-in CPU % | stand-in PSS MB | PostgreSQL CPU % | PostgreSQL PSS MB (processes) | "
        "CPU ms per REST call: stand-in / PostgreSQL | fleet workers CPU % | fleet workers RSS MB | saturated |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {r.machines} | {api:.0f} | {api_pss:.0f} | {pg:.0f} | {pg_pss:.0f} ({pg_procs}) | "
        f"{api_ms:.2f} / {pg_ms:.2f} | {workers:.0f} | {worker_rss:.0f} | {saturation(r)} |"
    )
    api_wait, pg_wait, workers_wait = waits(r)
    print("\n## fleet: waiting for a CPU (run-queue wait over the window, % of the window, summed over threads)")
    print("| machines | stand-in | PostgreSQL | fleet workers |")
    print("|---|---|---|---|")
    print(f"| {r.machines} | {api_wait:.0f} | {pg_wait:.0f} | {workers_wait:.0f} |")
    print(f"\n/proc/loadavg at the window's start: {r.uptime[0]}; at its end: {r.uptime[1]}")

    per_row = r.bytes / r.rows if r.rows else 0.0
    rows_day = r.machines * SECONDS_PER_DAY / r.interval_s
    print("\n## fleet: what it implies for storage (parameter_history, measured bytes per row)")
    print(
        "| machines | rows stored | bytes/row (heap + PK + TOAST) | `values` bytes/row | rows/day | GB/day | "
        "monthly partition GB |"
    )
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {r.machines} | {r.rows} | {per_row:.0f} | {r.values_bytes:.0f} | {rows_day:,.0f} | "
        f"{rows_day * per_row / 1e9:.2f} | {rows_day * per_row * DAYS_PER_MONTH / 1e9:.1f} |"
    )
