"""Admin authorisation: `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time.

Admin endpoints (handover, drain) change who commands the machine, so the rules are strict: no configured
token (or an empty one) means admin is disabled and every request is refused; the header must be exactly the
Bearer scheme (case-insensitive, as RFC 7235 says) followed by the token. Refusals answer 401 with a JSON body
and are logged in the "security" area with method, path and peer, never with the token or the header.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable
from enum import StrEnum

from aiohttp import web
from loguru import logger

__all__ = ["ADMIN_TOKEN_KEY", "AuthOutcome", "Handler", "authorize", "require_admin"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ADMIN_TOKEN_KEY = web.AppKey("admin_token", str)  # absent or "" → admin disabled
BEARER = "bearer"
HTTP_UNAUTHORIZED = 401

_log = logger.bind(area="security")


class AuthOutcome(StrEnum):
    GRANTED = "granted"
    DISABLED = "admin endpoints are disabled (no ADMIN_TOKEN configured)"
    MISSING = "missing Authorization header"
    MALFORMED = "Authorization is not a Bearer token"
    WRONG = "wrong admin token"


def authorize(header: str | None, token: str | None) -> AuthOutcome:
    """Decide one request from its Authorization header and the configured token (pure, constant-time compare)."""
    if not token:
        return AuthOutcome.DISABLED
    if header is None or not header.strip():
        return AuthOutcome.MISSING
    scheme, _, presented = header.strip().partition(" ")
    presented = presented.strip()
    if scheme.lower() != BEARER or not presented:
        return AuthOutcome.MALFORMED
    # bytes, not str: compare_digest refuses non-ASCII str, and a client may send anything
    if hmac.compare_digest(presented.encode(), token.encode()):
        return AuthOutcome.GRANTED
    return AuthOutcome.WRONG


def require_admin(handler: Handler) -> Handler:
    """Wrap an aiohttp handler so it runs only for a request carrying the admin token (else 401 JSON)."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        outcome = authorize(request.headers.get("Authorization"), request.config_dict.get(ADMIN_TOKEN_KEY))
        if outcome is not AuthOutcome.GRANTED:
            _log.warning("admin request refused: {} {} from {}: {}", request.method, request.path, request.remote,
                         outcome.value)  # fmt: skip
            return web.json_response(
                {"error": "unauthorized", "detail": outcome.value},
                status=HTTP_UNAUTHORIZED,
                headers={"WWW-Authenticate": 'Bearer realm="ald-agent admin"'},
            )
        _log.info("admin request: {} {} from {}", request.method, request.path, request.remote)
        return await handler(request)

    return guarded
