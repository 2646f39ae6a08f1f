"""A fleet bench worker process: many `VirtualAgent`s (bench/fleet_agent.py) on one event loop.

    .venv/bin/python bench/fleet_worker.py CONFIG.json

CONFIG: {"url", "key", "interval_s", "workdir", "machines": [ids], "out": path}. Started by bench/fleet.py, one
worker per `--per-worker` machines, because a real agent process costs ~90 MB and the box has 2 cores.

Protocol with the parent: one JSON line on stdout when every agent holds its lease and has its Realtime
channels subscribed (`{"ready": n}`); then, every second, `{"t": epoch, "depth": spool records waiting,
summed}`. On SIGTERM (or stdin closing) the agents stop and the per-agent counts, this process's CPU and
peak RSS, every REST call's duration, every history record's (ts, appended, accepted) and this loop's
wake-up lag go to `out` as JSON.
"""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loguru import logger

from bench.fleet_agent import Trace, VirtualAgent

__all__ = ["main"]

READY_TIMEOUT_S = 120.0
LAG_PROBE_S = 0.1
START_SPREAD_S = 0.05  # between two agents' start-ups: 200 clients at once would be a thundering herd


def _emit(message: dict[str, Any]) -> None:
    print(json.dumps(message), flush=True)


async def run(config: dict[str, Any]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    trace = Trace()
    lag: list[tuple[float, float]] = []
    agents = [
        VirtualAgent(
            machine_id,
            url=config["url"],
            key=config["key"],
            interval_s=float(config["interval_s"]),
            workdir=Path(config["workdir"]) / machine_id,
            trace=trace,
        )
        for machine_id in config["machines"]
    ]
    tasks = []
    for agent in agents:
        tasks.append(asyncio.create_task(agent.run(stop)))
        await asyncio.sleep(START_SPREAD_S)
    async with asyncio.timeout(READY_TIMEOUT_S):
        await asyncio.gather(*(agent.ready.wait() for agent in agents))
    _emit({"ready": len(agents)})
    probe = asyncio.create_task(_probe_lag(lag))
    while not stop.is_set():
        _emit({"t": time.time(), "depth": sum(a.snapshot().depth for a in agents)})
        await asyncio.sleep(1.0)
    await asyncio.gather(*tasks, return_exceptions=True)
    probe.cancel()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    Path(config["out"]).write_text(  # noqa: ASYNC240 - once, at exit, after every agent stopped
        json.dumps(
            {
                "agents": {a.machine_id: asdict(a.snapshot()) for a in agents},
                "cpu_s": usage.ru_utime + usage.ru_stime,
                "maxrss_mb": usage.ru_maxrss / 1024,
                "requests": trace.requests,
                "shipped": trace.shipped,
                "lag": lag,
            }
        )
    )


async def _probe_lag(lag: list[tuple[float, float]]) -> None:
    """How late this loop wakes a 100 ms sleeper: the delay every agent's callbacks share in this process."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + LAG_PROBE_S
        await asyncio.sleep(LAG_PROBE_S)
        lag.append((time.time(), loop.time() - due))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    config = json.loads(Path(args[0]).read_text())
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    asyncio.run(run(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
