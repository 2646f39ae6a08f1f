"""Resource embedding: which foreign key an ``Embed`` follows, and the select list that nests it (pure).

Relationships come from the foreign keys in the schema cache, as PostgREST detects them:

- many-to-one: the source table holds the key (``process_runs?select=*,machines(*)`` → an object or null);
- one-to-many: the target holds it (``recipes?select=*,recipe_steps(*)`` → an array, ``[]`` when none);
- one-to-one: a one-to-many whose key columns are unique in the target (→ an object or null);
- by a key column: ``select=machine:machine_id(*)`` follows that column's foreign key (many-to-one).

A hint (``recipe_steps!recipe_steps_recipe_id_fkey(*)`` or, for a single-column key, ``!recipe_id``) picks
one of several candidates; several left are ``300 PGRST201``, none ``400 PGRST200``, with PostgREST's bodies.
A self-referencing key matches both directions and stays ambiguous whatever the hint.
Many-to-many through a junction table and relationships of views are not detected (``PGRST200``).

Each embedding renders as a correlated subquery in the parent's select list; ``!inner`` adds an
``EXISTS`` over the same subquery to the parent's ``WHERE`` (so it also applies to the count), and an
empty select (``recipe_steps!inner()``) filters without adding a key to the output.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from supalocal.api.catalog import ForeignKey, SchemaCache, Table
from supalocal.api.errors import ApiError
from supalocal.api.expr import Params, Relation, qualified, quote_ident, render_condition, render_order, render_page
from supalocal.api.query import Embed, Query, Scope, SelectItem
from supalocal.api.tokens import bad_request

__all__ = ["Relationship", "SelectRenderer", "resolve_relationship"]

Cardinality = Literal["many-to-one", "one-to-many", "one-to-one"]
_CAST_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_ ]*(\[\])?$")


@dataclass(frozen=True)
class Relationship:
    fk: ForeignKey
    cardinality: Cardinality
    target: Table
    #: (source column, target column) pairs the join compares
    pairs: tuple[tuple[str, str], ...]

    @property
    def to_one(self) -> bool:
        return self.cardinality != "one-to-many"

    def describe(self, source: Table) -> dict[str, str]:
        """One entry of PGRST201's ``details``: ``<fk> using <origin>(cols) and <target>(cols)``."""
        origin_cols = ", ".join(s for s, _ in self.pairs)
        target_cols = ", ".join(t for _, t in self.pairs)
        return {
            "cardinality": self.cardinality,
            "embedding": f"{source.name} with {self.target.name}",
            "relationship": f"{self.fk.name} using {source.name}({origin_cols}) and {self.target.name}({target_cols})",
        }


def _not_found(source: Table, name: str, cache: SchemaCache | None = None) -> ApiError:
    related = set()
    for fk in cache.foreign_keys if cache is not None else ():
        if (fk.schema, fk.table) == (source.schema, source.name):
            related.add(fk.ref_table)
        if (fk.ref_schema, fk.ref_table) == (source.schema, source.name):
            related.add(fk.table)
    close = difflib.get_close_matches(name, sorted(related), n=1)
    return ApiError(
        400,
        "PGRST200",
        f"Could not find a relationship between '{source.name}' and '{name}' in the schema cache",
        details=f"Searched for a foreign key relationship between '{source.name}' and '{name}' in the schema "
        f"'{source.schema}', but no matches were found.",
        hint=f"Perhaps you meant '{close[0]}' instead of '{name}'." if close else None,
    )


def _candidates(cache: SchemaCache, source: Table, name: str) -> list[Relationship]:
    found: list[Relationship] = []
    here = (source.schema, source.name)
    target = cache.tables.get((source.schema, name))
    for fk in cache.foreign_keys:
        if (
            target is not None
            and (fk.schema, fk.table) == here
            and (fk.ref_schema, fk.ref_table)
            == (
                target.schema,
                target.name,
            )
        ):
            found.append(Relationship(fk, "many-to-one", target, tuple(zip(fk.columns, fk.ref_columns, strict=True))))
        if (
            target is not None
            and (fk.schema, fk.table) == (target.schema, target.name)
            and (
                fk.ref_schema,
                fk.ref_table,
            )
            == here
        ):
            unique = any(set(key) == set(fk.columns) for key in target.unique_keys)
            found.append(
                Relationship(
                    fk,
                    "one-to-one" if unique else "one-to-many",
                    target,
                    tuple(zip(fk.ref_columns, fk.columns, strict=True)),
                )
            )
    return found


def resolve_relationship(cache: SchemaCache, source: Table, embed: Embed) -> Relationship:
    """The one relationship ``embed`` names from ``source``.

    Raises:
        ApiError: 400 PGRST200 (none), 300 PGRST201 (several and no hint picks one).
    """
    if source.column(embed.relation) is not None and (source.schema, embed.relation) not in cache.tables:
        by_column = [
            fk for fk in cache.foreign_keys if (fk.schema, fk.table) == (source.schema, source.name)
            and fk.columns == (embed.relation,)
        ]  # fmt: skip
        for fk in by_column:
            target = cache.tables.get((fk.ref_schema, fk.ref_table))
            if target is not None and (embed.hint is None or embed.hint in (fk.name, fk.ref_table)):
                return Relationship(fk, "many-to-one", target, ((fk.columns[0], fk.ref_columns[0]),))
        raise _not_found(source, embed.relation)
    candidates = _candidates(cache, source, embed.relation)
    if embed.hint is not None:
        # PostgREST's hints: the constraint name, or the key column of a single-column foreign key. A
        # self-reference matches in both directions and stays ambiguous (PGRST201), as there.
        candidates = [r for r in candidates if embed.hint == r.fk.name or r.fk.columns == (embed.hint,)]
    if not candidates:
        raise _not_found(source, embed.relation, cache)
    if len(candidates) > 1:
        names = ", ".join(f"'{embed.relation}!{r.fk.name}'" for r in candidates)
        raise ApiError(
            300,
            "PGRST201",
            f"Could not embed because more than one relationship was found for '{source.name}' and '{embed.relation}'",
            details=[r.describe(source) for r in candidates],
            hint=f"Try changing '{embed.relation}' to one of the following: {names}. Find the desired "
            "relationship in the 'details' key.",
        )
    return candidates[0]


@dataclass
class SelectRenderer:
    """Renders a select tree (fields and embeddings) against ``cache`` for one statement."""

    cache: SchemaCache
    query: Query
    params: Params
    max_rows: int | None
    _aliases: int = 0
    _seen: set[tuple[str, ...]] = field(default_factory=set)

    def columns(self, items: Sequence[SelectItem | Embed], rel: Relation, table: Table | None) -> tuple[str, list[str]]:
        """``(select list, conditions for the parent's WHERE)`` of ``items`` over ``rel``."""
        return self._render(items, rel, table, ())

    def check_scopes(self) -> None:
        """Every ``path.filter`` in the query names an embedding of the select (PGRST108 otherwise)."""
        for path, _scope in self.query.embedded:
            if path not in self._seen:
                name = ".".join(path)
                raise ApiError(
                    400,
                    "PGRST108",
                    f"'{name}' is not an embedded resource in this request",
                    hint=f"Verify that '{name}' is included in the 'select' query parameter.",
                )

    def _render(
        self, items: Sequence[SelectItem | Embed], rel: Relation, table: Table | None, path: tuple[str, ...]
    ) -> tuple[str, list[str]]:
        parts: list[str] = []
        inner: list[str] = []
        for item in items:
            if isinstance(item, Embed):
                column, condition = self._embed(item, rel, table, path)
                if column:
                    parts.append(column)
                if condition:
                    inner.append(condition)
            elif item.column == "*":
                parts.extend(f"{rel.alias}.{quote_ident(c.name)}" for c in rel.ordered)
            else:
                expr, _ = rel.field(item.column, item.path, self.params)
                if item.cast:
                    if not _CAST_RE.match(item.cast):
                        raise bad_request(f'"failed to parse select parameter ({item.cast})"')
                    expr = f"({expr})::{item.cast}"
                parts.append(f"{expr} AS {quote_ident(item.key)}")
        return (", ".join(parts) if parts else "NULL"), inner

    def _scope(self, path: tuple[str, ...], embed: Embed) -> tuple[tuple[str, ...], Scope]:
        keyed = (*path, embed.key)
        named = (*path, embed.relation)
        self._seen.update({keyed, named})
        for candidate in (keyed, named):
            if any(p == candidate for p, _ in self.query.embedded):
                return keyed, self.query.scope(candidate)
        return keyed, Scope()

    def _embed(self, embed: Embed, rel: Relation, table: Table | None, path: tuple[str, ...]) -> tuple[str, str]:
        if table is None:
            raise ApiError(
                400,
                "PGRST200",
                f"Could not find a relationship between '{rel.label}' and '{embed.relation}' in the schema cache",
            )
        relationship = resolve_relationship(self.cache, table, embed)
        target = relationship.target
        child_path, scope = self._scope(path, embed)
        self._aliases += 1
        n = self._aliases
        child = Relation(f"{target.schema}.{target.name}", target.columns, alias=f"_s{n}")
        source = f"{qualified(target)} AS {child.alias}"

        def where() -> str:
            join = [f"{child.ref(t)} = {rel.ref(s)}" for s, t in relationship.pairs]
            filters = [render_condition(f, child, self.params) for f in scope.filters]
            _, nested_inner = self._render(embed.select, child, target, child_path)
            return " WHERE " + " AND ".join([*join, *filters, *nested_inner])

        condition = f"EXISTS (SELECT 1 FROM {source}{where()})" if embed.inner else ""
        if not embed.select:
            return "", condition
        columns, _ = self._render(embed.select, child, target, child_path)
        inner_sql = f"SELECT {columns} FROM {source}{where()}"
        if relationship.to_one:
            value = f"(SELECT row_to_json(_j{n}) FROM ({inner_sql}) AS _j{n})"
        else:
            order = render_order(scope.order, child, self.params)
            page = render_page(scope.limit, scope.offset, self.params, max_rows=None)
            value = f"(SELECT coalesce(json_agg(_j{n}), '[]') FROM ({inner_sql}{order}{page}) AS _j{n})"
        return f"{value} AS {quote_ident(embed.key)}", condition
