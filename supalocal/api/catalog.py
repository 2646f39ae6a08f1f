"""The schema cache: tables, columns, keys and functions of the exposed schemas, read from pg_catalog.

Every identifier that reaches SQL is looked up here first (unknown names become PostgREST's
PGRST202/204/205 errors), and every type name comes from ``format_type`` evaluated with
``search_path=pg_catalog`` so it is fully qualified and quoted by PostgreSQL itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import asyncpg

__all__ = ["Column", "Function", "FunctionArg", "SchemaCache", "Table", "load_schema_cache"]


@dataclass(frozen=True)
class Column:
    name: str
    type_sql: str  # format_type(atttypid, NULL): a qualified, quoted type expression
    typname: str  # pg_type.typname, as Realtime reports it ("int8", "timestamptz", …)


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    replica_identity_full: bool
    rls_enabled: bool
    #: a partitioned table: its rows have no usable xmax, so inserted-vs-updated cannot be told apart
    partitioned: bool = False

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


@dataclass(frozen=True)
class FunctionArg:
    name: str
    type_sql: str
    has_default: bool


@dataclass(frozen=True)
class Function:
    schema: str
    name: str
    args: tuple[FunctionArg, ...]
    returns_set: bool
    returns_void: bool
    result_columns: tuple[Column, ...] | None  # None: a scalar result
    return_type_sql: str
    volatile: bool

    @property
    def single_json_body(self) -> bool:
        """One unnamed json/jsonb parameter: PostgREST passes the whole body to it."""
        return len(self.args) == 1 and not self.args[0].name and self.args[0].type_sql in ("json", "jsonb")


@dataclass(frozen=True)
class SchemaCache:
    tables: dict[tuple[str, str], Table]
    functions: dict[tuple[str, str], tuple[Function, ...]]


_TABLES_SQL = """
select n.nspname as schema, c.relname as name, c.relreplident = 'f' as replica_full,
       c.relrowsecurity as rls, c.relkind = 'p' as partitioned,
       coalesce((select json_agg(json_build_array(a.attname, format_type(a.atttypid, null), t.typname)
                                 order by a.attnum)
                 from pg_attribute a join pg_type t on t.oid = a.atttypid
                 where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '[]')::text as columns,
       coalesce((select array_agg(a.attname::text order by k.ord)
                 from pg_index i
                 cross join lateral unnest(i.indkey::int2[]) with ordinality as k(attnum, ord)
                 join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
                 where i.indrelid = c.oid and i.indisprimary), '{}') as pk
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = any($1::text[]) and c.relkind in ('r', 'v', 'm', 'f', 'p')
"""

_FUNCTIONS_SQL = """
select n.nspname as schema, p.proname as name, p.proretset as retset, p.provolatile = 'v' as volatile,
       p.prorettype = 'void'::regtype as is_void, format_type(p.prorettype, null) as rettype,
       t.typrelid as ret_relid, p.pronargs as nargs, p.pronargdefaults as ndefaults,
       coalesce(p.proargnames, '{}') as argnames, coalesce(p.proargmodes::text[], '{}') as argmodes,
       array(select format_type(x.oid, null)
             from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) with ordinality as x(oid, ord)
             order by x.ord) as argtypes,
       coalesce((select json_agg(json_build_array(a.attname, format_type(a.atttypid, null), at.typname)
                                 order by a.attnum)
                 from pg_attribute a join pg_type at on at.oid = a.atttypid
                 where a.attrelid = t.typrelid and a.attnum > 0 and not a.attisdropped), '[]')::text
         as ret_columns
from pg_proc p join pg_namespace n on n.oid = p.pronamespace join pg_type t on t.oid = p.prorettype
where n.nspname = any($1::text[]) and p.prokind = 'f'
"""

_INPUT_MODES = frozenset({"i", "b", "v"})
_OUTPUT_MODES = frozenset({"o", "b", "t"})


def _function_from_row(row: Any) -> Function:
    names: list[str] = list(row["argnames"])
    types: list[str] = list(row["argtypes"])
    modes: list[str] = list(row["argmodes"]) or ["i"] * len(types)
    names += [""] * (len(types) - len(names))
    inputs = [(n, t) for n, t, m in zip(names, types, modes, strict=True) if m in _INPUT_MODES]
    first_default = len(inputs) - row["ndefaults"]
    args = tuple(FunctionArg(n, t, i >= first_default) for i, (n, t) in enumerate(inputs))
    outputs = [(n, t) for n, t, m in zip(names, types, modes, strict=True) if m in _OUTPUT_MODES]
    result_columns: tuple[Column, ...] | None = None
    if outputs:
        result_columns = tuple(Column(n, t, t) for n, t in outputs)
    elif row["ret_relid"]:
        result_columns = tuple(Column(*c) for c in json.loads(row["ret_columns"]))
    return Function(
        schema=row["schema"],
        name=row["name"],
        args=args,
        returns_set=row["retset"],
        returns_void=row["is_void"],
        result_columns=result_columns,
        return_type_sql=row["rettype"],
        volatile=row["volatile"],
    )


async def load_schema_cache(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy, *, schemas: tuple[str, ...]
) -> SchemaCache:
    """Read tables and functions of ``schemas``; type names are qualified (search_path=pg_catalog)."""
    async with conn.transaction(readonly=True):
        await conn.execute("set local search_path = pg_catalog")
        table_rows = await conn.fetch(_TABLES_SQL, list(schemas))
        function_rows = await conn.fetch(_FUNCTIONS_SQL, list(schemas))
    tables = {
        (r["schema"], r["name"]): Table(
            schema=r["schema"],
            name=r["name"],
            columns=tuple(Column(*c) for c in json.loads(r["columns"])),
            primary_key=tuple(r["pk"]),
            replica_identity_full=r["replica_full"],
            rls_enabled=r["rls"],
            partitioned=r["partitioned"],
        )
        for r in table_rows
    }
    functions: dict[tuple[str, str], list[Function]] = {}
    for r in function_rows:
        functions.setdefault((r["schema"], r["name"]), []).append(_function_from_row(r))
    return SchemaCache(tables, {k: tuple(v) for k, v in functions.items()})
