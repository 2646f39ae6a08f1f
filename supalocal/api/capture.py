"""Change capture for tables in publication ``supabase_realtime``, in commit order, committed rows only.

Why triggers and NOTIFY (docs/LOCAL_STACK.md §4): no extra packages, no replication
slot to babysit. We install, in our own schema ``_supalocal`` (never in the migrations):

- ``_supalocal.changes``: one row per row change (op, ``to_json(NEW)``, old row trimmed to the primary
  key unless ``REPLICA IDENTITY FULL``, ``clock_timestamp()``);
- ``_supalocal.capture()``: an AFTER INSERT/UPDATE/DELETE FOR EACH ROW trigger (SECURITY DEFINER, so
  writers need no rights on ``_supalocal``) that writes that row and ``pg_notify``s its id.

NOTIFY is delivered only on commit and in commit order, so the listener sees exactly the committed
changes in order; the payload is just the id (NOTIFY payloads must stay < 8000 bytes). Triggers are
re-synchronised with ``pg_publication_tables`` on start, on each subscribe and every
:data:`RESYNC_INTERVAL_S`; processed rows are pruned after :data:`RETENTION` so several stacks may
share one database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg

from supalocal.api.catalog import Table, load_schema_cache
from supalocal.api.sql import quote_ident

__all__ = ["CHANNEL", "PUBLICATION", "SCHEMA", "Change", "ChangeCapture"]

log = logging.getLogger(__name__)

SCHEMA = "_supalocal"
CHANNEL = "_supalocal_changes"
PUBLICATION = "supabase_realtime"
TRIGGER = "_supalocal_capture"
RESYNC_INTERVAL_S = 2.0
RETENTION = "5 minutes"

_INSTALL_SQL = f"""
create schema if not exists {SCHEMA};
revoke all on schema {SCHEMA} from public;
create table if not exists {SCHEMA}.changes (
    id bigserial primary key,
    schema_name text not null,
    table_name text not null,
    op text not null,
    record json,
    old_record json,
    captured_at timestamptz not null default clock_timestamp()
);
create or replace function {SCHEMA}.capture() returns trigger
language plpgsql security definer set search_path = pg_catalog as $$
declare
    change_id bigint;
    old_row json;
begin
    if TG_OP <> 'INSERT' then
        old_row := to_json(OLD);
        if (select c.relreplident <> 'f' from pg_class c where c.oid = TG_RELID) then
            select coalesce(json_object_agg(k, old_row -> k), '{{}}') into old_row from unnest(TG_ARGV) as k;
        end if;
    end if;
    insert into {SCHEMA}.changes (schema_name, table_name, op, record, old_record)
    values (TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP, case when TG_OP <> 'DELETE' then to_json(NEW) end, old_row)
    returning id into change_id;
    perform pg_notify('{CHANNEL}', change_id::text);
    return null;
end $$;
"""

# What the triggers must look like: published tables with their primary keys, and what they look like now.
_STATE_SQL = f"""
select n.nspname as schema, c.relname as name,
       coalesce((select array_agg(a.attname::text order by k.ord)
                 from pg_index i cross join lateral unnest(i.indkey::int2[]) with ordinality as k(attnum, ord)
                 join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
                 where i.indrelid = c.oid and i.indisprimary), '{{}}') as pk,
       (select encode(t.tgargs, 'escape') from pg_trigger t
         where t.tgrelid = c.oid and t.tgname = '{TRIGGER}') as installed,
       exists (select 1 from pg_publication_tables p
                where p.pubname = '{PUBLICATION}' and p.schemaname = n.nspname and p.tablename = c.relname)
         as published
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p')
  and (exists (select 1 from pg_trigger t where t.tgrelid = c.oid and t.tgname = '{TRIGGER}')
       or exists (select 1 from pg_publication_tables p
                   where p.pubname = '{PUBLICATION}' and p.schemaname = n.nspname and p.tablename = c.relname))
"""

_FETCH_SQL = f"""
select id, schema_name, table_name, op, record::text as record, old_record::text as old_record,
       to_char(captured_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as commit_timestamp
from {SCHEMA}.changes where id = any($1::int8[])
"""


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _json_loads(text: str | None) -> dict[str, Any] | None:
    return None if text is None else json.loads(text, parse_float=Decimal, parse_int=Decimal)


@dataclass
class Change:
    """One committed row change; ``record``/``old_record`` keep PostgreSQL's JSON text verbatim."""

    id: int
    schema: str
    table: str
    type: str  # INSERT | UPDATE | DELETE
    record: str | None
    old_record: str | None
    commit_timestamp: str
    _parsed: dict[str, dict[str, Any] | None] = field(default_factory=dict, repr=False)

    def row(self, which: str) -> dict[str, Any] | None:
        """``record`` or ``old_record`` parsed once (numbers as Decimal) for filter matching."""
        if which not in self._parsed:
            self._parsed[which] = _json_loads(self.record if which == "record" else self.old_record)
        return self._parsed[which]


OnChange = Callable[[Change], Awaitable[None]]


class ChangeCapture:
    """Owns the LISTEN connection, the trigger set and the published tables' metadata."""

    def __init__(self, *, dsn: str, server_settings: dict[str, str]) -> None:
        self._dsn = dsn
        self._settings = server_settings
        self._conn: asyncpg.Connection | None = None
        self._on_change: OnChange | None = None
        self._pending: list[int] = []
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()  # one connection: queries never overlap
        self._signature: object = None
        self.tables: dict[tuple[str, str], Table] = {}

    async def start(self, *, on_change: OnChange) -> None:
        self._on_change = on_change
        self._conn = await asyncpg.connect(self._dsn, server_settings=self._settings)
        await self._conn.execute(_INSTALL_SQL)
        await self._conn.add_listener(CHANNEL, self._notified)
        await self.sync()
        self._tasks = [
            asyncio.create_task(self._drain_loop(), name="supalocal-capture-drain"),
            asyncio.create_task(self._resync_loop(), name="supalocal-capture-resync"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        self._pending.append(int(str(payload)))  # asyncpg hands NOTIFY payloads over as str
        self._wakeup.set()

    async def sync(self) -> None:
        """Install/drop triggers so exactly the published tables have one; refresh table metadata."""
        assert self._conn is not None
        async with self._lock:
            if await self._conn.fetchval("select to_regproc($1)", f"{SCHEMA}.capture") is None:
                await self._conn.execute(_INSTALL_SQL)  # e.g. after a database reset
            rows = await self._conn.fetch(_STATE_SQL)
            for r in rows:
                target = qualified = f"{quote_ident(r['schema'])}.{quote_ident(r['name'])}"
                wanted = "".join(k + "\\000" for k in r["pk"])
                if r["installed"] is not None and (not r["published"] or r["installed"] != wanted):
                    await self._conn.execute(f"drop trigger if exists {TRIGGER} on {qualified}")
                if r["published"] and r["installed"] != wanted:
                    args = ", ".join(_literal(k) for k in r["pk"])
                    await self._conn.execute(
                        f"create trigger {TRIGGER} after insert or update or delete on {target} "
                        f"for each row execute function {SCHEMA}.capture({args})"
                    )
            signature = sorted((r["schema"], r["name"], tuple(r["pk"])) for r in rows if r["published"])
            if signature != self._signature or not self.tables:
                schemas = tuple({s for s, _, _ in signature}) or ("public",)
                cache = await load_schema_cache(self._conn, schemas=schemas)
                published = {(s, n) for s, n, _ in signature}
                self.tables = {k: t for k, t in cache.tables.items() if k in published}
                self._signature = signature

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(RESYNC_INTERVAL_S)
            try:
                await self.sync()
                assert self._conn is not None
                async with self._lock:
                    await self._conn.execute(
                        f"delete from {SCHEMA}.changes where captured_at < now() - interval '{RETENTION}'"
                    )
            except (asyncpg.PostgresError, OSError) as exc:
                log.warning("supalocal capture resync failed: %s", exc)

    async def _drain_loop(self) -> None:
        assert self._conn is not None and self._on_change is not None
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            ids, self._pending = self._pending, []
            if not ids:
                continue
            try:
                async with self._lock:
                    rows = {r["id"]: r for r in await self._conn.fetch(_FETCH_SQL, ids)}
            except (asyncpg.PostgresError, OSError) as exc:
                log.warning("supalocal capture could not read %d changes: %s", len(ids), exc)
                continue
            for change_id in ids:  # notification order == commit order
                r = rows.get(change_id)
                if r is None:
                    continue
                change = Change(
                    r["id"],
                    r["schema_name"],
                    r["table_name"],
                    r["op"],
                    r["record"],
                    r["old_record"],
                    r["commit_timestamp"],
                )
                try:
                    await self._on_change(change)
                except Exception:  # one bad subscriber must not stop capture for everyone
                    log.exception("supalocal realtime dispatch failed for change %s", change_id)
