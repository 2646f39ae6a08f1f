"""Valve pulse error at the simulator, PLC-timed and agent-timed, with a CPU hog on the box (issue 14 item 5).

    .venv/bin/python bench/pulses.py [--pulses 100] [--long-pulses 20] [--hogs 2] [--plc-priority 50]
                                     [--configs plc-hog,agent-hog,agent-quiet,plc-quiet] [--quick]

What runs where:
- the PLC: `python -m agent simulate --port 0 --watchdog-timeout 0`, a child process (a fresh one per
  configuration). With --plc-priority N it runs under the real-time policy SCHED_FIFO at priority N
  (`chrt -f N`), as a PLC's runtime is real-time; 0 = the ordinary scheduler, like every other process here;
- the hog: --hogs child processes, each a Python busy loop, running for the whole of a "-hog" configuration;
- this process: the agent's own run path — `RecipeExecutor` → `RunPort` → `WriteGate` → `PlcDevice` over one
  Modbus TCP connection — running one recipe: 10, 50 and 100 ms pulses × --pulses, 500 and 1000 ms ×
  --long-pulses, valves 1 and 2 alternating, a 20 ms wait after each. (Not the whole `python -m agent run`:
  bench/commands.py measures the agent-timed path inside the whole agent.)

Error = the simulator's own measurement of each opening minus the planned length: `valve_N.pulse_measured_us`,
from the coil's energise to its de-energise on the simulator's clock, which the agent records in
`run_steps.detail["plc_measured_us"]` for both paths (docs/CONTRACT.md §8 "PLC-timed pulses"). PLC-timed: the
reference map (the simulator's pulse task times the pulse). Agent-timed: the agent's map without the timer keys
(`pulse_ms`, `pulse_trigger`), so the agent opens and closes the coil itself and the simulator measures the same
way. Targets: PLC-timed p99 < 0.5 ms with the hog; agent-timed p99 < 5 ms on a quiet box. The 1-minute load
average is printed before and after each configuration: the box is shared. A second table gives each valve
step's own duration minus the planned length: what the handshake's round trips cost the recipe.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.logs import configure_logging
from agent.plc import PlcConnection, PlcDevice, RegisterMap, load_default_map
from agent.recipes import Recipe, RecipeExecutor, RunStatus, StepRecord, compile_recipe, ensure_valid
from agent.safety import WriteGate
from bench.harness import load1, log, run_until_interrupted
from bench.read_cycle import SimulatorProcess

PULSES, LONG_PULSES, HOGS, PLC_PRIORITY = 100, 20, 1, 0
SHORT_MS, LONG_MS = (10, 50, 100), (500, 1000)
GAP_MS = 20
CONFIGS = ("plc-hog", "agent-hog", "agent-quiet", "plc-quiet")
QUICK = {"pulses": 3, "long_pulses": 1, "hogs": 1}
HOG_SETTLE_S = 1.0
_MS = 1000.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass
class Result:
    config: str
    errors: dict[int, list[float]]  # planned ms → error ms of each pulse
    overhead: list[float]  # each valve step's actual_ms − planned_ms: the handshake's round trips
    load: tuple[float, float]
    priority: int
    failed: str | None = None


@contextlib.contextmanager
def hogs(count: int) -> Iterator[None]:
    """`count` busy-loop processes for as long as the block runs."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(10)


def agent_timed(register_map: RegisterMap) -> RegisterMap:
    """The map without the timer keys: the agent times the pulse; the PLC still measures every opening."""
    return RegisterMap.build(p for p in register_map if not p.key.endswith((".pulse_ms", ".pulse_trigger")))


def pulse_recipe(*, pulses: int, long_pulses: int) -> Recipe:
    steps: list[dict[str, Any]] = []
    lengths = [ms for ms in SHORT_MS for _ in range(pulses)] + [ms for ms in LONG_MS for _ in range(long_pulses)]
    for n, ms in enumerate(lengths):
        steps.append({"type": "valve", "name": f"{ms} ms", "config": {"valve": 1 + n % 2, "duration_ms": ms}})
        steps.append({"type": "wait", "name": "gap", "config": {"duration_ms": GAP_MS}})
    return Recipe.from_document({"name": "pulse bench", "steps": steps})


async def run_config(config: str, args: argparse.Namespace) -> Result:
    timed_by, load_kind = config.split("-")
    register_map = load_default_map()
    agent_map = register_map if timed_by == "plc" else agent_timed(register_map)
    recipe = pulse_recipe(pulses=args.pulses, long_pulses=args.long_pulses)
    ensure_valid(recipe, agent_map)
    plan = compile_recipe(recipe)
    records: list[StepRecord] = []
    sim = SimulatorProcess(priority=args.plc_priority)
    before = load1()
    try:
        with hogs(args.hogs if load_kind == "hog" else 0):
            if load_kind == "hog":
                await asyncio.sleep(HOG_SETTLE_S)
            log(f"{config}: {plan.total_steps} steps, load {load1():.2f}")
            async with PlcConnection(host="127.0.0.1", port=sim.port, timeout_s=1.0) as conn:
                assert await conn.wait_connected(5)
                device = PlcDevice(conn, agent_map)
                executor = RecipeExecutor(device, plan, outputs=WriteGate(device).for_run(), on_step_end=records.append)
                outcome = await executor.run()
        after = load1()
    finally:
        sim.stop()
    errors: dict[int, list[float]] = {}
    overhead = [r.actual_ms - r.planned_ms for r in records if r.type == "valve"]
    for record in records:
        if record.type == "valve" and "plc_measured_us" in record.detail:
            errors.setdefault(round(record.planned_ms), []).append(
                record.detail["plc_measured_us"] / _MS - record.planned_ms
            )
    failed = None if outcome.status is RunStatus.SUCCEEDED else f"{outcome.status}: {outcome.error}"
    return Result(config, errors, overhead, (before, after), args.plc_priority, failed)


def print_table(results: list[Result]) -> None:
    print("## valve pulse error at the simulator (measured open time − planned, ms)\n")
    print("| configuration | PLC scheduling | length ms | pulses | p50 | p99 | max | load before → after |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        policy = f"SCHED_FIFO {r.priority}" if r.priority else "ordinary"
        rows = [(str(ms), e) for ms, e in sorted(r.errors.items())]
        rows.append(("all", [x for e in r.errors.values() for x in e]))
        for label, e in rows:
            if not e:
                print(f"| {r.config} | {policy} | {label} | 0 | **no pulses seen** | | | |")
                continue
            print(
                f"| {r.config} | {policy} | {label} | {len(e)} | {pct(e, 50):.3f} | {pct(e, 99):.3f} | "
                f"{max(e):.3f} | {r.load[0]:.2f} → {r.load[1]:.2f} |"
            )
        if r.failed:
            print(f"| {r.config} | {policy} | run **{r.failed}** | | | | | |")
    print()
    print("## valve step overhead (the step's actual_ms − planned, ms: its round trips to the PLC)\n")
    print("| configuration | PLC scheduling | steps | p50 | p99 | max |")
    print("|---|---|---|---|---|---|")
    for r in results:
        policy = f"SCHED_FIFO {r.priority}" if r.priority else "ordinary"
        o = r.overhead or [float("nan")]
        print(f"| {r.config} | {policy} | {len(r.overhead)} | {pct(o, 50):.3f} | {pct(o, 99):.3f} | {max(o):.3f} |")
    print()


async def bench_main(args: argparse.Namespace) -> None:
    log(f"{os.cpu_count()} CPUs, load {load1():.2f}; configurations {', '.join(args.configs)}")
    results = [await run_config(config, args) for config in args.configs]
    print_table(results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pulses", type=int, default=PULSES, help=f"of each of 10/50/100 ms ({PULSES})")
    parser.add_argument("--long-pulses", type=int, default=LONG_PULSES, help=f"of 500/1000 ms ({LONG_PULSES})")
    parser.add_argument("--hogs", type=int, default=HOGS, help=f"busy-loop processes in '-hog' runs ({HOGS})")
    parser.add_argument(
        "--plc-priority", type=int, default=PLC_PRIORITY, help="SCHED_FIFO priority of the simulator; 0 = ordinary"
    )
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, of {', '.join(CONFIGS)}")
    parser.add_argument("--quick", action="store_true", help="a few pulses, one hog: the CI smoke run")
    args = parser.parse_args(argv)
    args.configs = [c for c in args.configs.split(",") if c]
    unknown = [c for c in args.configs if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration {', '.join(unknown)}")
    if args.quick:
        vars(args).update(QUICK)
    # As `python -m agent run` logs by default: loguru's own default sink would print every write and step at DEBUG,
    # on the timing path this bench measures.
    configure_logging(level="INFO")
    return run_until_interrupted(lambda: bench_main(args))


if __name__ == "__main__":
    sys.exit(main())
