"""A stand-in agent color for the deploy-harness tests: the real `agent.http.HttpServer` and `AgentMetrics`
serving a fake, live snapshot (no PLC, no Supabase), so HAProxy, Prometheus and the scripts talk to the
agent's real endpoints and metric names.

    python tests/deploy/standin_agent.py --color blue --version 1.0.0 [--port 0] [--down-file F]

Prints `port <n>` once listening. While --down-file exists the agent is "not serving": /health/basic and
/health answer 503, as a real agent does while starting or stopping. SIGTERM or SIGINT stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from agent.http import HttpServer
from agent.metrics import AgentMetrics
from agent.status import AgentSnapshot


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--color", choices=["blue", "green"], required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--role", choices=["active", "standby"], default="active")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--down-file", type=Path, help="while this file exists, the agent is not serving")
    parser.add_argument("--quarantined", type=int, default=0, help="spool records in quarantine (0)")
    return parser.parse_args(argv)


class FakeAgent:
    """The snapshot callable: plausible values that move with time (frames, uptime), like a live agent's."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._down_file = args.down_file
        self._start = time.monotonic()
        self._base = AgentSnapshot(
            version=args.version, color=args.color, role=args.role, instance_id=f"{args.color}-standin",
            machine_id="6f1c2a4e-0000-4000-8000-000000000001", started_at=datetime.now(UTC), uptime_s=0.0,
            serving=True, plc_connected=True, plc_last_error=None, plc_response_ms=4.5, database_connected=True,
            realtime_connected=True, sampling=True, logging_interval_s=1.0002, frames=0, skipped_ticks=0,
            failed_frames=0, spool_depth=3, spool_bytes=2048, quarantined=args.quarantined, dropped=0, shipped=0,
            memory_mb=64.0, errors={"plc": 0, "database": 0},
        )  # fmt: skip

    def __call__(self) -> AgentSnapshot:
        elapsed = time.monotonic() - self._start
        serving = self._down_file is None or not self._down_file.exists()
        return replace(self._base, uptime_s=elapsed, serving=serving, frames=int(elapsed * 10),
                       shipped=int(elapsed * 10))  # fmt: skip


async def observe(metrics: AgentMetrics) -> None:
    """Feed the two histograms as commands and recipe steps would, so rate() and quantiles have data."""
    while True:
        metrics.observe_command_latency(0.04)
        metrics.observe_step_timing_error(0.0015)
        await asyncio.sleep(0.2)


async def main(argv: list[str]) -> int:
    args = parse_args(argv)
    snapshot = FakeAgent(args)
    metrics = AgentMetrics(snapshot=snapshot)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with HttpServer(snapshot=snapshot, metrics=metrics, host="127.0.0.1", port=args.port) as server:
        print(f"port {server.port}", flush=True)
        feeder = asyncio.create_task(observe(metrics))
        await stop.wait()
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
