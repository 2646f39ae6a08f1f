"""PostgREST query-string and ``Prefer`` parsing: a pure module (no I/O, no catalog).

It turns ``?select=id,v&machine_id=eq.m1&status=in.(a,"b,c")&order=ts.desc.nullslast&limit=10`` into a
frozen :class:`Query`; :mod:`supalocal.api.sql` renders that against the schema cache. Malformed input
raises :class:`ApiError` 400 ``PGRST100`` exactly where PostgREST would.

Grammar (PostgREST docs, "Horizontal filtering"): ``col=[not.]op.value``; ``or=(f,f,and(f,f))`` with
inner filters written ``col.[not.]op.value``; ``in.(a,"b,c")`` with ``"…"`` quoting and ``\\`` escapes;
``op(any|all).{a,b}`` quantifiers; ``fts(lang).query``; ``col->a->>b`` JSON paths (:mod:`select`).
A key with a dotted prefix scopes to an embedded resource: ``recipe_steps.type=eq.valve``,
``recipe_steps.order=sequence.desc``, ``recipe_steps.limit=2`` (:class:`Scope`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from supalocal.api.errors import ApiError
from supalocal.api.select import Embed, JsonStep, SelectItem, parse_field, parse_select
from supalocal.api.tokens import bad_request, split_top_level, unquote

__all__ = [
    "COMPARISON_OPS",
    "FTS_OPS",
    "Embed",
    "Filter",
    "JsonStep",
    "LogicTree",
    "OrderTerm",
    "Preferences",
    "Query",
    "Scope",
    "SelectItem",
    "parse_columns",
    "parse_filter",
    "parse_prefer",
    "parse_query",
    "parse_select",
    "split_top_level",
    "unquote",
]

# op → SQL operator for the binary operators; ``is``, ``in`` and full-text are handled separately.
COMPARISON_OPS: dict[str, str] = {
    "eq": "=",
    "neq": "<>",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "like": "LIKE",
    "ilike": "ILIKE",
    "match": "~",
    "imatch": "~*",
    "isdistinct": "IS DISTINCT FROM",
    "cs": "@>",
    "cd": "<@",
    "ov": "&&",
    "sl": "<<",
    "sr": ">>",
    "nxr": "&<",
    "nxl": "&>",
    "adj": "-|-",
}
#: full-text operators → the tsquery constructor PostgREST uses
FTS_OPS: dict[str, str] = {
    "fts": "to_tsquery",
    "plfts": "plainto_tsquery",
    "phfts": "phraseto_tsquery",
    "wfts": "websearch_to_tsquery",
}
#: operators that take ``(any)``/``(all)`` over a ``{a,b}`` list
QUANTIFIABLE_OPS = frozenset({"eq", "like", "ilike", "gt", "gte", "lt", "lte", "match", "imatch"})
SPECIAL_OPS = frozenset({"is", "in"})
IS_VALUES = frozenset({"null", "not_null", "true", "false", "unknown"})
RESERVED_PARAMS = frozenset({"select", "order", "limit", "offset", "columns", "on_conflict"})
LOGIC_PARAMS = frozenset({"or", "and", "not.or", "not.and"})
_Choice = TypeVar("_Choice", bound=str)  # one of the literal words a preference may take
_OP_RE = re.compile(r"^(?P<op>[a-z]+)(?:\((?P<arg>[^)]*)\))?$")


def _bad(message: str, details: str | None = None) -> ApiError:
    return bad_request(message, details)


@dataclass(frozen=True)
class Filter:
    """``column[->path] op value``; ``value`` is a tuple for ``in``. ``quantifier``: ``any``/``all`` with a
    ``{a,b}`` array literal as value; ``language``: the text-search config of ``fts(lang)``."""

    column: str
    op: str
    value: str | tuple[str, ...]
    negated: bool = False
    path: tuple[JsonStep, ...] = ()
    quantifier: Literal["any", "all"] | None = None
    language: str | None = None


@dataclass(frozen=True)
class LogicTree:
    """``and(...)``/``or(...)`` over filters and nested trees."""

    conjunction: Literal["and", "or"]
    children: tuple[Filter | LogicTree, ...]
    negated: bool = False


@dataclass(frozen=True)
class OrderTerm:
    column: str
    descending: bool = False
    nulls: Literal["first", "last"] | None = None
    path: tuple[JsonStep, ...] = ()


@dataclass(frozen=True)
class Scope:
    """Filters, order and page of one embedded resource (keys prefixed with its path)."""

    filters: tuple[Filter | LogicTree, ...] = ()
    order: tuple[OrderTerm, ...] = ()
    limit: int | None = None
    offset: int = 0


@dataclass(frozen=True)
class Query:
    select: tuple[SelectItem | Embed, ...] = (SelectItem("*"),)
    filters: tuple[Filter | LogicTree, ...] = ()
    order: tuple[OrderTerm, ...] = ()
    limit: int | None = None
    offset: int = 0
    columns: tuple[str, ...] | None = None
    on_conflict: tuple[str, ...] | None = None
    rpc_args: tuple[tuple[str, str], ...] = field(default=())
    #: embedded path (aliases or relation names) → its scope
    embedded: tuple[tuple[tuple[str, ...], Scope], ...] = ()

    def scope(self, path: tuple[str, ...]) -> Scope:
        return next((scope for p, scope in self.embedded if p == path), Scope())


@dataclass(frozen=True)
class Preferences:
    """The ``Prefer`` preferences we act on; unknown ones are ignored like PostgREST's lenient mode."""

    return_: Literal["minimal", "representation", "headers-only"] | None = None
    count: Literal["exact", "planned", "estimated"] | None = None
    resolution: Literal["merge-duplicates", "ignore-duplicates"] | None = None
    missing_default: bool = False


def _parse_in_list(value: str, raw: str) -> tuple[str, ...]:
    if not (value.startswith("(") and value.endswith(")")):
        raise _bad(f'"failed to parse filter (in.{value})" ({raw})', 'expecting "("')
    inner = value[1:-1]
    if inner == "":
        return ()
    return tuple(unquote(item.strip()) for item in split_top_level(inner))


def parse_operation(column: str, expr: str, *, raw: str) -> Filter:
    """``[not.]op[(modifier)].value`` for ``column`` (which may carry a JSON path) into a :class:`Filter`."""
    name, path = parse_field(column)
    negated = False
    if expr.startswith("not."):
        negated, expr = True, expr[4:]
    head, dot, value = expr.partition(".")
    match = _OP_RE.match(head)
    op = match.group("op") if match else head
    arg = match.group("arg") if match else None
    known = op in COMPARISON_OPS or op in SPECIAL_OPS or op in FTS_OPS
    if not dot or not match or not known:
        raise _bad(f'"failed to parse filter ({expr})" ({raw})', "unknown or missing operator")
    if arg is not None:
        if op in FTS_OPS and arg:
            return Filter(name, op, unquote(value), negated, path, language=arg)
        if op in QUANTIFIABLE_OPS and arg in ("any", "all"):
            return Filter(name, op, value, negated, path, quantifier=arg)  # type: ignore[arg-type]
        raise _bad(f'"failed to parse filter ({expr})" ({raw})', f"unexpected modifier ({arg})")
    if op == "in":
        return Filter(name, op, _parse_in_list(value, raw), negated, path)
    if op == "is":
        if value.lower() not in IS_VALUES:
            raise _bad(f'"failed to parse filter (is.{value})" ({raw})', "expecting null, true, false")
        return Filter(name, op, value.lower(), negated, path)
    return Filter(name, op, unquote(value), negated, path)


def parse_filter(column: str, value: str) -> Filter:
    """A top-level query parameter ``column=[not.]op.value``."""
    return parse_operation(column, value, raw=f"{column}={value}")


def _parse_logic_item(item: str, raw: str) -> Filter | LogicTree:
    item = item.strip()
    negated = item.startswith("not.")
    body = item[4:] if negated else item
    for conj in ("and", "or"):
        if body.startswith(conj + "(") and body.endswith(")"):
            children = tuple(_parse_logic_item(c, raw) for c in split_top_level(body[len(conj) + 1 : -1]))
            return LogicTree(conj, children, negated)
    if item.startswith('"'):
        end = item.find('"', 1)
        column, rest = item[: end + 1], item[end + 2 :]
    else:
        column, _, rest = item.partition(".")
    if not column or not rest:
        raise _bad(f'"failed to parse logic tree ({item})" ({raw})', "expecting column.operator.value")
    return parse_operation(column, rest, raw=raw)


def parse_logic(key: str, value: str) -> LogicTree:
    """``or=(a.eq.1,b.eq.2)`` / ``not.and=(…)``."""
    negated = key.startswith("not.")
    conj: Literal["and", "or"] = "and" if (key[4:] if negated else key) == "and" else "or"  # key in LOGIC_PARAMS
    raw = f"{key}={value}"
    if not (value.startswith("(") and value.endswith(")")) or value == "()":
        raise _bad(f'"failed to parse logic tree ({value})" ({raw})', 'expecting "("')
    children = tuple(_parse_logic_item(c, raw) for c in split_top_level(value[1:-1]))
    return LogicTree(conj, children, negated)


def parse_columns(value: str) -> tuple[str, ...]:
    """The ``columns``/``on_conflict`` list: quoted or bare names, comma-separated."""
    names = tuple(unquote(part.strip()) for part in split_top_level(value))
    if not all(names):
        raise _bad(f'"failed to parse columns parameter ({value})"', "empty column name")
    return names


def parse_order(value: str) -> tuple[OrderTerm, ...]:
    terms: list[OrderTerm] = []
    for raw_term in split_top_level(value):
        parts = raw_term.strip().split(".")
        if parts[0].startswith('"'):
            # a quoted column may contain dots; re-join until the closing quote
            i = next((k for k, p in enumerate(parts) if p.endswith('"') and (k or len(p) > 1)), 0)
            parts = [".".join(parts[: i + 1]), *parts[i + 1 :]]
        if "(" in parts[0]:
            detail = "ordering by an embedded resource is not supported by supalocal"
            raise _bad(f'"failed to parse order ({value})"', detail)
        column, path = parse_field(parts[0]) if parts[0] else ("", ())
        modifiers = parts[1:]
        descending = False
        nulls: Literal["first", "last"] | None = None
        for mod in modifiers:
            if mod in ("asc", "desc"):
                descending = mod == "desc"
            elif mod in ("nullsfirst", "nullslast"):
                nulls = "first" if mod == "nullsfirst" else "last"
            else:
                raise _bad(f'"failed to parse order ({value})"', f"unexpected {mod!r}")
        if not column:
            raise _bad(f'"failed to parse order ({value})"', "empty column")
        terms.append(OrderTerm(column, descending, nulls, path))
    return tuple(terms)


def _parse_int(name: str, value: str) -> int:
    if not value.isdigit():
        raise _bad(f'"failed to parse {name} parameter ({value})"', "expecting a non-negative integer")
    return int(value)


def _scoped_key(key: str) -> tuple[tuple[str, ...], str]:
    """``recipe_steps.steps.order`` → ``(("recipe_steps", "steps"), "order")``; a plain key has no path."""
    if key.startswith('"') or "." not in key or key in LOGIC_PARAMS:
        return (), key
    parts = key.split(".")
    if len(parts) >= 3 and parts[-2] == "not" and parts[-1] in ("or", "and"):
        return tuple(parts[:-2]), f"not.{parts[-1]}"
    return tuple(parts[:-1]), parts[-1]


@dataclass
class _ScopeBuilder:
    filters: list[Filter | LogicTree] = field(default_factory=list)
    order: tuple[OrderTerm, ...] = ()
    limit: int | None = None
    offset: int = 0


def _apply(scope: _ScopeBuilder, key: str, value: str) -> None:
    if key == "order":
        scope.order = parse_order(value)
    elif key == "limit":
        scope.limit = _parse_int(key, value)
    elif key == "offset":
        scope.offset = _parse_int(key, value)
    elif key in LOGIC_PARAMS:
        scope.filters.append(parse_logic(key, value))
    else:
        scope.filters.append(parse_filter(key, value))


def parse_query(params: Iterable[tuple[str, str]], *, rpc_arg_names: frozenset[str] = frozenset()) -> Query:
    """All query parameters (already percent-decoded, repeated keys kept) into a :class:`Query`.

    ``rpc_arg_names`` lists parameters that are function arguments (``GET /rpc/fn?a=1``), not filters.
    """
    select: tuple[SelectItem | Embed, ...] = (SelectItem("*"),)
    top = _ScopeBuilder()
    scopes: dict[tuple[str, ...], _ScopeBuilder] = {}
    columns = on_conflict = None
    rpc_args: list[tuple[str, str]] = []
    for key, value in params:
        if key in rpc_arg_names:
            rpc_args.append((key, value))
        elif key == "select":
            select = parse_select(value) if value else select
        elif key == "columns":
            columns = parse_columns(value)
        elif key == "on_conflict":
            on_conflict = parse_columns(value)
        else:
            path, name = _scoped_key(key)
            if path and name in ("select", "columns", "on_conflict"):
                raise _bad(f'"failed to parse {key} parameter"', f"{name} cannot be scoped to an embedded resource")
            _apply(scopes.setdefault(path, _ScopeBuilder()) if path else top, name, value)
    embedded = tuple((p, Scope(tuple(b.filters), b.order, b.limit, b.offset)) for p, b in scopes.items())
    return Query(
        select, tuple(top.filters), top.order, top.limit, top.offset, columns, on_conflict, tuple(rpc_args), embedded
    )


def _one_of(value: str | None, choices: tuple[_Choice, ...]) -> _Choice | None:
    """`value` if it is one of `choices` (typed as that choice), else None."""
    return next((choice for choice in choices if choice == value), None)


def parse_prefer(values: Sequence[str]) -> Preferences:
    """``Prefer`` header values (comma and/or space separated ``key=value`` tokens)."""
    prefs: dict[str, str] = {}
    for header in values:
        for token in header.replace(",", " ").split():
            key, _, val = token.partition("=")
            prefs.setdefault(key.strip().lower(), val.strip().lower())
    ret = prefs.get("return")
    count = prefs.get("count")
    resolution = prefs.get("resolution")
    return Preferences(
        return_=_one_of(ret, ("minimal", "representation", "headers-only")),
        count=_one_of(count, ("exact", "planned", "estimated")),
        resolution=_one_of(resolution, ("merge-duplicates", "ignore-duplicates")),
        missing_default=prefs.get("missing") == "default",
    )
