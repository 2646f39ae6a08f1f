"""What the whole-agent benches start before any agent: the local stack, the simulator on a synthetic map, and a
database connection, all torn down by the caller's exit stack in reverse order (connection → simulator → stack).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench.children import StackProcess
from bench.harness import load1, log
from bench.read_cycle import SimulatorProcess
from bench.synthetic_map import synthetic_map_csv

__all__ = ["Testbed", "start_testbed"]


@dataclass(frozen=True, slots=True)
class Testbed:
    tmp: Path
    map_csv: str
    supabase: StackProcess
    sim: SimulatorProcess
    db: asyncpg.Connection


async def start_testbed(
    stack: contextlib.AsyncExitStack, *, params: int, prefix: str, plc_priority: int = 0
) -> Testbed:
    """A temporary directory, the `params`-parameter synthetic map, the stack and the simulator serving it
    (under SCHED_FIFO at `plc_priority`, when it is > 0: `SimulatorProcess`)."""
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))
    map_csv = synthetic_map_csv(params)
    map_file = tmp / f"map{params}.csv"
    map_file.write_text(map_csv)
    log(f"starting the local stack and the simulator ({params} parameters); load {load1():.2f}")
    supabase = StackProcess(tmp / "supalocal")
    stack.callback(supabase.stop)
    supabase.launch()
    await supabase.wait_ready()
    sim = await asyncio.to_thread(SimulatorProcess, map_file, priority=plc_priority)
    stack.callback(sim.stop)
    db = await asyncpg.connect(supabase.env["DATABASE_URL"])
    stack.push_async_callback(db.close)
    return Testbed(tmp, map_csv, supabase, sim, db)
