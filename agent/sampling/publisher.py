"""Frames → spool records: one `parameter_history` row per frame, `parameter_latest` rows on change.

The sampler hands frames over without waiting (`submit` turns a frame into records and queues them on the
`SpoolWriter`), so a slow disk never delays a tick. `parameter_latest` gets a value only when it
moved beyond the parameter's deadband since the last published value (a bool or null on any change), plus a
full refresh every `refresh_s`, so the live view stays correct without 500 upserts per second.

A history record carries the frame's read duration as `read_ms` (docs/CONTRACT.md `parameter_history`): the
wall time of the whole read whose midpoint is `ts`, so every value in the row was acquired within
`ts ± read_ms/2`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from agent.plc import RegisterMap, Value
from agent.sampling.sampler import Frame
from agent.spool import SpoolWriter

__all__ = ["READ_MS_DECIMALS", "TelemetryPublisher", "changed_beyond_deadband", "round_read_ms"]

#: `read_ms` is kept to 0.01 ms (10 µs): finer than a Modbus round trip can be timed on a general-purpose host,
#: and short in the JSON of every spooled frame.
READ_MS_DECIMALS = 2


def changed_beyond_deadband(old: Value | None, new: Value | None, deadband: float) -> bool:
    """Whether `new` should be published given the last published `old`. Pure."""
    if old is None or new is None or isinstance(old, bool) or isinstance(new, bool):
        return old != new or type(old) is not type(new)
    return abs(float(new) - float(old)) > deadband


def round_read_ms(read_s: float) -> float | None:
    """A read's duration in seconds → the history row's `read_ms`, rounded to `READ_MS_DECIMALS`. Pure.

    None (not recorded) for a negative or non-finite duration, which the column's check would refuse: a
    diagnostic field must never cost the frame its row (the spool would quarantine the whole record).
    """
    if not math.isfinite(read_s) or read_s < 0:
        return None
    return round(read_s * 1000.0, READ_MS_DECIMALS)


class TelemetryPublisher:
    """The sampler's sink. `set_map` swaps the map and parameter ids when `parameters` changes."""

    def __init__(
        self,
        writer: SpoolWriter,
        *,
        machine_id: str,
        register_map: RegisterMap,
        parameter_ids: Mapping[str, str],
        refresh_s: float,
    ) -> None:
        self.writer, self.machine_id, self.refresh_s = writer, machine_id, refresh_s
        self.set_map(register_map, parameter_ids)
        self._published: dict[str, Value | None] = {}
        self._last_refresh = float("-inf")

    def set_map(self, register_map: RegisterMap, parameter_ids: Mapping[str, str]) -> None:
        self.logged = [p.key for p in register_map if p.logged]
        self.deadband = {p.key: p.deadband for p in register_map}
        self.parameter_ids = dict(parameter_ids)
        # (key, parameter id, deadband) of every key with a `parameters` row: resolved once per map, not per frame
        self._latest_keys = [
            (p.key, self.parameter_ids[p.key], p.deadband) for p in register_map if p.key in self.parameter_ids
        ]
        self._last_refresh = float("-inf")  # a new map: publish every value once

    def submit(self, frame: Frame) -> None:
        """The sampler's sink: queue the frame's records (never blocks)."""
        for kind, payload in self.records(frame):
            self.writer.submit(kind, payload)

    def records(self, frame: Frame) -> list[tuple[str, Any]]:
        ts = frame.ts.isoformat()
        frame_values = frame.values
        values = {k: frame_values[k] for k in self.logged if k in frame_values}
        items: list[tuple[str, Any]] = [
            (
                "history",
                {
                    "machine_id": self.machine_id,
                    "ts": ts,
                    "run_id": frame.run_id,
                    "values": values,
                    "read_ms": round_read_ms(frame.read_s),
                },
            )
        ]
        now = time.monotonic()
        refresh = now - self._last_refresh >= self.refresh_s
        if refresh:
            self._last_refresh = now
        published = self._published
        rows = []
        for key, parameter_id, deadband in self._latest_keys:
            if key not in frame_values:
                continue
            value = frame_values[key]
            if not refresh and key in published:
                old = published[key]
                # the common case at 10 Hz: nothing moved (same value, same type) — no deadband arithmetic
                if (old == value and type(old) is type(value)) or not changed_beyond_deadband(old, value, deadband):
                    continue
            published[key] = value
            rows.append({"machine_id": self.machine_id, "parameter_id": parameter_id, "value": value, "ts": ts})
        if rows:
            items.append(("latest", rows))
        return items
