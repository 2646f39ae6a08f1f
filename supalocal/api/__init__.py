"""The HTTP side of supalocal: PostgREST (``/rest/v1``) and Realtime (``/realtime/v1/websocket``) stand-ins.

Public surface::

    from supalocal.api import create_app
    app = create_app(dsn="postgresql://postgres@127.0.0.1:5433/postgres", jwt_secret=secret)

Module map: ``query`` (query-string parser) → ``plan`` (request semantics) → ``sql`` (statement
rendering) are pure; ``rest``, ``realtime`` and ``capture`` do the I/O; ``errors`` holds the exception tree.
"""

from __future__ import annotations

from supalocal.api.app import CAPTURE_KEY, POOL_KEY, REALTIME_KEY, REST_KEY, create_app
from supalocal.api.errors import ApiError, AuthError, SchemaCacheMiss

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
