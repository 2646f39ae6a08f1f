"""A stand-in agent color for the deploy-harness tests: the real `agent.http.HttpServer` and `AgentMetrics`
serving a fake, live snapshot (no PLC, no Supabase), so HAProxy, Prometheus and the scripts talk to the
agent's real endpoints and metric names.

    python tests/deploy/standin_agent.py --color blue --version 1.0.0 [--port 0] [--down-file F]
                                         [--lease-file F --admin-token T]

Prints `port <n>` once listening. While --down-file exists the agent is "not serving": /health/basic and
/health answer 503, as a real agent does while starting or stopping. SIGTERM or SIGINT stops it.

With --lease-file, two stand-ins share a machine lease the way real agents share `machine_leases`: the file
holds the holder's color (empty = free); a color that wants the lease takes it when free (every 0.1 s), and
the admin routes of agent/safety/handover.py (behind --admin-token) release and re-take it. No recipe ever runs, so
a hand-over is "released" at once. /health's role follows the file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

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
    parser.add_argument("--lease-file", type=Path, help="a lease shared with the other color (see above)")
    parser.add_argument("--admin-token", help="enables the admin routes")
    return parser.parse_args(argv)


class FakeAgent:
    """The snapshot callable: plausible values that move with time (frames, uptime), like a live agent's."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._down_file = args.down_file
        self.role: Callable[[], str] = lambda: args.role  # the lease's, with --lease-file
        self._start = time.monotonic()
        self._base = AgentSnapshot(
            version=args.version, color=args.color, role=args.role, instance_id=f"{args.color}-standin",
            machine_id="6f1c2a4e-0000-4000-8000-000000000001", started_at=datetime.now(UTC), uptime_s=0.0,
            serving=True, plc_connected=True, plc_last_error=None, plc_response_ms=4.5, database_connected=True,
            realtime_connected=True, sampling=True, logging_interval_s=1.0002, frames=0, skipped_ticks=0, late_ticks=0,
            failed_frames=0, spool_depth=3, spool_bytes=2048, quarantined=args.quarantined, dropped=0, shipped=0,
            memory_mb=64.0, errors={"plc": 0, "database": 0},
        )  # fmt: skip

    def __call__(self) -> AgentSnapshot:
        elapsed = time.monotonic() - self._start
        serving = self._down_file is None or not self._down_file.exists()
        return replace(self._base, uptime_s=elapsed, serving=serving, frames=int(elapsed * 10),
                       shipped=int(elapsed * 10), role=self.role())  # fmt: skip


class FileLease:
    """The --lease-file lease and the hand-over admin routes (same answers as agent/safety/handover.py)."""

    def __init__(self, path: Path, *, color: str, active: bool) -> None:
        self.path, self.color, self.hold, self.released = path, color, True, False
        if active and self.holder() == "":
            path.write_text(color)

    def holder(self) -> str:
        return self.path.read_text().strip() if self.path.exists() else ""

    def role(self) -> str:
        return "active" if self.holder() == self.color else "standby"

    async def keep(self) -> None:
        while True:
            if self.hold and self.holder() == "":
                self.path.write_text(self.color)
            await asyncio.sleep(0.1)

    def describe(self) -> dict[str, object]:
        state = "released" if self.released else "holding"
        return {"state": state, "role": self.role(), "run": None, "waiting_s": 0.0}

    async def post_handover(self, request: web.Request) -> web.Response:
        self.hold, self.released = False, True
        if self.holder() == self.color:
            self.path.write_text("")
        return web.json_response(self.describe(), status=202)

    async def post_activate(self, request: web.Request) -> web.Response:
        self.hold, self.released = True, False
        if self.holder() == "":
            self.path.write_text(self.color)
        return web.json_response(self.describe())

    async def get_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.describe())


async def observe(metrics: AgentMetrics) -> None:
    """Feed the two histograms as commands and recipe steps would, so rate() and quantiles have data."""
    while True:
        metrics.observe_command_latency(0.04)
        metrics.observe_step_timing_error(0.0015)
        await asyncio.sleep(0.2)


async def main(argv: list[str]) -> int:
    args = parse_args(argv)
    snapshot = FakeAgent(args)
    lease = None
    if args.lease_file is not None:
        lease = FileLease(args.lease_file, color=args.color, active=args.role == "active")
        snapshot.role = lease.role
    metrics = AgentMetrics(snapshot=snapshot)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = HttpServer(snapshot=snapshot, metrics=metrics, host="127.0.0.1", port=args.port,
                        admin_token=args.admin_token)  # fmt: skip
    if lease is not None:
        server.add_admin_route("POST", "/admin/handover", lease.post_handover)
        server.add_admin_route("GET", "/admin/handover", lease.get_state)
        server.add_admin_route("POST", "/admin/activate", lease.post_activate)
    async with server:
        print(f"port {server.port}", flush=True)
        tasks = [asyncio.create_task(observe(metrics))]
        if lease is not None:
            tasks.append(asyncio.create_task(lease.keep()))
        await stop.wait()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
