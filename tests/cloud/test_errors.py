"""The cloud error classification decides whether a spool record is kept and retried or set aside.

`translate` turns every foreign error from supabase-py/postgrest/httpx/websockets into a `CloudTransientError`
(RETRY: the shipper keeps the record and tries again with backoff), a `CloudPermanentError` (QUARANTINE: the record
is moved to the spool's quarantine with the error and its code) or a `CloudAuthError` (HOLD: Supabase refused the
key, so every record stays in the spool, the shipper backs off and /health says why). The errors here are the real
library types, built the way the libraries build them (a bare HTTP status comes from postgrest's own
`generate_default_error_message`, a refused websocket handshake from websockets' own response type).
"""

from __future__ import annotations

import json
import socket

import httpx
import pytest
from postgrest.exceptions import APIError, APIErrorFromJSON, generate_default_error_message
from pydantic import ValidationError
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.http11 import Response

from agent.cloud import is_auth_code, is_transient_code, realtime_refusal, translate
from agent.errors import CloudAuthError, CloudError, CloudPermanentError, CloudTransientError

RETRY = CloudTransientError
QUARANTINE = CloudPermanentError
HOLD = CloudAuthError
URL = "http://127.0.0.1:54321/rest/v1/readings"
REQUEST = httpx.Request("POST", URL)


def api_error(code: str | None, message: str = "refused", details: str | None = None) -> APIError:
    """An error as postgrest raises it from a PostgREST JSON error body."""
    return APIError({"message": message, "code": code, "hint": None, "details": details})


def bare_status(status: int, body: str = "<html>proxy error page</html>") -> APIError:
    """An error as postgrest raises it when the body is not PostgREST JSON (a proxy or load balancer answered)."""
    return APIError(generate_default_error_message(httpx.Response(status, text=body, request=REQUEST)))


def validation_error() -> ValidationError:
    try:
        APIErrorFromJSON.model_validate_json(b"<html>not json</html>")
    except ValidationError as exc:
        return exc
    raise AssertionError("the body parsed")


def json_error() -> json.JSONDecodeError:
    try:
        json.loads("{truncated")
    except json.JSONDecodeError as exc:
        return exc
    raise AssertionError("the body parsed")


# --- PostgREST / PostgreSQL answers: (error, outcome) ------------------------------------------------------

API_CASES = [
    # bare HTTP statuses (no PostgREST body): 5xx, 408 and 429 are worth waiting for, other 4xx are not
    pytest.param(bare_status(400), QUARANTINE, id="http-400-bad-request"),
    pytest.param(bare_status(404), QUARANTINE, id="http-404-not-found"),
    pytest.param(bare_status(405), QUARANTINE, id="http-405-method-not-allowed"),
    pytest.param(bare_status(408), RETRY, id="http-408-request-timeout"),
    pytest.param(bare_status(409), QUARANTINE, id="http-409-conflict"),
    pytest.param(bare_status(413), QUARANTINE, id="http-413-payload-too-large"),
    pytest.param(bare_status(422), QUARANTINE, id="http-422-unprocessable"),
    pytest.param(bare_status(429), RETRY, id="http-429-too-many-requests"),
    pytest.param(bare_status(499), QUARANTINE, id="http-499-border-below-5xx"),
    pytest.param(bare_status(500), RETRY, id="http-500-internal"),
    pytest.param(bare_status(502), RETRY, id="http-502-bad-gateway"),
    pytest.param(bare_status(503), RETRY, id="http-503-unavailable"),
    pytest.param(bare_status(504), RETRY, id="http-504-gateway-timeout"),
    pytest.param(bare_status(520), RETRY, id="http-520-cdn-unknown"),
    # PostgREST's own codes: PGRST000-003 are the database unreachable or overloaded, the rest are the request
    pytest.param(api_error("PGRST000"), RETRY, id="pgrst000-db-connection-failed"),
    pytest.param(api_error("PGRST001"), RETRY, id="pgrst001-db-connection-internal"),
    pytest.param(api_error("PGRST002"), RETRY, id="pgrst002-schema-cache-not-ready"),
    pytest.param(api_error("PGRST003"), RETRY, id="pgrst003-pool-timeout"),
    pytest.param(api_error("PGRST100"), QUARANTINE, id="pgrst100-bad-query-string"),
    pytest.param(api_error("PGRST102"), QUARANTINE, id="pgrst102-bad-body"),
    pytest.param(api_error("PGRST116"), QUARANTINE, id="pgrst116-not-exactly-one-row"),
    pytest.param(api_error("PGRST200"), QUARANTINE, id="pgrst200-no-relationship"),
    pytest.param(api_error("PGRST202"), QUARANTINE, id="pgrst202-unknown-function"),
    pytest.param(api_error("PGRST204"), QUARANTINE, id="pgrst204-unknown-column"),
    pytest.param(api_error("PGRST205"), QUARANTINE, id="pgrst205-unknown-table"),
    # SQLSTATE classes PostgREST answers with 5xx: the database, not the row, is the problem
    pytest.param(api_error("08006"), RETRY, id="sqlstate-08006-connection-failure"),
    pytest.param(api_error("08001"), RETRY, id="sqlstate-08001-cannot-connect"),
    pytest.param(api_error("40001"), RETRY, id="sqlstate-40001-serialization-failure"),
    pytest.param(api_error("40P01"), RETRY, id="sqlstate-40P01-deadlock"),
    pytest.param(api_error("53300"), RETRY, id="sqlstate-53300-too-many-connections"),
    pytest.param(api_error("53100"), RETRY, id="sqlstate-53100-disk-full"),
    pytest.param(api_error("57014"), RETRY, id="sqlstate-57014-statement-timeout"),
    pytest.param(api_error("57P01"), RETRY, id="sqlstate-57P01-admin-shutdown"),
    pytest.param(api_error("58030"), RETRY, id="sqlstate-58030-io-error"),
    pytest.param(api_error("XX000"), RETRY, id="sqlstate-XX000-internal"),
    # …and the classes that mean the row or the request is wrong: retrying it unchanged cannot succeed
    pytest.param(api_error("23505"), QUARANTINE, id="sqlstate-23505-unique-violation"),
    pytest.param(api_error("23503"), QUARANTINE, id="sqlstate-23503-foreign-key"),
    pytest.param(api_error("23502"), QUARANTINE, id="sqlstate-23502-not-null"),
    pytest.param(api_error("23514"), QUARANTINE, id="sqlstate-23514-check"),
    pytest.param(api_error("22P02"), QUARANTINE, id="sqlstate-22P02-invalid-text"),
    pytest.param(api_error("22001"), QUARANTINE, id="sqlstate-22001-string-too-long"),
    pytest.param(api_error("22003"), QUARANTINE, id="sqlstate-22003-numeric-out-of-range"),
    pytest.param(api_error("42P01"), QUARANTINE, id="sqlstate-42P01-undefined-table"),
    pytest.param(api_error("42703"), QUARANTINE, id="sqlstate-42703-undefined-column"),
    pytest.param(api_error("42883"), QUARANTINE, id="sqlstate-42883-undefined-function"),
    pytest.param(api_error("P0001"), QUARANTINE, id="sqlstate-P0001-raise-exception"),
    # Class 55 is not in the retried set today, though PostgREST answers it with 500: a lock timeout (55P03)
    # or an object in use (55006) sets the batch aside instead of waiting for the lock.
    pytest.param(api_error("55P03"), QUARANTINE, id="sqlstate-55P03-lock-not-available-today"),
    pytest.param(api_error("55006"), QUARANTINE, id="sqlstate-55006-object-in-use-today"),
    # no code at all: PostgREST never answered, so nothing says the request is wrong
    pytest.param(api_error(None), RETRY, id="no-code"),
    pytest.param(api_error(""), RETRY, id="empty-code"),
]

# The key itself refused (expired, invalid, revoked, no key): HOLD, never quarantine. 42501 stays QUARANTINE: row-level
# security refusing a machine key another machine's row is a property of that record (agent/cloud/errors.py).
AUTH_CASES = [
    pytest.param(bare_status(401), HOLD, id="http-401-unauthorized"),
    pytest.param(bare_status(403), HOLD, id="http-403-forbidden"),
    pytest.param(api_error("PGRST300", "Server lacks JWT secret"), HOLD, id="pgrst300-server-cannot-verify-keys"),
    pytest.param(api_error("PGRST301", "Invalid API key"), HOLD, id="pgrst301-invalid-key"),
    pytest.param(api_error("PGRST301", "JWSInvalidSignature"), HOLD, id="pgrst301-signed-with-another-secret"),
    pytest.param(api_error("PGRST302", "Anonymous access is disabled"), HOLD, id="pgrst302-no-key"),
    pytest.param(api_error("PGRST303", "JWT expired"), HOLD, id="pgrst303-expired-key"),
    pytest.param(api_error("22023", 'role "ald_agent" does not exist'), HOLD, id="sqlstate-22023-key-role-missing"),
    pytest.param(api_error("22023", "invalid value for parameter"), QUARANTINE, id="sqlstate-22023-other-is-data"),
    pytest.param(api_error("42501", "permission denied for table readings"), QUARANTINE, id="sqlstate-42501-denied"),
    pytest.param(
        api_error("42501", 'new row violates row-level security policy for table "commands"'),
        QUARANTINE,
        id="sqlstate-42501-rls-another-machines-row",
    ),
]


@pytest.mark.parametrize(("error", "outcome"), API_CASES)
def test_a_postgrest_answer_is_retried_or_quarantined_by_its_code(error: APIError, outcome: type[CloudError]) -> None:
    translated = translate(error, what="upsert readings")
    assert (type(translated), translated.code) == (outcome, error.code)
    assert is_transient_code(error.code) is (outcome is RETRY)
    assert not is_auth_code(error.code, error.message or "")


@pytest.mark.parametrize(("error", "outcome"), AUTH_CASES)
def test_an_expired_or_revoked_key_is_held_not_quarantined(error: APIError, outcome: type[CloudError]) -> None:
    translated = translate(error, what="upsert readings")
    assert (type(translated), translated.code) == (outcome, error.code)
    assert is_auth_code(error.code, error.message or "") is (outcome is HOLD)
    assert not is_transient_code(error.code)


# --- Realtime: a refused handshake, a refused channel join -------------------------------------------------


def handshake(status: int) -> InvalidStatus:
    """What websockets raises when the server answers the upgrade with an HTTP error."""
    return InvalidStatus(Response(status, "refused", Headers(), b'{"message":"Invalid API key"}'))


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        pytest.param(401, HOLD, id="handshake-401"),
        pytest.param(403, HOLD, id="handshake-403"),
        pytest.param(502, RETRY, id="handshake-502-gateway"),
        pytest.param(404, RETRY, id="handshake-404-wrong-path-is-not-the-key"),
    ],
)
def test_a_refused_realtime_handshake_is_the_key_only_for_401_and_403(status: int, outcome: type[CloudError]) -> None:
    translated = translate(handshake(status), what="realtime connect")
    assert (type(translated), translated.code) == (outcome, str(status))
    assert str(translated) == f"realtime connect: server rejected the WebSocket connection ({status})"


@pytest.mark.parametrize(
    ("error", "said"),
    [
        pytest.param(
            Exception(json.dumps({"reason": "InvalidJWTToken: Token has expired 12 seconds ago"})),
            "realtime commands: InvalidJWTToken: Token has expired 12 seconds ago",
            id="join-refused-expired",
        ),
        pytest.param(
            Exception(json.dumps({"status": "error", "message": "InvalidJWTToken: JWSInvalidSignature"})),
            "realtime commands: InvalidJWTToken: JWSInvalidSignature",
            id="channel-error-bad-signature",
        ),
        pytest.param("InvalidJWTToken: not json", "realtime commands: InvalidJWTToken: not json", id="plain-text"),
        pytest.param(Exception(json.dumps({"reason": "unmatched topic"})), None, id="other-join-error"),
        pytest.param(
            Exception("mismatch between server and client bindings for postgres changes"), None, id="binding-mismatch"
        ),
        pytest.param(None, None, id="no-error"),
    ],
)
def test_a_realtime_channel_error_is_the_key_only_when_the_token_was_refused(
    error: BaseException | str | None, said: str | None
) -> None:
    refusal = realtime_refusal(error, what="realtime commands")
    assert (None if refusal is None else str(refusal)) == said


def test_postgrest_reads_a_bare_status_as_its_number() -> None:
    """The bare-status rows rest on this: without a PostgREST body, the code is the HTTP status."""
    assert bare_status(502).code == "502"


# --- no answer from PostgREST at all: always RETRY, and no code (the client then reports it unreachable) --

TRANSPORT_CASES = [
    pytest.param(httpx.ConnectTimeout("timed out", request=REQUEST), "timed out", id="httpx-connect-timeout"),
    pytest.param(httpx.ReadTimeout("timed out", request=REQUEST), "timed out", id="httpx-read-timeout"),
    pytest.param(httpx.WriteTimeout("timed out", request=REQUEST), "timed out", id="httpx-write-timeout"),
    pytest.param(httpx.PoolTimeout("timed out", request=REQUEST), "timed out", id="httpx-pool-timeout"),
    pytest.param(
        httpx.ConnectError("All connection attempts failed", request=REQUEST),
        "ConnectError: All connection attempts failed",
        id="httpx-connect-error",
    ),
    pytest.param(httpx.ReadError("", request=REQUEST), "ReadError", id="httpx-read-error-without-text"),
    pytest.param(httpx.WriteError("broken pipe", request=REQUEST), "WriteError: broken pipe", id="httpx-write-error"),
    pytest.param(
        httpx.RemoteProtocolError("Server disconnected without sending a response.", request=REQUEST),
        "RemoteProtocolError: Server disconnected without sending a response.",
        id="httpx-remote-protocol-error",
    ),
    pytest.param(httpx.ProxyError("proxy refused", request=REQUEST), "ProxyError: proxy refused", id="httpx-proxy"),
    pytest.param(
        httpx.DecodingError("bad gzip", request=REQUEST), "DecodingError: bad gzip", id="httpx-decoding-error"
    ),
    # httpx's status error is an HTTPError too: retried whatever the status (postgrest raises APIError instead)
    pytest.param(
        httpx.HTTPStatusError("400 Bad Request", request=REQUEST, response=httpx.Response(400, request=REQUEST)),
        "HTTPStatusError: 400 Bad Request",
        id="httpx-status-error-400-retried",
    ),
    pytest.param(ConnectionRefusedError(111, "Connection refused"), "ConnectionRefusedError", id="os-refused"),
    pytest.param(ConnectionResetError(104, "Connection reset by peer"), "ConnectionResetError", id="os-reset"),
    pytest.param(socket.gaierror(-3, "Temporary failure in name resolution"), "gaierror", id="os-dns-failure"),
    pytest.param(TimeoutError("timed out"), "TimeoutError: timed out", id="builtin-timeout-error"),
    # a body that is not JSON, or not the shape expected, and any other surprise: kept and retried, never dropped
    pytest.param(json_error(), "JSONDecodeError", id="json-decode-error"),
    pytest.param(validation_error(), "ValidationError", id="pydantic-validation-error"),
    pytest.param(RuntimeError("event loop is closed"), "RuntimeError: event loop is closed", id="unexpected"),
]


@pytest.mark.parametrize(("error", "said"), TRANSPORT_CASES)
def test_no_answer_from_postgrest_is_retried_without_a_code(error: BaseException, said: str) -> None:
    translated = translate(error, what="upsert readings")
    assert (type(translated), translated.code) == (RETRY, None)
    assert str(translated).startswith(f"upsert readings: {said}")


# --- what the quarantine row and the log line say -----------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "message"),
    [
        pytest.param(
            api_error("23505", "duplicate key value", details="Key (id)=(7) already exists."),
            "insert alarms: duplicate key value (Key (id)=(7) already exists.) (23505)",
            id="short-details-kept",
        ),
        pytest.param(
            api_error("23505", "duplicate key value", details="x" * 300),
            "insert alarms: duplicate key value (23505)",
            id="long-details-left-out",
        ),
        pytest.param(api_error("23505", ""), "insert alarms: request failed (23505)", id="no-message"),
        pytest.param(api_error(None, "no route"), "insert alarms: no route", id="no-code"),
    ],
)
def test_the_message_names_the_call_the_error_and_its_code(error: APIError, message: str) -> None:
    assert str(translate(error, what="insert alarms")) == message
