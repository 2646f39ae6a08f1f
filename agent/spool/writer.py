"""Non-blocking, ordered appends to the spool for code on timing paths (sampler, recipe executor hooks).

`submit` only queues in memory; one writer task appends whatever is queued in a single transaction (one
fsync for a burst). Order is kept across all submitters, so a run row always precedes its steps and its
final status. If the disk stalls, up to `limit` items wait in memory; past that the oldest *telemetry* is
dropped (counted), never run or command records.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from loguru import logger

from agent.spool.store import DROPPABLE_KINDS, Spool

__all__ = ["SpoolWriter"]

DEFAULT_LIMIT = 20_000


class SpoolWriter:
    def __init__(self, spool: Spool, *, limit: int = DEFAULT_LIMIT) -> None:
        self.spool, self.limit = spool, limit
        self.dropped = 0
        self._queue: deque[tuple[str, Any]] = deque()
        self._wake = asyncio.Event()
        self._stopping = False
        #: Called with every submitted record (the metrics count run and command outcomes here).
        self.observers: list[Callable[[str, Any], None]] = []

    def submit(self, kind: str, payload: Any) -> None:
        """Queue one record (never blocks, never awaits)."""
        for observe in self.observers:
            observe(kind, payload)
        if len(self._queue) >= self.limit:
            self._drop_oldest_telemetry()
        self._queue.append((kind, payload))
        self._wake.set()

    async def run(self) -> None:
        """Append queued records until `stop()`; then append what is left and return.

        Stop it with `stop()`, not by cancelling: a cancel could land while a batch is being written.
        """
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.drain()
            if self._stopping:
                return

    def pending(self, kinds: tuple[str, ...]) -> bool:
        """Any record of `kinds` queued in memory, not yet appended to the spool."""
        return any(kind in kinds for kind, _ in self._queue)

    def stop(self) -> None:
        """Let `run()` finish after writing everything queued so far."""
        self._stopping = True
        self._wake.set()

    async def drain(self) -> None:
        """Append everything queued now (also called at shutdown, after the producers stopped)."""
        while self._queue:
            batch = [self._queue.popleft() for _ in range(len(self._queue))]
            try:
                await self.spool.append_many(batch)
            except Exception:
                self._queue.extendleft(reversed(batch))  # keep them for the next attempt
                logger.exception("spool append failed; {} records kept in memory", len(batch))
                raise

    def _drop_oldest_telemetry(self) -> None:
        for i, (kind, _) in enumerate(self._queue):
            if kind in DROPPABLE_KINDS:
                del self._queue[i]
                self.dropped += 1
                return
