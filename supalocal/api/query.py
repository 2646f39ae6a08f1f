"""PostgREST query-string and ``Prefer`` parsing: a pure module (no I/O, no catalog).

It turns ``?select=id,v&machine_id=eq.m1&status=in.(a,"b,c")&order=ts.desc.nullslast&limit=10`` into a
frozen :class:`Query`; :mod:`supalocal.api.sql` renders that against the schema cache. Malformed input
raises :class:`ApiError` 400 ``PGRST100`` exactly where PostgREST would.

Grammar (PostgREST docs, "Horizontal filtering"): ``col=[not.]op.value``; ``or=(f,f,and(f,f))`` with
inner filters written ``col.[not.]op.value``; ``in.(a,"b,c")`` with ``"…"`` quoting and ``\\`` escapes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from supalocal.api.errors import ApiError

__all__ = [
    "COMPARISON_OPS",
    "Filter",
    "LogicTree",
    "OrderTerm",
    "Preferences",
    "Query",
    "SelectItem",
    "parse_columns",
    "parse_filter",
    "parse_prefer",
    "parse_query",
    "parse_select",
]

# op → SQL operator for the binary operators; ``is`` and ``in`` are handled separately.
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
}
SPECIAL_OPS = frozenset({"is", "in"})
IS_VALUES = frozenset({"null", "not_null", "true", "false", "unknown"})
RESERVED_PARAMS = frozenset({"select", "order", "limit", "offset", "columns", "on_conflict"})
LOGIC_PARAMS = frozenset({"or", "and", "not.or", "not.and"})
BAD_REQUEST = 400
_Choice = TypeVar("_Choice", bound=str)  # one of the literal words a preference may take


def _bad(message: str, details: str | None = None) -> ApiError:
    return ApiError(BAD_REQUEST, "PGRST100", message, details=details)


@dataclass(frozen=True)
class Filter:
    """``column op value``; ``value`` is a tuple for ``in``."""

    column: str
    op: str
    value: str | tuple[str, ...]
    negated: bool = False


@dataclass(frozen=True)
class LogicTree:
    """``and(...)``/``or(...)`` over filters and nested trees."""

    conjunction: Literal["and", "or"]
    children: tuple[Filter | LogicTree, ...]
    negated: bool = False


@dataclass(frozen=True)
class SelectItem:
    """One ``select`` entry: ``*`` or ``[alias:]column[::cast]``."""

    column: str
    alias: str | None = None
    cast: str | None = None


@dataclass(frozen=True)
class OrderTerm:
    column: str
    descending: bool = False
    nulls: Literal["first", "last"] | None = None


@dataclass(frozen=True)
class Query:
    select: tuple[SelectItem, ...] = (SelectItem("*"),)
    filters: tuple[Filter | LogicTree, ...] = ()
    order: tuple[OrderTerm, ...] = ()
    limit: int | None = None
    offset: int = 0
    columns: tuple[str, ...] | None = None
    on_conflict: tuple[str, ...] | None = None
    rpc_args: tuple[tuple[str, str], ...] = field(default=())


@dataclass(frozen=True)
class Preferences:
    """The ``Prefer`` preferences we act on; unknown ones are ignored like PostgREST's lenient mode."""

    return_: Literal["minimal", "representation", "headers-only"] | None = None
    count: Literal["exact", "planned", "estimated"] | None = None
    resolution: Literal["merge-duplicates", "ignore-duplicates"] | None = None
    missing_default: bool = False


def split_top_level(text: str, *, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside double quotes and parentheses."""
    parts: list[str] = []
    depth = 0
    quoted = False
    escaped = False
    current: list[str] = []
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
            continue
        if ch == "\\" and quoted:
            current.append(ch)
            escaped = True
            continue
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
            if depth < 0:
                raise _bad(f'"failed to parse" ({text})', "unbalanced parentheses")
        elif not quoted and depth == 0 and ch == sep:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    if quoted or depth != 0:
        raise _bad(f'"failed to parse" ({text})', "unbalanced quotes or parentheses")
    parts.append("".join(current))
    return parts


def unquote(token: str) -> str:
    """Strip ``"…"`` quoting with ``\\"``/``\\\\`` escapes; bare tokens are returned as is."""
    if len(token) >= 2 and token[0] == '"' and token[-1] == '"':
        out: list[str] = []
        chars = iter(token[1:-1])
        for ch in chars:
            out.append(next(chars, "") if ch == "\\" else ch)
        return "".join(out)
    return token


def _parse_in_list(value: str, raw: str) -> tuple[str, ...]:
    if not (value.startswith("(") and value.endswith(")")):
        raise _bad(f'"failed to parse filter (in.{value})" ({raw})', 'expecting "("')
    inner = value[1:-1]
    if inner == "":
        return ()
    return tuple(unquote(item.strip()) for item in split_top_level(inner))


def parse_operation(column: str, expr: str, *, raw: str) -> Filter:
    """``[not.]op.value`` for ``column`` into a :class:`Filter`."""
    negated = False
    if expr.startswith("not."):
        negated, expr = True, expr[4:]
    op, dot, value = expr.partition(".")
    if not dot or (op not in COMPARISON_OPS and op not in SPECIAL_OPS):
        raise _bad(f'"failed to parse filter ({expr})" ({raw})', "unknown or missing operator")
    if op == "in":
        return Filter(column, op, _parse_in_list(value, raw), negated)
    if op == "is":
        if value.lower() not in IS_VALUES:
            raise _bad(f'"failed to parse filter (is.{value})" ({raw})', "expecting null, true, false")
        return Filter(column, op, value.lower(), negated)
    return Filter(column, op, unquote(value), negated)


def parse_filter(column: str, value: str) -> Filter:
    """A top-level query parameter ``column=[not.]op.value``."""
    return parse_operation(unquote(column), value, raw=f"{column}={value}")


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
        column, rest = item[1:end], item[end + 2 :]
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


def parse_select(value: str) -> tuple[SelectItem, ...]:
    """``*`` or ``[alias:]col[::cast]`` entries; resource embedding is not supported."""
    items: list[SelectItem] = []
    for raw_item in split_top_level(value):
        item = raw_item.strip()
        if not item:
            raise _bad(f'"failed to parse select parameter ({value})"', "empty select item")
        if "(" in item and not item.startswith('"'):
            raise ApiError(
                BAD_REQUEST,
                "PGRST200",
                f"Could not find a relationship for '{item.split('(')[0]}' in the schema cache",
                details="resource embedding is not supported by supalocal",
            )
        alias = None
        colon = item.find(":")
        if colon > 0 and not item.startswith('"') and item[colon + 1 : colon + 2] != ":":
            alias, item = item[:colon], item[colon + 1 :]
        column, _, cast = item.partition("::")
        items.append(SelectItem(unquote(column), alias and unquote(alias), cast or None))
    return tuple(items)


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
        column, modifiers = unquote(parts[0]), parts[1:]
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
        terms.append(OrderTerm(column, descending, nulls))
    return tuple(terms)


def _parse_int(name: str, value: str) -> int:
    if not value.isdigit():
        raise _bad(f'"failed to parse {name} parameter ({value})"', "expecting a non-negative integer")
    return int(value)


def parse_query(params: Iterable[tuple[str, str]], *, rpc_arg_names: frozenset[str] = frozenset()) -> Query:
    """All query parameters (already percent-decoded, repeated keys kept) into a :class:`Query`.

    ``rpc_arg_names`` lists parameters that are function arguments (``GET /rpc/fn?a=1``), not filters.
    """
    select: tuple[SelectItem, ...] = (SelectItem("*"),)
    filters: list[Filter | LogicTree] = []
    order: tuple[OrderTerm, ...] = ()
    limit: int | None = None
    offset = 0
    columns = on_conflict = None
    rpc_args: list[tuple[str, str]] = []
    for key, value in params:
        if key in rpc_arg_names:
            rpc_args.append((key, value))
        elif key == "select":
            select = parse_select(value) if value else select
        elif key == "order":
            order = parse_order(value)
        elif key == "limit":
            limit = _parse_int(key, value)
        elif key == "offset":
            offset = _parse_int(key, value)
        elif key == "columns":
            columns = parse_columns(value)
        elif key == "on_conflict":
            on_conflict = parse_columns(value)
        elif key in LOGIC_PARAMS:
            filters.append(parse_logic(key, value))
        else:
            filters.append(parse_filter(key, value))
    return Query(select, tuple(filters), order, limit, offset, columns, on_conflict, tuple(rpc_args))


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
