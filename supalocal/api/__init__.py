"""The HTTP side of supalocal: PostgREST (``/rest/v1``) and Realtime (``/realtime/v1/websocket``) stand-ins.

Public surface::

    from supalocal.api import create_app
    app = create_app(dsn="postgresql://postgres@127.0.0.1:5433/postgres", jwt_secret=secret)

Module map: ``query`` (query-string parser) → ``plan`` (request semantics) → ``sql`` (statement
rendering) are pure; ``rest``, ``realtime`` and ``capture`` do the I/O; ``errors`` holds the exception tree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from supalocal.api.errors import ApiError, AuthError, SchemaCacheMiss

if TYPE_CHECKING:  # what `__getattr__` loads lazily, typed for the checker
    from supalocal.api.app import CAPTURE_KEY, POOL_KEY, REALTIME_KEY, REST_KEY, create_app

_APP_NAMES = frozenset({"CAPTURE_KEY", "POOL_KEY", "REALTIME_KEY", "REST_KEY", "create_app"})

__all__ = [
    "CAPTURE_KEY",
    "POOL_KEY",
    "REALTIME_KEY",
    "REST_KEY",
    "ApiError",
    "AuthError",
    "SchemaCacheMiss",
    "create_app",
]


def __getattr__(name: str) -> Any:
    # The app pulls in aiohttp, asyncpg and supalocal.auth (which imports our errors): load it lazily so
    # ``supalocal.auth`` -> ``supalocal.api.errors`` does not import the app half-way through.
    if name in _APP_NAMES:
        from supalocal.api import app

        return getattr(app, name)
    raise AttributeError(f"module 'supalocal.api' has no attribute {name!r}")
