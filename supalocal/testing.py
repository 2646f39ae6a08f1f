"""pytest plugin: one local Supabase stack per test session, a known database state per test.

Enable it with ``pytest_plugins = ["supalocal.testing"]`` in ``tests/conftest.py``.

Fixtures:
- ``supabase_stack`` (session): a :class:`~supalocal.stack.BackgroundStack` — PostgreSQL migrated and
  seeded, the API on a free port — exposing ``url``, ``anon_key``, ``service_key``, ``jwt_secret``,
  ``db_url``, ``port``, ``db_port``, ``env()``, and blocking ``reset()``/``clean()``. It runs on its own
  event loop in a thread, so sync tests and async tests (each on its own loop) can all use it.
  Several pytest sessions (e.g. xdist workers) each get their own stack on their own ports.
- ``clean_db`` (function): the session stack, with data tables truncated and the seed re-applied
  before the test and again after it, so each test starts from the seed and leaves nothing behind.
  It costs two truncate+seed round trips (well under 200 ms), never an ``initdb``.
- ``supabase_env`` (function): ``clean_db`` plus ``SUPABASE_URL``, ``SUPABASE_KEY`` (service role),
  ``SUPABASE_ANON_KEY``, ``SUPABASE_SERVICE_ROLE_KEY``, ``DATABASE_URL`` and ``MACHINE_ID`` (the seeded
  reference machine) set in ``os.environ`` for the test's duration.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from supalocal.stack import BackgroundStack

__all__ = ["SEED_MACHINE_ID", "clean_db", "supabase_env", "supabase_stack"]

# The reference machine seeded by supabase/seed.sql.
SEED_MACHINE_ID = "00000000-0000-4000-8000-000000000001"


@pytest.fixture(scope="session")
def supabase_stack() -> Iterator[BackgroundStack]:
    """The session's stack; torn down (no postgres left behind) when the session ends."""
    with BackgroundStack() as stack:
        yield stack


@pytest.fixture
def clean_db(supabase_stack: BackgroundStack) -> Iterator[BackgroundStack]:
    """The session stack at its seed state; whatever the test wrote is removed afterwards."""
    supabase_stack.clean()
    yield supabase_stack
    supabase_stack.clean()


@pytest.fixture
def supabase_env(clean_db: BackgroundStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[BackgroundStack]:
    """``clean_db`` with the stack's coordinates in the environment (docs/CONTRACT.md §7 names)."""
    env = clean_db.env()
    env["SUPABASE_KEY"] = clean_db.service_key
    env["MACHINE_ID"] = SEED_MACHINE_ID
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield clean_db
