"""supalocal: a local, Supabase-compatible stack (PostgreSQL + PostgREST/Realtime stand-ins).

It is the development, test and embedded-default stand-in for a real Supabase project (docs/LOCAL_STACK.md),
built from the same ``supabase/`` migrations and seed. Public surface::

    from supalocal import Stack
    async with Stack() as s:          # PostgreSQL on a free port, migrated and seeded, HTTP on another
        print(s.url, s.service_key, s.db_url)

``python -m supalocal start|stop|status|reset|run`` drives it from a shell.
"""

from __future__ import annotations

from supalocal.errors import MigrationError, PostgresError, StackError, SupalocalError

__all__ = ["MigrationError", "PostgresError", "Stack", "StackError", "SupalocalError"]


def __getattr__(name: str) -> object:
    # Stack pulls in aiohttp and the API app; import it only when asked for.
    if name == "Stack":
        from supalocal.stack import Stack

        return Stack
    raise AttributeError(f"module 'supalocal' has no attribute {name!r}")
