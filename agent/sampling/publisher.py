"""Frames → spool records: one `parameter_history` row per frame, `parameter_latest` rows on change.

The sampler hands frames over without waiting (`submit` only queues), so a slow disk never delays a tick;
a writer task appends everything queued in one spool transaction. `parameter_latest` gets a value only when it
moved beyond the parameter's deadband since the last published value (a bool or null on any change), plus a
full refresh every `refresh_s`, so the live view stays correct without 500 upserts per second.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from loguru import logger

from agent.plc import RegisterMap, Value
from agent.sampling.sampler import Frame
from agent.spool import Spool

__all__ = ["TelemetryPublisher", "changed_beyond_deadband"]

#: Frames kept in memory if the spool (disk) stalls; beyond this the oldest are dropped and counted.
QUEUE_LIMIT = 3600


def changed_beyond_deadband(old: Value | None, new: Value | None, deadband: float) -> bool:
    """Whether `new` should be published given the last published `old`. Pure."""
    if old is None or new is None or isinstance(old, bool) or isinstance(new, bool):
        return old != new or type(old) is not type(new)
    return abs(float(new) - float(old)) > deadband


class TelemetryPublisher:
    """The sampler's sink. `set_map` swaps the map and parameter ids when `parameters` changes."""

    def __init__(
        self,
        spool: Spool,
        *,
        machine_id: str,
        register_map: RegisterMap,
        parameter_ids: Mapping[str, str],
        refresh_s: float,
    ) -> None:
        self.spool, self.machine_id, self.refresh_s = spool, machine_id, refresh_s
        self.set_map(register_map, parameter_ids)
        self.dropped = 0
        self._queue: deque[Frame] = deque()
        self._wake = asyncio.Event()
        self._published: dict[str, Value | None] = {}
        self._last_refresh = float("-inf")

    def set_map(self, register_map: RegisterMap, parameter_ids: Mapping[str, str]) -> None:
        self.logged = [p.key for p in register_map if p.logged]
        self.deadband = {p.key: p.deadband for p in register_map}
        self.parameter_ids = dict(parameter_ids)
        self._last_refresh = float("-inf")  # a new map: publish every value once

    def submit(self, frame: Frame) -> None:
        """Queue a frame (never blocks)."""
        if len(self._queue) >= QUEUE_LIMIT:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(frame)
        self._wake.set()

    async def run(self) -> None:
        """Append queued frames to the spool until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.drain()

    async def drain(self) -> None:
        """Write everything queued now (also called at shutdown)."""
        while self._queue:
            frames = [self._queue.popleft() for _ in range(len(self._queue))]
            items: list[tuple[str, Any]] = []
            for frame in frames:
                items.extend(self.records(frame))
            try:
                await self.spool.append_many(items)
            except Exception:
                logger.exception("spool append failed; {} frames lost", len(frames))
                raise

    def records(self, frame: Frame) -> list[tuple[str, Any]]:
        ts = frame.ts.isoformat()
        values = {k: frame.values.get(k) for k in self.logged if k in frame.values}
        items: list[tuple[str, Any]] = [
            ("history", {"machine_id": self.machine_id, "ts": ts, "run_id": frame.run_id, "values": values})
        ]
        now = time.monotonic()
        refresh = now - self._last_refresh >= self.refresh_s
        if refresh:
            self._last_refresh = now
        rows = []
        for key, value in frame.values.items():
            parameter_id = self.parameter_ids.get(key)
            if parameter_id is None:
                continue
            if (
                refresh
                or key not in self._published
                or changed_beyond_deadband(self._published[key], value, self.deadband.get(key, 0.0))
            ):
                self._published[key] = value
                rows.append({"machine_id": self.machine_id, "parameter_id": parameter_id, "value": value, "ts": ts})
        if rows:
            items.append(("latest", rows))
        return items
