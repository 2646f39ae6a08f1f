"""Realtime ``postgres_changes`` filters (``machine_id=eq.<uuid>``): parse and match, a pure module.

Realtime evaluates a filter against the typed column value: on the new row for INSERT/UPDATE and
on the old identity for DELETE. Values arrive here as the JSON PostgreSQL produced (``to_json``);
both sides are coerced by the column's ``typname`` before comparing, so ``id=gt.9`` is numeric and
``ts=gte.2026-01-01T00:00:00Z`` is a time comparison, never a string one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from supalocal.api.errors import ApiError
from supalocal.api.query import split_top_level, unquote

__all__ = ["FilterError", "RowFilter", "parse_row_filter"]

REALTIME_OPS = frozenset(
    {"eq", "neq", "lt", "lte", "gt", "gte", "in", "like", "ilike", "is", "match", "imatch", "isdistinct"}
)
NUMERIC_TYPES = frozenset({"int2", "int4", "int8", "numeric", "float4", "float8", "oid"})
TIME_TYPES = frozenset({"timestamptz", "timestamp", "date"})
JSON_TYPES = frozenset({"json", "jsonb"})
_TRUE = frozenset({"true", "t", "yes", "y", "on", "1"})


class FilterError(ValueError):
    """A filter Realtime would refuse (``Error parsing `filter` params``)."""


@dataclass(frozen=True)
class Condition:
    column: str
    op: str
    value: str | tuple[str, ...]
    negated: bool


@dataclass(frozen=True)
class RowFilter:
    """AND of conditions; the empty filter matches every row."""

    conditions: tuple[Condition, ...]

    def matches(self, row: Mapping[str, Any] | None, types: Mapping[str, str]) -> bool:
        if not self.conditions:
            return True
        if row is None:
            return False
        return all(_evaluate(c, row, types.get(c.column, "text")) for c in self.conditions)


def parse_row_filter(text: str | None, *, columns: Mapping[str, str]) -> RowFilter:
    """``col=[not.]op.value[,col=op.value…]``; every column must exist in ``columns``."""
    if not text:
        return RowFilter(())
    conditions = []
    try:
        parts = split_top_level(text)
    except ApiError as exc:
        raise FilterError(text) from exc
    for part in parts:
        column, eq, expr = part.partition("=")
        column = unquote(column.strip())
        negated = expr.startswith("not.")
        expr = expr[4:] if negated else expr
        op, dot, value = expr.partition(".")
        if not eq or not dot or op not in REALTIME_OPS or column not in columns:
            raise FilterError(part)
        if op == "in":
            if not (value.startswith("(") and value.endswith(")")):
                raise FilterError(part)
            items = tuple(unquote(v.strip()) for v in split_top_level(value[1:-1])) if value != "()" else ()
            conditions.append(Condition(column, op, items, negated))
        else:
            conditions.append(Condition(column, op, unquote(value), negated))
    return RowFilter(tuple(conditions))


def _coerce(value: Any, typname: str) -> Any:
    """A comparable Python value for a JSON value or filter literal of column type ``typname``."""
    if value is None:
        return None
    try:
        if typname in NUMERIC_TYPES:
            return value if isinstance(value, Decimal) else Decimal(str(value))
        if typname == "bool":
            return value if isinstance(value, bool) else str(value).lower() in _TRUE
        if typname in TIME_TYPES:
            return datetime.fromisoformat(str(value).replace("Z", "+00:00").replace(" ", "T"))
        if typname == "uuid":
            return str(value).lower()
        if typname in JSON_TYPES:
            return json.loads(value, parse_float=Decimal) if isinstance(value, str) else value
    except (InvalidOperation, ValueError):
        return str(value)
    return value if isinstance(value, str) else json.dumps(value)


def _like_regex(pattern: str, *, flags: int) -> re.Pattern[str]:
    out = []
    for ch in pattern:
        out.append(".*" if ch in "%*" else "." if ch == "_" else re.escape(ch))
    return re.compile("^" + "".join(out) + "$", flags | re.DOTALL)


def _compare(op: str, left: Any, right: Any) -> bool:
    try:
        if op == "eq":
            return bool(left == right)
        if op == "neq":
            return bool(left != right)
        if op == "lt":
            return bool(left < right)
        if op == "lte":
            return bool(left <= right)
        if op == "gt":
            return bool(left > right)
        return bool(left >= right)  # gte
    except TypeError:
        return False


def _evaluate(cond: Condition, row: Mapping[str, Any], typname: str) -> bool:
    actual = _coerce(row.get(cond.column), typname)
    if cond.op == "is":
        want = str(cond.value).lower()
        result = (
            actual is None
            if want == "null"
            else (
                actual is not None
                if want == "not_null"
                else (actual is (want in _TRUE) if typname == "bool" else False)
            )
        )
    elif cond.op == "isdistinct":
        result = actual != _coerce(cond.value, typname)
    elif actual is None:
        return False  # SQL: a comparison with NULL is never true, negated or not
    elif cond.op == "in":
        result = actual in {_coerce(v, typname) for v in cond.value}
    elif cond.op in ("like", "ilike"):
        flags = re.IGNORECASE if cond.op == "ilike" else 0
        result = bool(_like_regex(str(cond.value), flags=flags).match(str(row.get(cond.column))))
    elif cond.op in ("match", "imatch"):
        flags = re.IGNORECASE if cond.op == "imatch" else 0
        result = re.search(str(cond.value), str(row.get(cond.column)), flags) is not None
    else:
        result = _compare(cond.op, actual, _coerce(cond.value, typname))
    return not result if cond.negated else result
