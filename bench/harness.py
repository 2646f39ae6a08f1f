"""What every benchmark script shares: progress lines with elapsed time, the load average, and a `main` that
turns SIGTERM/SIGHUP into the same clean cancellation as Ctrl-C (children stopped, temp dirs removed)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable

__all__ = ["load1", "log", "run_until_interrupted"]

_STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"==> [{time.monotonic() - _STARTED:5.1f}s] {message}", file=sys.stderr, flush=True)


def load1() -> float:
    return os.getloadavg()[0]


def run_until_interrupted(bench: Callable[[], Awaitable[None]]) -> int:
    """Run `bench()`; exit 130 after Ctrl-C, SIGTERM or SIGHUP, once its exit stacks have cleaned up."""

    async def guarded() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, task.cancel)
        await bench()

    try:
        asyncio.run(guarded())
    except (KeyboardInterrupt, asyncio.CancelledError):
        log("interrupted; children stopped, temp dir removed")
        return 130
    return 0
