"""CPU and memory of the local stack, split into the stand-in (the supalocal Python process) and PostgreSQL.

Read from /proc (no extra dependency): the stack process is the bench's child; PostgreSQL's postmaster is
the stack's child, and every backend is the postmaster's. CPU is utime + stime of every live process of a
group plus, for PostgreSQL, the postmaster's cutime + cstime (backends that exited were reaped by it, so
their CPU stays counted). Memory is PSS (/proc/<pid>/smaps_rollup): shared buffers mapped by every backend
count once in total, where summing RSS would count them once per backend. Run-queue wait is the second
field of /proc/<pid>/task/<tid>/schedstat summed over threads: time a group was ready to run but had no CPU,
which tells a part at its own limit (busy, no wait) from a part starved by the box (waiting).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GroupSample", "StackSample", "sample_stack", "sched_wait_s"]

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class GroupSample:
    cpu_s: float
    pss_mb: float
    processes: int
    wait_s: float = 0.0  # run-queue wait of the live processes' threads


@dataclass(frozen=True, slots=True)
class StackSample:
    api: GroupSample  # the supalocal process: PostgREST and Realtime stand-in
    postgres: GroupSample


def _stat(pid: int) -> tuple[str, int, float, float] | None:
    """(comm, ppid, own cpu s, reaped children's cpu s), or None if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = text[text.index("(") + 1 : text.rindex(")")]
    fields = text.rsplit(")", 1)[1].split()
    ppid = int(fields[1])
    own = (int(fields[11]) + int(fields[12])) / CLK_TCK
    reaped = (int(fields[13]) + int(fields[14])) / CLK_TCK
    return comm, ppid, own, reaped


def _pss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def sched_wait_s(pid: int) -> float:
    """Seconds the threads of `pid` have spent runnable but waiting for a CPU (0 if the process is gone)."""
    total = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return 0.0
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def _children(parent: dict[int, int], root: int) -> list[int]:
    out, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        kids = [p for p, pp in parent.items() if pp == pid]
        out.extend(kids)
        frontier.extend(kids)
    return out


def sample_stack(stack_pid: int) -> StackSample:
    """The stack's two groups now. The postmaster is the stack's direct child named `postgres`."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            stats[int(entry.name)] = st
    parent = {pid: st[1] for pid, st in stats.items()}
    api = stats.get(stack_pid)
    if api is None:
        raise RuntimeError(f"the stack process {stack_pid} is gone")
    postmaster = next((p for p, st in stats.items() if st[1] == stack_pid and st[0] == "postgres"), None)
    pg_pids = [] if postmaster is None else [postmaster, *_children(parent, postmaster)]
    pg_cpu = sum(stats[p][2] for p in pg_pids if p in stats)
    if postmaster is not None:
        pg_cpu += stats[postmaster][3]
    return StackSample(
        api=GroupSample(api[2], _pss_mb(stack_pid), 1, sched_wait_s(stack_pid)),
        postgres=GroupSample(
            pg_cpu, sum(_pss_mb(p) for p in pg_pids), len(pg_pids), sum(sched_wait_s(p) for p in pg_pids)
        ),
    )
