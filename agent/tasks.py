"""Stopping asyncio tasks reliably.

Python 3.11's `asyncio.wait_for` (used inside pymodbus, httpx and websockets) can swallow a cancellation that
lands in the same loop iteration as the awaited result: the task then simply carries on. A shutdown that
cancels once and awaits can hang forever on such a task (seen in CI: the sampler outlived its cancel).
`cancel_and_wait` cancels again until the tasks are really done.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

from loguru import logger

__all__ = ["cancel_and_wait"]

RETRY_S = 0.2
ATTEMPTS = 25


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]], *, retry_s: float = RETRY_S) -> None:
    """Cancel `tasks` and return once every one has finished (their exceptions are consumed, not raised)."""
    tasks = list(tasks)
    pending = {t for t in tasks if not t.done()}
    for _ in range(ATTEMPTS):
        if not pending:
            break
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=retry_s)
    if pending:
        logger.error("tasks ignored {} cancellations: {}", ATTEMPTS, ", ".join(t.get_name() for t in pending))
    for task in tasks:
        if task.done() and not task.cancelled():
            with contextlib.suppress(Exception):
                task.exception()
