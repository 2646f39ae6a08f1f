"""Turn one REST request (method, names, parsed query, Prefer, body) into a :class:`Plan`: pure.

This is where PostgREST's request semantics live: which columns an insert uses (``columns``,
``missing=default``, PGRST102/PGRST204), the hosted ``safeupdate`` rule, RPC overload resolution
(PGRST202), unknown tables (PGRST205). :mod:`supalocal.api.rest` executes the plan.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from supalocal.api import sql
from supalocal.api.catalog import Function, SchemaCache, Table
from supalocal.api.errors import ApiError, SchemaCacheMiss
from supalocal.api.query import Preferences, Query, parse_query
from supalocal.api.ranges import apply_range_header

__all__ = ["Plan", "plan_rpc", "plan_table"]

Kind = Literal["read", "insert", "update", "delete", "rpc"]
RpcShape = Literal["set", "scalar", "composite", "void"]


@dataclass(frozen=True)
class Plan:
    kind: Kind
    statement: sql.Statement | None  # None: nothing to run (an empty PATCH body)
    read_only: bool
    singular: bool
    count: bool
    representation: bool
    rpc_shape: RpcShape | None = None
    offset: int = 0  # the first row answered (Content-Range)
    csv: bool = False


def _csv_refused() -> ApiError:
    return ApiError(
        406, "PGRST107", "None of these media types are available: text/csv", details="supalocal answers CSV for reads"
    )


def _invalid_body(message: str = "Empty or invalid json") -> ApiError:
    return ApiError(400, "PGRST102", message)


def parse_body(body: bytes) -> Any:
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except ValueError as exc:
        raise _invalid_body() from exc


def find_table(cache: SchemaCache, schema: str, name: str) -> Table:
    table = cache.tables.get((schema, name))
    if table is None:
        names = [n for s, n in cache.tables if s == schema]
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"Perhaps you meant the table '{schema}.{close[0]}'" if close else None
        raise SchemaCacheMiss(
            404, "PGRST205", f"Could not find the table '{schema}.{name}' in the schema cache", hint=hint
        )
    return table


def _check_columns(table: Table, names: Iterable[str]) -> None:
    for name in names:
        if table.column(name) is None:
            raise SchemaCacheMiss(
                400,
                "PGRST204",
                f"Could not find the '{name}' column of '{table.schema}.{table.name}' in the schema cache",
            )


def _insert_groups(
    table: Table, query: Query, rows: list[dict[str, Any]], prefs: Preferences
) -> list[tuple[tuple[str, ...], tuple[int, ...] | None]]:
    if query.columns is not None:
        columns = query.columns
    else:
        columns = tuple(rows[0]) if rows else ()
        first = set(columns)
        if any(set(row) != first for row in rows[1:]):
            raise _invalid_body("All object keys must match")
    _check_columns(table, columns)
    if not prefs.missing_default:
        return [(columns, None)]
    groups: dict[tuple[str, ...], list[int]] = {}
    for ordinal, row in enumerate(rows, start=1):
        groups.setdefault(tuple(c for c in columns if c in row), []).append(ordinal)
    return [(cols, tuple(ordinals)) for cols, ordinals in groups.items()] or [(columns, None)]


def _rows_of(payload: Any) -> list[dict[str, Any]]:
    rows = payload if isinstance(payload, list) else [payload]
    if not all(isinstance(r, dict) for r in rows):
        raise _invalid_body("All object keys must match")
    return rows


def plan_table(
    cache: SchemaCache,
    *,
    schema: str,
    name: str,
    method: str,
    params: Iterable[tuple[str, str]],
    prefs: Preferences,
    body: bytes,
    singular: bool,
    csv: bool = False,
    range_header: str | None = None,
) -> Plan:
    """Plan ``GET|HEAD|POST|PATCH|DELETE /rest/v1/<name>`` (``range_header``: the ``Range`` of a read)."""
    query = parse_query(params)
    table = find_table(cache, schema, name)
    count = prefs.count is not None
    representation = prefs.return_ == "representation"
    if method in ("GET", "HEAD"):
        limit, offset = apply_range_header(range_header, limit=query.limit, offset=query.offset)
        query = dataclasses.replace(query, limit=limit, offset=offset)
        stmt = sql.build_select(cache, table, query, count=count, singular=singular, csv=csv)
        return Plan("read", stmt, True, singular, count, True, offset=offset, csv=csv)
    if csv:
        raise _csv_refused()
    if method == "POST":
        payload = parse_body(body)
        if payload is None:
            raise _invalid_body()
        rows = _rows_of(payload)
        groups = _insert_groups(table, query, rows, prefs)
        body_text = body.decode()
        stmt = sql.build_insert(
            cache,
            table,
            query,
            body=body_text,
            groups=groups,
            resolution=prefs.resolution,
            count=count,
            singular=singular,
        )
        return Plan("insert", stmt, False, singular, count, representation)
    if method in ("PATCH", "DELETE"):
        if not query.filters:
            verb = "UPDATE" if method == "PATCH" else "DELETE"
            raise ApiError(400, "21000", f"{verb} requires a WHERE clause")
        if method == "DELETE":
            stmt = sql.build_delete(cache, table, query, count=count, singular=singular)
            return Plan("delete", stmt, False, singular, count, representation)
        payload = parse_body(body)
        if not isinstance(payload, dict):
            raise _invalid_body()
        columns = query.columns if query.columns is not None else tuple(payload)
        _check_columns(table, columns)
        if not columns:
            return Plan("update", None, False, singular, count, representation)
        stmt = sql.build_update(
            cache, table, query, body=body.decode(), columns=columns, count=count, singular=singular
        )
        return Plan("update", stmt, False, singular, count, representation)
    raise ApiError(405, "PGRST117", f"Unsupported HTTP method: {method}")


def _function_not_found(cache: SchemaCache, schema: str, name: str, keys: list[str]) -> SchemaCacheMiss:
    qualified = f"{schema}.{name}"
    if keys:
        listed = ", ".join(sorted(keys))
        message = f"Could not find the function {qualified}({listed}) in the schema cache"
        details = f"Searched for the function {qualified} with parameters {listed}, but no matches were found"
    else:
        message = f"Could not find the function {qualified} without parameters in the schema cache"
        details = f"Searched for the function {qualified} without parameters, but no matches were found"
    names = [n for s, n in cache.functions if s == schema]
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"Perhaps you meant to call the function {schema}.{close[0]}" if close else None
    return SchemaCacheMiss(404, "PGRST202", message, details=details + " in the schema cache.", hint=hint)


def _resolve_function(candidates: tuple[Function, ...], keys: set[str], *, is_object: bool) -> Function | None:
    for fn in candidates:
        names = {a.name for a in fn.args}
        required = {a.name for a in fn.args if not a.has_default}
        if is_object and all(a.name for a in fn.args) and keys <= names and required <= keys:
            return fn
    return next((fn for fn in candidates if fn.single_json_body), None)


def plan_rpc(
    cache: SchemaCache,
    *,
    schema: str,
    name: str,
    method: str,
    params: list[tuple[str, str]],
    prefs: Preferences,
    body: bytes,
    singular: bool,
    csv: bool = False,
    range_header: str | None = None,
) -> Plan:
    """Plan ``POST /rest/v1/rpc/<name>`` (named args from the body) or ``GET`` (args from the query)."""
    if csv:
        raise _csv_refused()
    candidates = cache.functions.get((schema, name), ())
    arg_names = frozenset(a.name for fn in candidates for a in fn.args if a.name)
    read_only = method in ("GET", "HEAD")
    if read_only:
        query = parse_query(params, rpc_arg_names=arg_names)
        payload: Any = dict(query.rpc_args)
    else:
        query = parse_query(params)
        payload = parse_body(body)
        payload = {} if payload is None else payload
    is_object = isinstance(payload, dict)
    keys = list(payload) if is_object else []
    fn = _resolve_function(candidates, set(keys), is_object=is_object)
    if fn is None:
        raise _function_not_found(cache, schema, name, keys)
    used: tuple[str, ...] = ()
    text_args: tuple[tuple[str, str], ...] = ()
    if fn.single_json_body:
        args_json = json.dumps(payload, ensure_ascii=False)
    elif read_only:
        args_json = ""
        text_args = tuple((a.name, payload[a.name]) for a in fn.args if a.name in payload)
    else:
        args_json = body.decode() if body.strip() else json.dumps(payload)
        used = tuple(a.name for a in fn.args if a.name in payload)
    stmt = sql.build_rpc(
        cache,
        fn,
        query,
        args_json=args_json,
        arg_names=used,
        count=prefs.count is not None,
        singular=singular,
        text_args=text_args,
    )
    shape: RpcShape
    if fn.returns_void:
        shape = "void"
    elif fn.returns_set:
        shape = "set"
    else:
        shape = "scalar" if fn.result_columns is None else "composite"
    return Plan("rpc", stmt, read_only, singular, prefs.count is not None, True, rpc_shape=shape, offset=query.offset)
