"""What every benchmark script shares: progress lines with elapsed time, the load average, the `--quick` smoke
mode, and a `main` that turns SIGTERM/SIGHUP into the same clean cancellation as Ctrl-C (children stopped, temp
dirs removed)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

__all__ = ["load1", "log", "parse_with_quick", "run_until_interrupted"]

_STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"==> [{time.monotonic() - _STARTED:5.1f}s] {message}", file=sys.stderr, flush=True)


def load1() -> float:
    return os.getloadavg()[0]


def parse_with_quick(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None, quick: Mapping[str, float]
) -> argparse.Namespace:
    """Add `--quick` (the CI smoke mode: `quick`'s values replace those options) and parse `argv`."""
    parser.add_argument(
        "--quick", action="store_true", help="smoke mode for CI: " + ", ".join(f"--{k} {v:g}" for k, v in quick.items())
    )
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in quick.items():
            setattr(args, name, value)
    return args


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
