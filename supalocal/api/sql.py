"""Render a parsed :class:`~supalocal.api.query.Query` into one SQL statement: a pure module.

Identifiers come only from the schema cache and are double-quoted; every value is a bind parameter
cast through ``text`` to the catalog type (``($1::text)::<type>``), so PostgreSQL parses values the
way PostgREST's ``unknown``-typed parameters are parsed. Every statement answers one row
``(total, n, body[, inserted])`` with ``body`` built by ``json_agg`` so JSON formatting (timestamps,
numerics, nested jsonb) is PostgreSQL's own, byte-for-byte what PostgREST returns.

Example::

    GET /rest/v1/t?select=id&v=gt.1&order=id.desc&limit=2
    → select null::int8 as total, count(_t) as n, coalesce(json_agg(_t), '[]')::text as body
      from (select _s."id" from "public"."t" as _s where _s."v" > ($1::text)::integer
            order by _s."id" desc limit $2) as _t
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from supalocal.api.catalog import Function, SchemaCache, Table
from supalocal.api.embed import SelectRenderer
from supalocal.api.errors import SchemaCacheMiss
from supalocal.api.expr import (
    ALIAS,
    Params,
    Relation,
    qualified,
    quote_ident,
    render_condition,
    render_order,
    render_page,
    render_where,
)
from supalocal.api.query import Filter, LogicTree, Query

__all__ = [
    "MAX_ROWS",
    "Params",
    "Statement",
    "build_delete",
    "build_insert",
    "build_rpc",
    "build_select",
    "build_update",
    "quote_ident",
]

MAX_ROWS = 1000  # PGRST_DB_MAX_ROWS in the Supabase CLI
INSERTED_FLAG = "_pgrst_inserted"


@dataclass(frozen=True)
class Statement:
    sql: str
    args: tuple[Any, ...]


def _missing_column(relation: str, name: str) -> SchemaCacheMiss:
    return SchemaCacheMiss(400, "42703", f"column {relation}.{name} does not exist")


def _conditions(filters: Sequence[Filter | LogicTree], rel: Relation, params: Params) -> list[str]:
    return [render_condition(f, rel, params) for f in filters]


def _page(query: Query, params: Params, *, max_rows: int | None) -> str:
    return render_page(query.limit, query.offset, params, max_rows=max_rows)


# PostgREST's CSV: the first row's keys, then each row's composite text without its parentheses
_CSV = (
    ", (SELECT coalesce(string_agg(_k, ','), '') FROM json_object_keys(json_agg(_t) -> 0) AS _k) || E'\\n' || "
    "coalesce(string_agg(substring(_t::text, 2, length(_t::text) - 2), E'\\n'), '') AS csv"
)


def _envelope(inner: str, *, total_sql: str, singular: bool, extra: str = "") -> str:
    first = ", (json_agg(_t) -> 0)::text AS first" if singular else ", NULL::text AS first"
    return (
        f"SELECT {total_sql} AS total, count(_t)::int8 AS n, "
        f"coalesce(json_agg(_t), '[]')::text AS body{first}{extra} FROM ({inner}) AS _t"
    )


def _table_relation(table: Table) -> Relation:
    return Relation(f"{table.schema}.{table.name}", table.columns)


def build_select(
    cache: SchemaCache, table: Table, query: Query, *, count: bool, singular: bool, csv: bool = False
) -> Statement:
    rel = _table_relation(table)
    params = Params()
    renderer = SelectRenderer(cache, query, params, MAX_ROWS)
    columns, inner_joins = renderer.columns(query.select, rel, table)
    renderer.check_scopes()
    where = render_where([*_conditions(query.filters, rel, params), *inner_joins])
    source = f"{qualified(table)} AS {ALIAS}"
    total = f"(SELECT count(*) FROM {source}{where})" if count else "NULL::int8"
    inner = (
        f"SELECT {columns} FROM {source}{where}"
        f"{render_order(query.order, rel, params)}{_page(query, params, max_rows=MAX_ROWS)}"
    )
    envelope = _envelope(inner, total_sql=total, singular=singular, extra=_CSV if csv else "")
    return Statement(envelope, tuple(params.values))


def _returning_envelope(
    cache: SchemaCache,
    table: Table,
    query: Query,
    ctes: str,
    params: Params,
    *,
    count: bool,
    singular: bool,
    extra: str = "",
) -> str:
    rel = _table_relation(table)
    renderer = SelectRenderer(cache, query, params, MAX_ROWS)
    columns, inner_joins = renderer.columns(query.select, rel, table)
    renderer.check_scopes()
    total = "(SELECT count(*) FROM _w)" if count else "NULL::int8"
    inner = f"SELECT {columns} FROM _w AS {ALIAS}{render_where(inner_joins)}"
    return f"WITH {ctes} " + _envelope(inner, total_sql=total, singular=singular, extra=extra)


def build_insert(
    cache: SchemaCache,
    table: Table,
    query: Query,
    *,
    body: str,
    groups: Sequence[tuple[tuple[str, ...], tuple[int, ...] | None]],
    resolution: str | None,
    count: bool,
    singular: bool,
) -> Statement:
    """``INSERT … SELECT`` from the JSON body, one data-modifying CTE per column group.

    ``groups`` is ``[(columns, row ordinals or None for all rows)]``: one group normally, several with
    ``Prefer: missing=default`` so each row omits exactly its missing columns (and gets their DEFAULT).
    """
    params = Params()
    body_ref = params.add(body)
    conflict_cols = query.on_conflict or table.primary_key
    ctes: list[str] = [
        "_b AS (SELECT _e.j, _e.ord FROM json_array_elements(CASE WHEN json_typeof("
        f"{body_ref}::json) = 'array' THEN {body_ref}::json ELSE json_build_array({body_ref}::json) END)"
        " WITH ORDINALITY AS _e(j, ord))"
    ]
    for index, (columns, ordinals) in enumerate(groups):
        typed = [table.column(c) for c in columns]
        if any(c is None for c in typed):
            raise AssertionError("insert columns must be validated against the catalog first")
        names = ", ".join(quote_ident(c) for c in columns)
        record = ", ".join(f"{quote_ident(c.name)} {c.write_type}" for c in typed if c)
        source = "_b"
        if columns:
            source += f" CROSS JOIN LATERAL json_to_record(_b.j) AS _r({record})"
        where = f" WHERE _b.ord = ANY({params.add(list(ordinals))}::int8[])" if ordinals is not None else ""
        select = ", ".join(f"_r.{quote_ident(c)}" for c in columns)
        target = f"{qualified(table)} AS {ALIAS}" + (f" ({names})" if columns else "")
        conflict = ""
        if resolution and conflict_cols:
            for c in conflict_cols:
                if table.column(c) is None:
                    raise _missing_column(f"{table.schema}.{table.name}", c)
            keys = ", ".join(quote_ident(c) for c in conflict_cols)
            sets = ", ".join(f"{quote_ident(c)} = EXCLUDED.{quote_ident(c)}" for c in columns)
            action = "DO UPDATE SET " + sets if resolution == "merge-duplicates" and sets else "DO NOTHING"
            conflict = f" ON CONFLICT ({keys}) {action}"
        # xmax = 0 marks a row this statement inserted (not updated); partitions reject system columns
        # in RETURNING, so there every row counts as inserted (the status is then 201, as for an insert).
        inserted = "true" if table.partitioned else f"({ALIAS}.xmax = 0)"
        ctes.append(
            f"_w{index} AS (INSERT INTO {target} SELECT {select} FROM {source}{where} ORDER BY _b.ord"
            f"{conflict} RETURNING {ALIAS}.*, {inserted} AS {INSERTED_FLAG})"
        )
    union = " UNION ALL ".join(f"SELECT * FROM _w{i}" for i in range(len(groups)))
    ctes.append(f"_w AS ({union})")
    extra = f", (SELECT count(*) FROM _w WHERE {INSERTED_FLAG})::int8 AS inserted"
    sql = _returning_envelope(cache, table, query, ", ".join(ctes), params, count=count, singular=singular, extra=extra)
    return Statement(sql, tuple(params.values))


def build_update(
    cache: SchemaCache,
    table: Table,
    query: Query,
    *,
    body: str,
    columns: Sequence[str],
    count: bool,
    singular: bool,
) -> Statement:
    params = Params()
    body_ref = params.add(body)
    rel = _table_relation(table)
    record = ", ".join(f"{quote_ident(c)} {rel.get(c).write_type}" for c in columns)
    sets = ", ".join(f"{quote_ident(c)} = _r.{quote_ident(c)}" for c in columns)
    where = render_where(_conditions(query.filters, rel, params))
    cte = (
        f"_w AS (UPDATE {qualified(table)} AS {ALIAS} SET {sets} "
        f"FROM json_to_record({body_ref}::json) AS _r({record}){where} RETURNING {ALIAS}.*)"
    )
    sql = _returning_envelope(cache, table, query, cte, params, count=count, singular=singular)
    return Statement(sql, tuple(params.values))


def build_delete(cache: SchemaCache, table: Table, query: Query, *, count: bool, singular: bool) -> Statement:
    params = Params()
    rel = _table_relation(table)
    where = render_where(_conditions(query.filters, rel, params))
    cte = f"_w AS (DELETE FROM {qualified(table)} AS {ALIAS}{where} RETURNING {ALIAS}.*)"
    sql = _returning_envelope(cache, table, query, cte, params, count=count, singular=singular)
    return Statement(sql, tuple(params.values))


def build_rpc(
    cache: SchemaCache,
    function: Function,
    query: Query,
    *,
    args_json: str,
    arg_names: Sequence[str],
    count: bool,
    singular: bool,
    text_args: Sequence[tuple[str, str]] = (),
) -> Statement:
    """Call ``function`` with named arguments bound from a JSON object (or the whole body), or, for
    ``GET /rpc/fn?a=…`` (``text_args``), from query-string text that PostgreSQL parses as each argument's
    type (as PostgREST's unknown-typed literals: ``?payload={"a":1}`` is a jsonb object, not a string).

    Answers ``body``: a JSON array for set-returning functions (filters, order, limit applied), the bare
    JSON value for scalars, an object for composites, and ``''`` for void.
    """
    params = Params()
    body_ref = params.add(args_json) if function.single_json_body or arg_names else ""
    if function.single_json_body:
        call = f"{qualified(function)}({body_ref}::{function.args[0].type_sql})"
        source = ""
    elif text_args:
        by_name = {a.name: a for a in function.args}
        named = ", ".join(f"{quote_ident(n)} := ({params.add(v)}::text)::{by_name[n].type_sql}" for n, v in text_args)
        call = f"{qualified(function)}({named})"
        source = ""
    else:
        by_name = {a.name: a for a in function.args}
        record = ", ".join(f"{quote_ident(n)} {by_name[n].type_sql}" for n in arg_names)
        named = ", ".join(f"{quote_ident(n)} := _a.{quote_ident(n)}" for n in arg_names)
        call = f"{qualified(function)}({named})"
        source = f" FROM json_to_record({body_ref}::json) AS _a({record})" if arg_names else ""
    if function.returns_void:
        return Statement(f"SELECT ({call})::text AS body{source}", tuple(params.values))
    if not function.returns_set and function.result_columns is None:
        return Statement(f"SELECT coalesce(to_json({call}), 'null')::text AS body{source}", tuple(params.values))
    if not function.returns_set:
        lateral = f"{source} CROSS JOIN LATERAL" if source else " FROM"
        sql = f"SELECT row_to_json({ALIAS})::text AS body{lateral} {call} AS {ALIAS}"
        return Statement(sql, tuple(params.values))
    lateral = f"{source} CROSS JOIN LATERAL" if source else " FROM"
    if function.result_columns is None:
        inner_from = f"{lateral} {call} AS {ALIAS}(_v)"
        rel = Relation(f"{function.schema}.{function.name}", ())
        inner = (
            f"SELECT {ALIAS}._v{inner_from}{render_order(query.order, rel, params)}"
            f"{_page(query, params, max_rows=MAX_ROWS)}"
        )
        sql = (
            "SELECT NULL::int8 AS total, count(_t)::int8 AS n, coalesce(json_agg(_t._v), '[]')::text AS body, "
            f"NULL::text AS first FROM ({inner}) AS _t"
        )
        return Statement(sql, tuple(params.values))
    rel = Relation(f"{function.schema}.{function.name}", function.result_columns)
    renderer = SelectRenderer(cache, query, params, MAX_ROWS)
    columns, _ = renderer.columns(query.select, rel, cache.tables.get(_result_table(function)))
    renderer.check_scopes()
    where = render_where(_conditions(query.filters, rel, params))
    base = f"{lateral} {call} AS {ALIAS}"
    total = f"(SELECT count(*){base}{where})" if count else "NULL::int8"
    inner = (
        f"SELECT {columns}{base}{where}"
        f"{render_order(query.order, rel, params)}{_page(query, params, max_rows=MAX_ROWS)}"
    )
    return Statement(_envelope(inner, total_sql=total, singular=singular), tuple(params.values))


def _result_table(function: Function) -> tuple[str, str]:
    """The table a ``setof <table>`` function returns (embedding from its rows follows that table's keys)."""
    schema, _, name = function.return_type_sql.rpartition(".")
    return schema.strip('"') or "public", name.strip('"')
