"""The one seam where Supabase client errors become the agent's `CloudError`s, classified for recovery.

PostgREST keeps the HTTP status out of the client's `APIError`, but its error *code* carries the same
information (PostgREST's documented code → status table): PGRST000–003 mean the database is unreachable
or overloaded (503/504), PGRST1xx/2xx are request and schema errors (4xx), and SQLSTATE classes map
as PostgREST maps them (23 integrity → 409, 22 data → 400, 42 access/syntax → 4xx, 08/53/57/40 → 5xx).
A code that is a bare HTTP status (a proxy error page without a PostgREST body) is classified by its number.

Three outcomes, three recoveries (the shipper acts on the class):

- `CloudTransientError`: the service, not the request, failed → keep the record, retry with backoff.
- `CloudPermanentError`: this request is wrong → set the record aside (quarantine), ship the rest.
- `CloudAuthError`: Supabase refused the *key* → no request can succeed, so nothing is the record's fault:
  hold every record, back off, report it. That is a bare 401/403 (the API gateway refusing the key), PostgREST's
  JWT group PGRST3xx (PGRST301 invalid or badly signed, PGRST302 no key while anonymous access is off, PGRST303
  expired or claims refused; PGRST300 the server cannot verify keys at all), a JWT whose role does not exist
  (22023 "role … does not exist", which PostgREST answers with 401), and Realtime refusing the socket
  (HTTP 401/403 at the handshake) or a channel join ("InvalidJWTToken: …").

SQLSTATE 42501 (insufficient privilege) stays permanent, on purpose. PostgREST answers it with 401 for the anon
role and 403 otherwise, but the client only sees the code, and the code is ambiguous: a machine-scoped key
writing another machine's row is refused with 42501 by row-level security, and that *is* a property of the
record (holding it would block the queue behind it forever). A key of the wrong role (e.g. the anon key as
SUPABASE_KEY) also gets 42501 on every table: its records are quarantined with the reason, /health shows the
quarantine, and ALDSpoolQuarantineNotEmpty fires; they can be re-queued once the key is fixed.
"""

from __future__ import annotations

import json

import httpx
from postgrest.exceptions import APIError
from websockets.exceptions import InvalidStatus

from agent.errors import CloudAuthError, CloudError, CloudPermanentError, CloudTransientError

__all__ = ["is_auth_code", "is_transient_code", "realtime_refusal", "translate"]

# SQLSTATE classes PostgREST answers with 5xx: connection exception, insufficient resources, operator
# intervention (e.g. admin shutdown), transaction rollback (serialization failure, deadlock), system error.
_TRANSIENT_SQLSTATE_CLASSES = {"08", "53", "57", "58", "40", "XX"}
_TRANSIENT_PGRST = {"PGRST000", "PGRST001", "PGRST002", "PGRST003"}
#: PostgREST's "Group 3 - JWT" codes: the key, never the request.
_AUTH_PGRST_PREFIX = "PGRST3"
_AUTH_HTTP_STATUSES = {401, 403}
#: SQLSTATE 22023 (invalid parameter value) is a key problem only when PostgREST could not switch to the JWT's role.
_ROLE_MISSING = "22023"
#: Supabase Realtime's reason for a refused access token (e.g. "InvalidJWTToken: Token has expired 12 seconds ago").
_REALTIME_TOKEN_REFUSED = "InvalidJWTToken"


def is_auth_code(code: str | None, message: str = "") -> bool:
    """Whether an error with this PostgREST/SQLSTATE/HTTP code (and message) is Supabase refusing the key."""
    if not code:
        return False
    if code.isdigit() and len(code) == 3:  # bare HTTP status
        return int(code) in _AUTH_HTTP_STATUSES
    if code == _ROLE_MISSING:
        return message.startswith("role ") and message.endswith("does not exist")
    return code.startswith(_AUTH_PGRST_PREFIX)


def is_transient_code(code: str | None) -> bool:
    """Whether an error with this PostgREST/SQLSTATE/HTTP code is worth retrying unchanged (auth codes are not:
    see `is_auth_code`)."""
    if not code:
        return True  # no code at all: we never got a PostgREST answer
    if code.isdigit() and len(code) == 3:  # bare HTTP status
        return int(code) >= 500 or int(code) in (408, 429)
    if code.startswith("PGRST"):
        return code in _TRANSIENT_PGRST
    return code[:2] in _TRANSIENT_SQLSTATE_CLASSES


def translate(exc: BaseException, *, what: str) -> CloudError:
    """Map a foreign exception from supabase-py/postgrest/httpx/websockets to a classified `CloudError`."""
    if isinstance(exc, APIError):
        message = f"{what}: {exc.message or 'request failed'}"
        if exc.details:
            message += f" ({exc.details})" if len(str(exc.details)) < 300 else ""
        cls: type[CloudError]
        if is_auth_code(exc.code, exc.message or ""):
            cls = CloudAuthError
        elif is_transient_code(exc.code):
            cls = CloudTransientError
        else:
            cls = CloudPermanentError
        return cls(message, code=exc.code)
    if isinstance(exc, InvalidStatus):  # Realtime's websocket handshake answered with an HTTP error
        status = exc.response.status_code
        cls = CloudAuthError if status in _AUTH_HTTP_STATUSES else CloudTransientError
        return cls(f"{what}: server rejected the WebSocket connection", code=str(status))
    if isinstance(exc, httpx.TimeoutException):
        return CloudTransientError(f"{what}: timed out")
    if isinstance(exc, httpx.HTTPError | OSError):
        return CloudTransientError(f"{what}: {type(exc).__name__}: {exc}".rstrip(": "))
    return CloudTransientError(f"{what}: {type(exc).__name__}: {exc}")


def realtime_refusal(error: BaseException | str | None, *, what: str) -> CloudAuthError | None:
    """The `CloudAuthError` for a Realtime channel error that refused our token, else None.

    realtime-py reports a refused join as `Exception(json.dumps(payload))`, the payload carrying the server's
    `reason`; a channel can also error for reasons that are not the key (an unknown table, a bad filter)."""
    if error is None:
        return None
    text = str(error)
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    reason = (payload.get("reason") or payload.get("message")) if isinstance(payload, dict) else None
    reason = str(reason) if reason else text
    if _REALTIME_TOKEN_REFUSED not in reason:
        return None
    return CloudAuthError(f"{what}: {reason}")
