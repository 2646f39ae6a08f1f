"""The one seam where Supabase client errors become the agent's `CloudError`s, classified for recovery.

PostgREST keeps the HTTP status out of the client's `APIError`, but its error *code* carries the same
information (PostgREST's documented code → status table): PGRST000–003 mean the database is unreachable
or overloaded (503/504), PGRST1xx/2xx/3xx are request, schema and auth errors (4xx), and SQLSTATE classes map
as PostgREST maps them (23 integrity → 409, 22 data → 400, 42 access/syntax → 4xx, 08/53/57/40 → 5xx).
A code that is a bare HTTP status (a proxy error page without a PostgREST body) is classified by its number.
"""

from __future__ import annotations

import httpx
from postgrest.exceptions import APIError

from agent.errors import CloudError, CloudPermanentError, CloudTransientError

__all__ = ["is_transient_code", "translate"]

# SQLSTATE classes PostgREST answers with 5xx: connection exception, insufficient resources, operator
# intervention (e.g. admin shutdown), transaction rollback (serialization failure, deadlock), system error.
_TRANSIENT_SQLSTATE_CLASSES = {"08", "53", "57", "58", "40", "XX"}
_TRANSIENT_PGRST = {"PGRST000", "PGRST001", "PGRST002", "PGRST003"}


def is_transient_code(code: str | None) -> bool:
    """Whether an error with this PostgREST/SQLSTATE/HTTP code is worth retrying unchanged."""
    if not code:
        return True  # no code at all: we never got a PostgREST answer
    if code.isdigit() and len(code) == 3:  # bare HTTP status
        return int(code) >= 500 or int(code) in (408, 429)
    if code.startswith("PGRST"):
        return code in _TRANSIENT_PGRST
    return code[:2] in _TRANSIENT_SQLSTATE_CLASSES


def translate(exc: BaseException, *, what: str) -> CloudError:
    """Map a foreign exception from supabase-py/postgrest/httpx to a classified `CloudError`."""
    if isinstance(exc, APIError):
        message = f"{what}: {exc.message or 'request failed'}"
        if exc.details:
            message += f" ({exc.details})" if len(str(exc.details)) < 300 else ""
        cls = CloudTransientError if is_transient_code(exc.code) else CloudPermanentError
        return cls(message, code=exc.code)
    if isinstance(exc, httpx.TimeoutException):
        return CloudTransientError(f"{what}: timed out")
    if isinstance(exc, httpx.HTTPError | OSError):
        return CloudTransientError(f"{what}: {type(exc).__name__}: {exc}".rstrip(": "))
    return CloudTransientError(f"{what}: {type(exc).__name__}: {exc}")
