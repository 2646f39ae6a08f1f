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

__all__ = ["Column", "ForeignKey", "Function", "FunctionArg", "SchemaCache", "Table", "load_schema_cache"]


@dataclass(frozen=True)
class Column:
    name: str
    #: the type without its modifier, to cast filter values to (as PostgreSQL resolves an unknown literal
    #: compared with the column): ``character varying``, and ``bpchar`` for ``char(n)`` (a bare
    #: ``character`` would mean ``char(1)`` and truncate the value)
    type_sql: str
    typname: str  # pg_type.typname, as Realtime reports it ("int8", "timestamptz", …)
    #: the declared type with its modifier (``character(2)``, ``numeric(10,2)``), for writes: a value
    #: too long fails 22001 as on an INSERT, instead of being cut to ``char(1)``
    type_full: str = ""

    @property
    def write_type(self) -> str:
        return self.type_full or self.type_sql


@dataclass(frozen=True)
class ForeignKey:
    """``schema.table(columns) → ref_schema.ref_table(ref_columns)``: what resource embedding follows."""

    name: str
    schema: str
    table: str
    columns: tuple[str, ...]
    ref_schema: str
    ref_table: str
    ref_columns: tuple[str, ...]


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
    #: column sets of the primary key and unique constraints/indexes (a unique FK is one-to-one)
    unique_keys: tuple[tuple[str, ...], ...] = ()

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
    foreign_keys: tuple[ForeignKey, ...] = ()


_TABLES_SQL = """
select n.nspname as schema, c.relname as name, c.relreplident = 'f' as replica_full,
       c.relrowsecurity as rls, c.relkind = 'p' as partitioned,
       coalesce((select json_agg(json_build_array(
                                   a.attname,
                                   case t.typname when 'bpchar' then 'bpchar' when '_bpchar' then 'bpchar[]'
                                     else format_type(a.atttypid, null) end,
                                   t.typname,
                                   format_type(a.atttypid, a.atttypmod))
                                 order by a.attnum)
                 from pg_attribute a join pg_type t on t.oid = a.atttypid
                 where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '[]')::text as columns,
       coalesce((select json_agg(array(select a.attname::text
                                       from unnest(i.indkey::int2[]) with ordinality as k(attnum, ord)
                                       join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
                                       order by k.ord))
                 from pg_index i where i.indrelid = c.oid and i.indisunique and i.indpred is null
                   and i.indexprs is null), '[]')::text as uniques,
       coalesce((select array_agg(a.attname::text order by k.ord)
                 from pg_index i
                 cross join lateral unnest(i.indkey::int2[]) with ordinality as k(attnum, ord)
                 join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
                 where i.indrelid = c.oid and i.indisprimary), '{}') as pk
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = any($1::text[]) and c.relkind in ('r', 'v', 'm', 'f', 'p')
"""

_FOREIGN_KEYS_SQL = """
select con.conname as name, ns.nspname as schema, cl.relname as table, fns.nspname as ref_schema,
       fcl.relname as ref_table,
       array(select a.attname::text from unnest(con.conkey) with ordinality as k(attnum, ord)
             join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.attnum order by k.ord) as columns,
       array(select a.attname::text from unnest(con.confkey) with ordinality as k(attnum, ord)
             join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.attnum order by k.ord)
         as ref_columns
from pg_constraint con
join pg_class cl on cl.oid = con.conrelid join pg_namespace ns on ns.oid = cl.relnamespace
join pg_class fcl on fcl.oid = con.confrelid join pg_namespace fns on fns.oid = fcl.relnamespace
where con.contype = 'f' and con.conparentid = 0 and ns.nspname = any($1::text[])
  and fns.nspname = any($1::text[]) and not cl.relispartition
order by con.conname
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
        fk_rows = await conn.fetch(_FOREIGN_KEYS_SQL, list(schemas))
    tables = {
        (r["schema"], r["name"]): Table(
            schema=r["schema"],
            name=r["name"],
            columns=tuple(Column(*c) for c in json.loads(r["columns"])),
            primary_key=tuple(r["pk"]),
            replica_identity_full=r["replica_full"],
            rls_enabled=r["rls"],
            partitioned=r["partitioned"],
            unique_keys=tuple(tuple(u) for u in json.loads(r["uniques"])),
        )
        for r in table_rows
    }
    functions: dict[tuple[str, str], list[Function]] = {}
    for r in function_rows:
        functions.setdefault((r["schema"], r["name"]), []).append(_function_from_row(r))
    foreign_keys = tuple(
        ForeignKey(
            name=r["name"],
            schema=r["schema"],
            table=r["table"],
            columns=tuple(r["columns"]),
            ref_schema=r["ref_schema"],
            ref_table=r["ref_table"],
            ref_columns=tuple(r["ref_columns"]),
        )
        for r in fk_rows
    )
    return SchemaCache(tables, {k: tuple(v) for k, v in functions.items()}, foreign_keys)
