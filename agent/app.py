"""Wiring and lifecycle of the running agent: one TaskGroup, ordered start-up, graceful SIGTERM.

Start-up enters resources in order (PLC connection → device → sampler); shutdown exits them in reverse.
SIGTERM and SIGINT cancel the task group; every resource's `__aexit__` runs. Issue #4 adds the spool,
the cloud client and the HTTP server to the same stack.
"""

from __future__ import annotations

import asyncio
import signal
import statistics
import time

from loguru import logger

from agent import __version__
from agent.config import Settings
from agent.plc import PlcConnection, PlcDevice, RegisterMap, load_default_map, load_map_csv
from agent.sampling import MemorySink, Sampler

__all__ = ["load_register_map", "run_agent"]


def load_register_map(settings: Settings) -> RegisterMap:
    """The map to use: PLC_MAP_FILE when set, else the packaged reference map. (#4: the `parameters` table.)"""
    return load_map_csv(settings.PLC_MAP_FILE) if settings.PLC_MAP_FILE else load_default_map()


def connection_for(settings: Settings) -> PlcConnection:
    return PlcConnection(
        host=settings.PLC_HOST,
        port=settings.PLC_PORT,
        unit_id=settings.PLC_UNIT_ID,
        timeout_s=settings.PLC_TIMEOUT_S,
    )


def device_for(settings: Settings, connection: PlcConnection, register_map: RegisterMap) -> PlcDevice:
    return PlcDevice(
        connection,
        register_map,
        word_order=settings.PLC_WORD_ORDER,
        max_gap=settings.PLC_MAX_GAP,
        max_registers=settings.PLC_BULK_READ_SIZE,
    )


async def run_agent(settings: Settings, *, status_interval_s: float | None = None) -> None:
    """Run until SIGTERM/SIGINT. Returns normally after a clean shutdown."""
    register_map = load_register_map(settings)
    logger.info(
        "ald-agent {} starting: PLC {}:{} unit {}, {} parameters, interval {}s",
        __version__,
        settings.PLC_HOST,
        settings.PLC_PORT,
        settings.PLC_UNIT_ID,
        len(register_map),
        settings.PARAMETER_LOGGING_INTERVAL,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with connection_for(settings) as connection:
            device = device_for(settings, connection, register_map)
            sink = MemorySink()
            sampler = Sampler(device, interval_s=settings.PARAMETER_LOGGING_INTERVAL, sink=sink)
            async with asyncio.TaskGroup() as tasks:
                sampling = tasks.create_task(sampler.run(), name="sampler")
                status = tasks.create_task(
                    _status_lines(sampler, connection, status_interval_s or settings.STATUS_LOG_INTERVAL),
                    name="status",
                )
                await stop.wait()
                logger.info("shutdown requested: stopping sampling")
                sampling.cancel()
                status.cancel()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    logger.info("ald-agent stopped cleanly")


async def _status_lines(sampler: Sampler, connection: PlcConnection, every_s: float) -> None:
    """One summary line per interval: what an engineer tailing the log needs at a glance."""
    last_ticks, last_t = 0, time.monotonic()
    while True:
        await asyncio.sleep(every_s)
        s = sampler.stats
        now = time.monotonic()
        rate = (s.ticks - last_ticks) / (now - last_t)
        late = sorted(s.lateness_s)
        p50 = statistics.median(late) * 1000 if late else 0.0
        p99 = late[int(0.99 * (len(late) - 1))] * 1000 if late else 0.0
        logger.info(
            "status: plc={} frames={} ({:.2f}/s) skipped={} failed={} read={:.1f}ms lateness p50={:.2f}ms p99={:.2f}ms",
            "up" if connection.connected.is_set() else "DOWN",
            s.ticks,
            rate,
            s.skipped,
            s.failed_frames,
            s.last_read_s * 1000,
            p50,
            p99,
        )
        last_ticks, last_t = s.ticks, now
