"""API keys and JWT verification, as PostgREST and Realtime do it (HS256 with the project secret).

``make_api_key("anon", secret=s)`` mints the legacy anon/service_role keys; :func:`verify_token` turns
an ``Authorization``/``apikey`` value into claims or raises :class:`supalocal.api.errors.AuthError`.
The opaque ``sb_publishable_…``/``sb_secret_…`` keys are mapped to anon/service_role the way the
Supabase gateway swaps them for JWTs (docs/LOCAL_STACK.md §5).
"""

from __future__ import annotations

import time
from typing import Any

import jwt

from supalocal.api.errors import AuthError

__all__ = [
    "ANON_ROLE",
    "DEFAULT_PUBLISHABLE_KEY",
    "DEFAULT_SECRET_KEY",
    "MACHINE_ROLE",
    "SERVICE_ROLE",
    "make_api_key",
    "make_machine_key",
    "verify_token",
]

ANON_ROLE = "anon"
SERVICE_ROLE = "service_role"
#: The agent's machine-scoped role (supabase/migrations/*_machine_agent_role.sql).
MACHINE_ROLE = "ald_agent"
ALGORITHM = "HS256"
ISSUER = "supabase-demo"
API_KEY_LIFETIME_S = 10 * 365 * 24 * 3600  # hosted keys live ~10 years
PUBLISHABLE_PREFIX = "sb_publishable_"
SECRET_PREFIX = "sb_secret_"
# The Supabase CLI's local defaults; any other opaque key is rejected.
DEFAULT_PUBLISHABLE_KEY = "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH"
DEFAULT_SECRET_KEY = "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"
_OPAQUE_ROLES = {DEFAULT_PUBLISHABLE_KEY: ANON_ROLE, DEFAULT_SECRET_KEY: SERVICE_ROLE}


def make_api_key(
    role: str, *, secret: str, lifetime_s: int = API_KEY_LIFETIME_S, claims: dict[str, Any] | None = None
) -> str:
    """An HS256 API key with claims ``role``, ``iss``, ``iat`` and ``exp`` (now + ``lifetime_s``)."""
    now = int(time.time())
    payload = {"iss": ISSUER, "role": role, "iat": now, "exp": now + lifetime_s, **(claims or {})}
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def make_machine_key(machine_id: str, *, secret: str, lifetime_s: int = API_KEY_LIFETIME_S) -> str:
    """A key that acts for one machine only: role ``ald_agent`` and claim ``machine_id``. Signed with a
    project's JWT secret, the same key works against a real Supabase project."""
    return make_api_key(MACHINE_ROLE, secret=secret, lifetime_s=lifetime_s, claims={"machine_id": machine_id})


def is_opaque_key(token: str) -> bool:
    """True for ``sb_…`` keys, which Realtime ignores as an ``access_token``."""
    return token.startswith((PUBLISHABLE_PREFIX, SECRET_PREFIX))


def verify_token(token: str | None, *, secret: str) -> dict[str, Any]:
    """Claims of a verified token, ``role`` defaulting to anon; no token means anon.

    Raises:
        AuthError: PGRST303 for an expired token, PGRST301 for anything else invalid.
    """
    if not token:
        return {"role": ANON_ROLE}
    if is_opaque_key(token):
        role = _OPAQUE_ROLES.get(token)
        if role is None:
            raise AuthError("PGRST301", "Invalid API key")
        return {"role": role}
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"verify_aud": False, "require": []},
            leeway=0,
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("PGRST303", "JWT expired") from exc
    except jwt.InvalidSignatureError as exc:
        raise AuthError("PGRST301", "JWSInvalidSignature") from exc
    except jwt.PyJWTError as exc:
        raise AuthError("PGRST301", f"JWSError {type(exc).__name__}") from exc
    if not isinstance(claims, dict):
        raise AuthError("PGRST301", "JWT claims are not an object")
    role = claims.get("role") or ANON_ROLE
    if not isinstance(role, str):
        raise AuthError("PGRST301", "JWT role claim is not a string")
    return {**claims, "role": role}
