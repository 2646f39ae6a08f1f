"""Pagination as PostgREST answers it: the ``Range`` header, ``Content-Range``, 206 and 416 (pure).

- ``Range: 0-9`` (items, inclusive) pages like ``offset=0&limit=10``; combined with ``limit``/``offset`` the
  two ranges intersect. A lower bound above the upper one is ``416 PGRST103``.
- With a count (``Prefer: count=exact|planned|estimated``) the status is ``206 Partial Content`` when the
  rows answered are fewer than the total, ``416 PGRST103`` when the offset lies past the total, else 200
  (PostgREST's ``rangeStatus``). Without a count it is always 200.

Example: 3 rows, ``Prefer: count=exact``, ``limit=2`` → 206, ``Content-Range: 0-1/3``.
"""

from __future__ import annotations

import re

from supalocal.api.errors import ApiError

__all__ = ["apply_range_header", "content_range"]

_RANGE_RE = re.compile(r"^\s*(?:items=)?(\d+)-(\d*)\s*$")
NOT_SATISFIABLE = 416


def _not_satisfiable(details: str, *, total: int | None = None) -> ApiError:
    headers = {"Content-Range": f"*/{total}"} if total is not None else None
    return ApiError(NOT_SATISFIABLE, "PGRST103", "Requested range not satisfiable", details=details, headers=headers)


def apply_range_header(header: str | None, *, limit: int | None, offset: int) -> tuple[int | None, int]:
    """``(limit, offset)`` after intersecting the query's page with a ``Range`` header (ignored if malformed).

    Raises:
        ApiError: 416 PGRST103 for a range whose lower bound exceeds its upper bound.
    """
    match = _RANGE_RE.match(header or "")
    if match is None:
        return limit, offset
    lower, upper = int(match.group(1)), int(match.group(2)) if match.group(2) else None
    if upper is not None and lower > upper:
        raise _not_satisfiable(
            "The lower boundary must be lower than or equal to the upper boundary in the Range header."
        )
    query_upper = offset + limit - 1 if limit is not None else None
    new_lower = max(lower, offset)
    uppers = [u for u in (upper, query_upper) if u is not None]
    new_upper = min(uppers) if uppers else None
    return (None if new_upper is None else max(new_upper - new_lower + 1, 0)), new_lower


def content_range(*, offset: int, rows: int, total: int | None) -> tuple[int, str]:
    """``(status, Content-Range)`` of a read answering ``rows`` rows from ``offset``.

    Raises:
        ApiError: 416 PGRST103 when ``offset`` lies past a known ``total``.
    """
    first_last = f"{offset}-{offset + rows - 1}" if rows else "*"
    header = f"{first_last}/{total if total is not None else '*'}"
    if total is None:
        return 200, header
    if offset > total:
        raise _not_satisfiable(f"An offset of {offset} was requested, but there are only {total} rows.", total=total)
    return (206 if rows < total else 200), header
