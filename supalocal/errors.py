"""Errors of the stack's database side and lifecycle (the HTTP side has ``supalocal.api.errors``).

Exception tree::

    SupalocalError(Exception)
    ├── PostgresError        the PostgreSQL server could not be found, initialised, started or stopped
    ├── MigrationError       bootstrap, a migration or the seed failed to apply (names the file)
    └── StackError           the stack as a whole: misuse of its lifecycle, the HTTP site failed to bind

Foreign errors (``OSError``, ``asyncpg.PostgresError``) are translated where they happen with
``raise … from exc`` so the original cause stays attached.
"""

from __future__ import annotations

__all__ = ["MigrationError", "PostgresError", "StackError", "SupalocalError"]


class SupalocalError(Exception):
    """Base of every error the local stack raises on its own account."""


class PostgresError(SupalocalError):
    """The PostgreSQL server could not be found, initialised, started or stopped."""


class MigrationError(SupalocalError):
    """Bootstrap, a migration or the seed failed to apply; the message names the file."""


class StackError(SupalocalError):
    """The stack's lifecycle was misused or one of its parts failed to start."""
