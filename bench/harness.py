"""What every benchmark script shares: progress lines with elapsed time, the load average, the `--quick` smoke
mode, and a `main` that turns SIGTERM/SIGHUP into the same clean cancellation as Ctrl-C (children stopped, temp
dirs removed), and the runtime-only virtualenv an agent is measured in (`runtime_python`)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

__all__ = ["RUNTIME_VENV", "load1", "log", "parse_with_quick", "run_until_interrupted", "runtime_python"]

_STARTED = time.monotonic()
REPO = Path(__file__).resolve().parent.parent
#: The agent as the image runs it: the project and its runtime dependencies, none of the dev tools (build/ is
#: ignored by git). Built on first use, then reused; `pip install -e` keeps it on the working tree's code.
RUNTIME_VENV = REPO / "build" / "bench-runtime-venv"


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


def runtime_python() -> str:
    """The interpreter of `RUNTIME_VENV`, built first if needed (a minute, from the package index).

    Why not the dev venv: it also holds the test tools, and libraries import what they find (httpcore imports
    trio, which selenium brought; httpx imports click and pygments for its CLI): 4–5 MB of RSS and some CPU that
    the Dockerfile's image (`pip install .`) does not have."""
    python = RUNTIME_VENV / "bin" / "python"
    stamp = RUNTIME_VENV / ".installed"
    pyproject = REPO / "pyproject.toml"
    if not stamp.exists() or stamp.stat().st_mtime < pyproject.stat().st_mtime:
        log(f"building the runtime-only virtualenv {RUNTIME_VENV} (pip install -e {REPO})")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(RUNTIME_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", str(REPO)],
            check=True,
        )
        stamp.touch()
    return str(python)
