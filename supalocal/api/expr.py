"""SQL expressions of one relation: column references with JSON paths, filters, order, page (pure).

Identifiers come only from the schema cache and are double-quoted; values are bind parameters cast
through ``text`` to the catalog type, as PostgreSQL resolves PostgREST's ``unknown``-typed literals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from supalocal.api.catalog import Column, Function, Table
from supalocal.api.errors import SchemaCacheMiss
from supalocal.api.query import COMPARISON_OPS, FTS_OPS, Filter, JsonStep, LogicTree, OrderTerm

__all__ = [
    "ALIAS",
    "Params",
    "Relation",
    "qualified",
    "quote_ident",
    "render_condition",
    "render_order",
    "render_where",
]

ALIAS = "_s"
_LIKE_OPS = frozenset({"like", "ilike", "match", "imatch"})
_TSVECTOR = "tsvector"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def qualified(table: Table | Function) -> str:
    return f"{quote_ident(table.schema)}.{quote_ident(table.name)}"


class Params:
    """Collects bind values and hands out ``$n`` placeholders."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def _missing_column(relation: str, name: str) -> SchemaCacheMiss:
    return SchemaCacheMiss(400, "42703", f"column {relation}.{name} does not exist")


class Relation:
    """The columns visible under ``alias`` while rendering one (sub)query."""

    def __init__(self, label: str, columns: Sequence[Column], *, alias: str = ALIAS) -> None:
        self.label = label
        self.alias = alias
        self.columns = {c.name: c for c in columns}
        self.ordered = tuple(columns)

    def get(self, name: str) -> Column:
        column = self.columns.get(name)
        if column is None:
            raise _missing_column(self.label, name)
        return column

    def ref(self, name: str) -> str:
        return f"{self.alias}.{quote_ident(self.get(name).name)}"

    def field(self, name: str, path: Sequence[JsonStep], params: Params) -> tuple[str, str]:
        """``(sql, type)`` of ``name->…``: ``->>`` yields text, ``->`` the column's json/jsonb type."""
        column = self.get(name)
        sql = self.ref(name)
        for step in path:
            key = f"{params.add(int(step.key))}::int" if step.index else f"{params.add(step.key)}::text"
            sql = f"{sql}{'->>' if step.text else '->'}{key}"
        if not path:
            return sql, column.type_sql
        return sql, "text" if path[-1].text else column.type_sql


def _render_filter(node: Filter, rel: Relation, params: Params) -> str:
    ref, type_sql = rel.field(node.column, node.path, params)
    if node.op == "is":
        sql = f"{ref} IS {str(node.value).upper().replace('_', ' ')}"
    elif node.op == "in":
        sql = f"{ref} = ANY(({params.add(list(node.value))}::text[])::{type_sql}[])"
    elif node.op in FTS_OPS:
        language = f"{params.add(node.language)}::regconfig, " if node.language else ""
        vector = ref if type_sql == _TSVECTOR else f"to_tsvector({language}{ref})"
        sql = f"{vector} @@ {FTS_OPS[node.op]}({language}{params.add(node.value)}::text)"
    elif node.quantifier is not None:
        quantified = f"{node.quantifier.upper()}"
        if node.op in _LIKE_OPS:
            value = str(node.value).replace("*", "%") if node.op in ("like", "ilike") else node.value
            sql = f"{ref}::text {COMPARISON_OPS[node.op]} {quantified}(({params.add(value)}::text)::text[])"
        else:
            sql = f"{ref} {COMPARISON_OPS[node.op]} {quantified}(({params.add(node.value)}::text)::{type_sql}[])"
    elif node.op in _LIKE_OPS:
        value = str(node.value).replace("*", "%") if node.op in ("like", "ilike") else node.value
        sql = f"{ref}::text {COMPARISON_OPS[node.op]} {params.add(value)}::text"
    else:
        sql = f"{ref} {COMPARISON_OPS[node.op]} ({params.add(node.value)}::text)::{type_sql}"
    return f"NOT ({sql})" if node.negated else sql


def render_condition(node: Filter | LogicTree, rel: Relation, params: Params) -> str:
    if isinstance(node, Filter):
        return _render_filter(node, rel, params)
    joiner = " AND " if node.conjunction == "and" else " OR "
    sql = "(" + joiner.join(render_condition(c, rel, params) for c in node.children) + ")"
    return f"NOT {sql}" if node.negated else sql


def render_where(conditions: Sequence[str]) -> str:
    return " WHERE " + " AND ".join(conditions) if conditions else ""


def render_order(terms: Sequence[OrderTerm], rel: Relation, params: Params) -> str:
    if not terms:
        return ""
    rendered = []
    for term in terms:
        ref, _ = rel.field(term.column, term.path, params)
        sql = f"{ref} {'DESC' if term.descending else 'ASC'}"
        if term.nulls:
            sql += f" NULLS {term.nulls.upper()}"
        rendered.append(sql)
    return " ORDER BY " + ", ".join(rendered)


def render_page(limit: int | None, offset: int, params: Params, *, max_rows: int | None) -> str:
    if max_rows is not None:
        limit = max_rows if limit is None else min(limit, max_rows)
    sql = f" LIMIT {params.add(limit)}::int8" if limit is not None else ""
    if offset:
        sql += f" OFFSET {params.add(offset)}::int8"
    return sql
