"""Read-cycle benchmark: full-map read latency and the sampler's timing, against the simulator over loopback.

The simulator runs in its own process (as a PLC would), the agent's PlcDevice in this one.

    .venv/bin/python bench/read_cycle.py [--reads 500] [--duration 60] [--interval 1.0]

Prints, for the default map (160 parameters) and a synthetic 500-parameter map: requests per full read,
read latency p50/p99/max; then the sampler's interval deviation and lateness p50/p99/max over --duration
seconds at --interval, and the CPU the sampling process used (% of one core). Targets: docs/DESIGN.md §8.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import itertools

from agent.plc import PlcConnection, PlcDevice, RegisterMap, load_default_map
from agent.sampling import MemorySink, Sampler
from bench.synthetic_map import synthetic_map_csv


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class SimulatorProcess:
    """`python -m agent simulate --port 0 [--map F]` as a child; the port is read from its first line.

    `priority` > 0 runs it under SCHED_FIFO at that priority (`chrt -f`): a PLC's runtime is real-time and runs
    on its own hardware, so it never waits for the agent's or the stack's processes; 0 = the ordinary scheduler,
    sharing the box like every other process here."""

    def __init__(self, map_file: Path | None = None, *, priority: int = 0) -> None:
        args = [sys.executable, "-m", "agent", "simulate", "--port", "0", "--watchdog-timeout", "0"]
        if map_file:
            args += ["--map", str(map_file)]
        if priority:
            args = ["chrt", "-f", str(priority), *args]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the simulator did not start ({' '.join(args)}): is `chrt -f` permitted here?")
        self.port = int(line.rsplit(":", 1)[1])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


async def measure_reads(register_map: RegisterMap, port: int, reads: int) -> dict[str, float]:
    async with PlcConnection(host="127.0.0.1", port=port, timeout_s=1.0) as conn:
        assert await conn.wait_connected(5)
        device = PlcDevice(conn, register_map)
        for _ in range(20):  # warm-up
            await device.read_all()
        samples, requests = [], 0
        for _ in range(reads):
            frame = await device.read_all()
            assert frame.ok, frame.failed_keys
            samples.append(frame.duration_s * 1000)
            requests = frame.requests
    return {
        "params": len(register_map),
        "requests": requests,
        "p50": pct(samples, 50),
        "p99": pct(samples, 99),
        "max": max(samples),
    }


async def measure_sampler(register_map: RegisterMap, port: int, duration_s: float, interval_s: float) -> dict:
    async with PlcConnection(host="127.0.0.1", port=port, timeout_s=1.0) as conn:
        assert await conn.wait_connected(5)
        device = PlcDevice(conn, register_map)
        starts: list[float] = []
        sink = MemorySink(maxlen=100_000)
        original = device.read_all

        async def timed_read():  # type: ignore[no-untyped-def]
            starts.append(time.monotonic())
            return await original()

        device.read_all = timed_read  # type: ignore[method-assign]
        sampler = Sampler(device, interval_s=interval_s, sink=sink)
        cpu0, wall0 = time.process_time(), time.monotonic()
        await sampler.run(max_ticks=int(duration_s / interval_s) + 1)
        cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0) * 100
    deviation = [abs((b - a) - interval_s) * 1000 for a, b in itertools.pairwise(starts)]
    lateness = [x * 1000 for x in sampler.stats.lateness_s]
    return {
        "ticks": sampler.stats.ticks,
        "skipped": sampler.stats.skipped,
        "dev_p50": statistics.median(deviation),
        "dev_p99": pct(deviation, 99),
        "dev_max": max(deviation),
        "late_p50": statistics.median(lateness),
        "late_p99": pct(lateness, 99),
        "late_max": max(lateness),
        "cpu_pct": cpu,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reads", type=int, default=500)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        big_file = Path(tmp) / "map500.csv"
        big_file.write_text(synthetic_map_csv(500))
        from agent.plc import load_map_csv

        cases = [("default map", load_default_map(), None), ("synthetic 500", load_map_csv(big_file), big_file)]
        print("## full-map read latency (loopback, simulator in its own process)")
        print(f"| map | parameters | requests/read | p50 ms | p99 ms | max ms |  ({args.reads} reads)")
        print("|---|---|---|---|---|---|")
        for name, register_map, path in cases:
            sim = SimulatorProcess(path)
            try:
                r = await measure_reads(register_map, sim.port, args.reads)
            finally:
                sim.stop()
            print(f"| {name} | {r['params']} | {r['requests']} | {r['p50']:.2f} | {r['p99']:.2f} | {r['max']:.2f} |")

        print(f"\n## sampler timing: {args.duration:.0f} s at {args.interval} s, 500-parameter map")
        sim = SimulatorProcess(big_file)
        try:
            s = await measure_sampler(load_map_csv(big_file), sim.port, args.duration, args.interval)
        finally:
            sim.stop()
        print(
            "| ticks | skipped | interval deviation p50 / p99 / max ms | lateness p50 / p99 / max ms "
            "| CPU % of a core |"
        )
        print("|---|---|---|---|---|")
        print(
            f"| {s['ticks']} | {s['skipped']} | {s['dev_p50']:.2f} / {s['dev_p99']:.2f} / {s['dev_max']:.2f} | "
            f"{s['late_p50']:.2f} / {s['late_p99']:.2f} / {s['late_max']:.2f} | {s['cpu_pct']:.2f} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
