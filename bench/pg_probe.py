"""The telemetry bench's database side: bench machines, and when each frame became visible in PostgreSQL.

Visibility is observed with a bench-only AFTER INSERT OR UPDATE row trigger on `parameter_history` (in its
own schema `_bench`, created in the bench's throw-away stack; the migrations are untouched) that
`pg_notify`s the frame's machine, acquisition `ts`, number of values and transaction id. PostgreSQL
delivers a NOTIFY only when the inserting transaction commits, i.e. at the moment the row becomes visible
to other sessions; the listener stamps its arrival with the bench's wall clock (same host clock as the
agent's `ts`). The stamp is therefore an upper bound of the visibility time: it adds the notification's
delivery (< 1 ms on loopback with an idle listener), never subtracts. Polling would add up to one poll
period of error and load the database; `clock_timestamp()` inside the trigger would be a lower bound
(it runs before the commit and its fsync). The transaction id groups frames into shipper batches.

The trigger costs one `pg_notify` per frame row (10 per second at 10 Hz), negligible next to the upsert.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
import uuid
from dataclasses import dataclass

import asyncpg

from agent.plc.registers import MAP_COLUMNS

__all__ = ["CHANNEL", "FrameWatch", "Visible", "count_rows", "install_frame_trigger", "seed_bench_machine"]

CHANNEL = "bench_frames"

_TRIGGER_SQL = f"""
create schema if not exists _bench;
create or replace function _bench.notify_frame() returns trigger
  language plpgsql
  security definer
  set search_path = ''
  as $$
  begin
    perform pg_notify('{CHANNEL}', concat_ws(' ', new.machine_id, extract(epoch from new.ts),
      (select count(*) from jsonb_object_keys(new."values")), txid_current()));
    return null;
  end;
  $$;
drop trigger if exists bench_frame_visible on public.parameter_history;
create trigger bench_frame_visible after insert or update on public.parameter_history
  for each row execute function _bench.notify_frame();
"""

_PARAMETER_COLUMNS = ("machine_id", *MAP_COLUMNS)


@dataclass(frozen=True, slots=True)
class Visible:
    """One frame: acquisition time `ts` (agent clock) and arrival of its commit notification (bench clock)."""

    ts: float
    visible_at: float
    values: int
    txid: int

    @property
    def latency_s(self) -> float:
        return self.visible_at - self.ts


async def install_frame_trigger(conn: asyncpg.Connection) -> None:
    await conn.execute(_TRIGGER_SQL)


def _opt_float(text: str) -> float | None:
    return float(text) if text != "" else None


async def seed_bench_machine(conn: asyncpg.Connection, map_csv: str, *, label: str) -> str:
    """A new machine with one `parameters` row per CSV line (the agent loads its map from there); its id."""
    machine_id = str(uuid.uuid4())
    await conn.execute(
        "insert into public.machines (id, name, serial_number, status) values ($1, $2, $3, 'offline')",
        uuid.UUID(machine_id),
        f"bench {label}",
        f"BENCH-{machine_id[:8]}",
    )
    rows = [
        (
            uuid.UUID(machine_id),
            r["key"],
            r["component"],
            r["name"],
            r["unit"] or None,
            r["data_type"],
            r["register"],
            int(r["address"]),
            int(r["write_address"]) if r["write_address"] else None,
            float(r["scale"]),
            float(r["offset"]),
            _opt_float(r["min_value"]),
            _opt_float(r["max_value"]),
            r["writable"] == "true",
            r["logged"] == "true",
            float(r["deadband"]),
        )
        for r in csv.DictReader(io.StringIO(map_csv))
    ]
    await conn.copy_records_to_table("parameters", schema_name="public", records=rows, columns=_PARAMETER_COLUMNS)
    return machine_id


async def count_rows(conn: asyncpg.Connection, machine_id: str, *, until_ts: float) -> int:
    """`parameter_history` rows of `machine_id` acquired at or before `until_ts` (epoch seconds)."""
    return int(
        await conn.fetchval(
            "select count(*) from public.parameter_history where machine_id = $1 and ts <= to_timestamp($2)",
            uuid.UUID(machine_id),
            until_ts,
        )
    )


class FrameWatch:
    """LISTENs on a dedicated connection; keeps the first visibility of every frame, per machine, in order.

    A replayed upsert of a frame already there (the spool's at-least-once shipping) fires the trigger again;
    only the first arrival counts, and `duplicates` counts the rest.
    """

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.frames: dict[str, list[Visible]] = {}
        self.duplicates = 0
        self._seen: set[tuple[str, float]] = set()
        self._conn: asyncpg.Connection | None = None
        self._arrived = asyncio.Event()

    async def __aenter__(self) -> FrameWatch:
        self._conn = await asyncpg.connect(self.dsn)
        await self._conn.add_listener(CHANNEL, self._on_notify)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._conn is not None:
            await self._conn.close(timeout=5)
            self._conn = None

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        arrived = time.time()  # first thing: the stamp must not include our own bookkeeping
        machine, epoch, values, txid = payload.split(" ")
        ts = float(epoch)
        if (machine, ts) in self._seen:
            self.duplicates += 1
            return
        self._seen.add((machine, ts))
        self.frames.setdefault(machine, []).append(Visible(ts, arrived, int(values), int(txid)))
        self._arrived.set()

    def of(self, machine_id: str) -> list[Visible]:
        return self.frames.get(machine_id, [])

    async def wait_for(self, machine_id: str, *, ts_after: float, timeout_s: float) -> Visible:
        """The first visible frame of `machine_id` acquired after `ts_after`; TimeoutError after `timeout_s`.

        Frames ship FIFO, so once one acquired after `ts_after` is visible, every earlier one is too.
        """
        async with asyncio.timeout(timeout_s):
            while True:
                later = [f for f in self.of(machine_id) if f.ts > ts_after]
                if later:
                    return min(later, key=lambda f: f.ts)
                self._arrived.clear()
                await self._arrived.wait()
