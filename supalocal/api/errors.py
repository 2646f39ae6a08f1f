"""PostgREST-shaped errors and the SQLSTATE → HTTP status mapping.

Exception tree (the only one in ``supalocal.api`` and ``supalocal.auth``)::

    ApiError(Exception)            a PostgREST error body: status, code, message, details, hint
    ├── AuthError                  the JWT was rejected (401, PGRST301 / PGRST303)
    └── SchemaCacheMiss            an unknown table/column/function; the caller may reload the
                                   schema cache once and retry before answering with it

Foreign errors are translated at one seam, :func:`from_postgres`, which turns an
``asyncpg.PostgresError`` into an :class:`ApiError` with PostgREST's status code
(``Error.hs`` ``mapSQLtoHTTP``, see docs/LOCAL_STACK.md §3).
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

__all__ = [
    "ApiError",
    "AuthError",
    "SchemaCacheMiss",
    "from_postgres",
    "status_for_sqlstate",
]

ANON_ROLE = "anon"
JSON_CONTENT_TYPE = "application/json; charset=utf-8"

# SQLSTATE prefixes → HTTP status, checked after the exact codes below (order matters: longest first).
_EXACT_STATUS: dict[str, int] = {
    "23503": 409,
    "23505": 409,
    "25006": 405,
    "42883": 404,
    "42P01": 404,
    "42P17": 500,
    "53400": 500,
    "57P01": 503,
    "P0001": 400,
}
_PREFIX_STATUS: tuple[tuple[str, int], ...] = (
    ("08", 503),
    ("53", 503),
    ("09", 500),
    ("25", 500),
    ("2D", 500),
    ("38", 500),
    ("39", 500),
    ("3B", 500),
    ("40", 500),
    ("54", 500),
    ("55", 500),
    ("57", 500),
    ("58", 500),
    ("F0", 500),
    ("HV", 500),
    ("P0", 500),
    ("XX", 500),
    ("0L", 403),
    ("0P", 403),
    ("28", 403),
)
_DEFAULT_STATUS = 400
_WHERE_CLAUSE_SUFFIX = "requires a WHERE clause"


class ApiError(Exception):
    """An error answered with PostgREST's JSON body ``{"code","message","details","hint"}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: Any = None,
        hint: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint
        self.headers = dict(headers or {})

    def body(self) -> bytes:
        """The JSON body; all four keys are always present and ``code`` is a string."""
        doc = {"code": self.code, "details": self.details, "hint": self.hint, "message": self.message}
        return json.dumps(doc, ensure_ascii=False).encode()

    def response_headers(self) -> dict[str, str]:
        return {
            "Content-Type": JSON_CONTENT_TYPE,
            "Proxy-Status": f"PostgREST; error={self.code}",
            **self.headers,
        }


class AuthError(ApiError):
    """A rejected JWT; PostgREST answers 401 with a ``WWW-Authenticate`` challenge."""

    def __init__(self, code: str, message: str) -> None:
        challenge = f'Bearer error="invalid_token", error_description="{message}"'
        super().__init__(401, code, message, headers={"WWW-Authenticate": challenge})


class SchemaCacheMiss(ApiError):
    """Something named in the request is not in the schema cache (PGRST202/204/205, unknown column)."""


def status_for_sqlstate(sqlstate: str, *, message: str, role: str) -> int:
    """The HTTP status PostgREST answers for a PostgreSQL error (``mapSQLtoHTTP``)."""
    if sqlstate == "42501":
        return 401 if role == ANON_ROLE else 403
    if sqlstate == "21000":
        return 400 if message.endswith(_WHERE_CLAUSE_SUFFIX) else 500
    if sqlstate == "22023" and message.startswith("role ") and message.endswith("does not exist"):
        return 401
    if sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        return int(sqlstate[2:])
    if sqlstate in _EXACT_STATUS:
        return _EXACT_STATUS[sqlstate]
    for prefix, status in _PREFIX_STATUS:
        if sqlstate.startswith(prefix):
            return status
    return _DEFAULT_STATUS


def from_postgres(exc: asyncpg.PostgresError, *, role: str) -> ApiError:
    """Translate a database error into PostgREST's body, copying message, detail and hint."""
    sqlstate = exc.sqlstate or "XX000"
    message = exc.message if hasattr(exc, "message") else str(exc)
    status = status_for_sqlstate(sqlstate, message=message, role=role)
    return ApiError(
        status,
        sqlstate,
        message,
        details=getattr(exc, "detail", None),
        hint=getattr(exc, "hint", None),
    )
