"""The ``select`` parameter and column references with JSON arrows: a pure module.

Grammar (PostgREST 12, "Vertical filtering" and "Resource embedding")::

    select  = item ("," item)*
    item    = "*" | [alias ":"] field ["::" cast] | [alias ":"] relation ("!" hint)* "(" [select] ")"
    field   = column ("->" key | "->>" key)*          e.g. payload->>recipe_id, meta->tags->0
    hint    = "inner" | "left" | a foreign-key name | a column name

A JSON path's output key is its last key (``payload->>recipe_id`` → ``"recipe_id"``), as in PostgREST.
Aggregates (``count()``, ``col.sum()``) are refused as hosted Supabase refuses them (aggregates are off
there by default): 400 ``PGRST123``. Spread embeddings (``...rel(cols)``) are refused with 400 PGRST100.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from supalocal.api.errors import ApiError
from supalocal.api.tokens import bad_request, split_top_level, unquote

__all__ = ["Embed", "JsonStep", "SelectItem", "parse_field", "parse_select"]

_ARROW_RE = re.compile(r"(->>|->)")
_INDEX_RE = re.compile(r"-?\d+")
JOIN_HINTS = frozenset({"inner", "left"})
UNSUPPORTED = "not supported by supalocal"
AGGREGATES = frozenset({"count", "sum", "avg", "min", "max"})


def _aggregates_refused() -> ApiError:
    return ApiError(400, "PGRST123", "Use of aggregate functions is not allowed")


def _is_aggregate(item: str) -> bool:
    head, _, rest = item.partition("(")
    head = _split_alias(head)[1]
    if "." in head:
        return head.rsplit(".", 1)[1] in AGGREGATES  # col.sum()
    return head == "count" and rest.startswith(")")  # count()


@dataclass(frozen=True)
class JsonStep:
    """One ``->key`` (``text=False``) or ``->>key`` step; an integer key indexes an array."""

    key: str
    text: bool
    index: bool = False


@dataclass(frozen=True)
class SelectItem:
    """``*`` or ``[alias:]column[->…][::cast]``."""

    column: str
    alias: str | None = None
    cast: str | None = None
    path: tuple[JsonStep, ...] = ()

    @property
    def key(self) -> str:
        """The output key: the alias, else the last JSON key, else the column."""
        return self.alias or (self.path[-1].key if self.path else self.column)


@dataclass(frozen=True)
class Embed:
    """``[alias:]relation[!hint][!inner](select)``: rows of a related table nested in each row."""

    relation: str
    select: tuple[SelectItem | Embed, ...]
    alias: str | None = None
    hint: str | None = None
    inner: bool = False

    @property
    def key(self) -> str:
        return self.alias or self.relation


def parse_field(text: str) -> tuple[str, tuple[JsonStep, ...]]:
    """``payload->a->>b`` → ``("payload", (->a, ->>b))``; a plain (or quoted) name has no steps."""
    if text.startswith('"') and text.endswith('"') and '"' not in text[1:-1].replace('\\"', ""):
        return unquote(text), ()
    parts = _ARROW_RE.split(text)
    column = unquote(parts[0])
    steps: list[JsonStep] = []
    for arrow, key in zip(parts[1::2], parts[2::2], strict=True):
        if not key:
            raise bad_request(f'"failed to parse json path ({text})"', "empty key after an arrow")
        quoted = key.startswith('"')
        name = unquote(key)
        steps.append(JsonStep(name, arrow == "->>", index=not quoted and bool(_INDEX_RE.fullmatch(name))))
    if not column:
        raise bad_request(f'"failed to parse column ({text})"', "empty column name")
    return column, tuple(steps)


def _split_alias(item: str) -> tuple[str | None, str]:
    colon = item.find(":")
    if colon > 0 and not item.startswith('"') and item[colon + 1 : colon + 2] != ":":
        return unquote(item[:colon]), item[colon + 1 :]
    return None, item


def _parse_embed(item: str, value: str) -> Embed:
    alias, body = _split_alias(item)
    open_at = body.index("(")
    head, inner = body[:open_at], body[open_at + 1 : -1]
    name, *hints = head.split("!")
    inner_join = False
    hint: str | None = None
    for h in hints:
        if h in JOIN_HINTS:
            inner_join = h == "inner"
        elif hint is None and h:
            hint = h
        else:
            raise bad_request(f'"failed to parse select parameter ({value})"', f"unexpected hint {h!r}")
    if not name:
        raise bad_request(f'"failed to parse select parameter ({value})"', "empty relation name")
    return Embed(unquote(name), parse_select(inner) if inner.strip() else (), alias, hint, inner_join)


def parse_select(value: str) -> tuple[SelectItem | Embed, ...]:
    """The ``select`` value into fields and embeddings (recursively)."""
    items: list[SelectItem | Embed] = []
    for raw_item in split_top_level(value):
        item = raw_item.strip()
        if not item:
            raise bad_request(f'"failed to parse select parameter ({value})"', "empty select item")
        if item.startswith("..."):
            raise bad_request(f'"failed to parse select parameter ({value})"', f"spread embedding is {UNSUPPORTED}")
        if "(" in item and not item.startswith('"'):
            if _is_aggregate(item):
                raise _aggregates_refused()
            if not item.rstrip().endswith(")"):
                raise bad_request(f'"failed to parse select parameter ({value})"', "unbalanced parentheses")
            items.append(_parse_embed(item, value))
            continue
        alias, item = _split_alias(item)
        field, _, cast = item.partition("::")
        if field == "*":
            items.append(SelectItem("*"))
            continue
        column, path = parse_field(field)
        items.append(SelectItem(column, alias, cast or None, path))
    return tuple(items)
