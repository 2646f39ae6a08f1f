"""The local stack: PostgreSQL + the ``supabase/`` project + the HTTP API, on free loopback ports.

Start-up order (each step undone in reverse on exit, also when a later step fails):

1. a PostgreSQL cluster (:class:`~supalocal.postgres.PostgresServer`): disposable by default, persistent
   in ``data_dir`` when one is given (``python -m supalocal`` does, unless ``--ephemeral``);
2. bootstrap → migrations → seed over one admin connection, kept for :meth:`Stack.reset` / ``clean``
   (on a persistent cluster that has a history: only the new migrations, see :mod:`supalocal.migrate`);
3. the API app (``supalocal.api.create_app``: ``/rest/v1`` and ``/realtime/v1/websocket``) on one port.

Shutdown: the HTTP site and app (its cleanup contexts close pools and websockets) → the admin
connection → PostgreSQL (fast shutdown, temp dir removed; a persistent data dir stays). Every teardown
error is collected and the first is raised after all steps ran, so a failing step never leaves a
postgres process behind.

:class:`BackgroundStack` runs a :class:`Stack` on its own event loop in a thread: for synchronous
callers, and for pytest, where each test has its own event loop but the stack lives for the session.

Example::

    async with Stack() as s:
        client = await acreate_client(s.url, s.service_key)
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import asyncpg
import jwt
from aiohttp import web

from supalocal import migrate
from supalocal.errors import StackError
from supalocal.postgres import LOOPBACK, PostgresServer

__all__ = ["DEFAULT_JWT_SECRET", "BackgroundStack", "Stack", "StackState"]

# The Supabase CLI's local JWT secret: keys minted with it are the well-known local demo keys' peers.
DEFAULT_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
ANON_ROLE = "anon"
SERVICE_ROLE = "service_role"
# Fallback key claims (as the Supabase CLI's) until/unless supalocal.auth is importable.
FALLBACK_KEY_CLAIMS = {"iss": "supabase-demo", "exp": 1983812996}
HTTP_SHUTDOWN_TIMEOUT_S = 3.0
BACKGROUND_START_TIMEOUT_S = 60.0
BACKGROUND_CALL_TIMEOUT_S = 60.0
BACKGROUND_STOP_TIMEOUT_S = 30.0

T = TypeVar("T")


class StackState(enum.Enum):
    """Lifecycle of a :class:`Stack`; it is entered at most once."""

    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    CLOSED = "closed"


def make_api_key(role: str, *, secret: str) -> str:
    """An HS256 API key for ``role``: the API's own minting when present, else the CLI's claims."""
    try:
        from supalocal.auth import make_api_key as api_make_key
    except ImportError:
        return jwt.encode({**FALLBACK_KEY_CLAIMS, "role": role}, secret, algorithm="HS256")
    return api_make_key(role, secret=secret)


def _create_api_app(*, dsn: str, jwt_secret: str) -> web.Application:
    """The API helper's app, or a placeholder answering 503 while ``supalocal.api`` is absent."""
    try:
        from supalocal.api import create_app
    except ImportError:
        app = web.Application()

        async def unavailable(_request: web.Request) -> web.Response:
            return web.json_response({"message": "supalocal.api is not installed"}, status=503)

        app.router.add_route("*", "/{tail:.*}", unavailable)
        return app
    return create_app(dsn=dsn, jwt_secret=jwt_secret)


class Stack:
    """PostgreSQL, migrated and seeded, plus the Supabase-compatible HTTP API.

    Args:
        port: HTTP port on 127.0.0.1; 0 (default) picks a free one.
        db_port: PostgreSQL port; 0 (default) picks a free one.
        jwt_secret: HS256 secret for the API keys (the Supabase CLI's local secret by default).
        project_dir: the Supabase CLI project (``config.toml``, ``migrations/``, ``seed.sql``).
        durable: keep PostgreSQL's durability settings; ``None`` (default): durable exactly when
            persistent (a throwaway cluster trades them for speed).
        max_connections: PostgreSQL ``max_connections``.
        data_dir: keep PostgreSQL's data here across starts; ``None`` (default): throwaway.

    Attributes (while running): ``url`` (SUPABASE_URL), ``anon_key``, ``service_key``, ``jwt_secret``,
    ``db_url`` (superuser DSN), ``port``, ``db_port``.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        db_port: int = 0,
        jwt_secret: str = DEFAULT_JWT_SECRET,
        project_dir: Path = migrate.DEFAULT_PROJECT_DIR,
        durable: bool | None = None,
        max_connections: int = 100,
        data_dir: Path | None = None,
    ) -> None:
        self._requested_port = port
        self._jwt_secret = jwt_secret
        self._project_dir = Path(project_dir)
        self._pg = PostgresServer(
            port=db_port,
            durable=data_dir is not None if durable is None else durable,
            max_connections=max_connections,
            data_dir=data_dir,
        )
        #: what the start applied (bootstrap, migrations, seed); None until started
        self.opened: migrate.Opened | None = None
        self._state = StackState.NEW
        self._project: migrate.Project | None = None
        self._admin: asyncpg.Connection | None = None
        self._admin_lock = asyncio.Lock()
        self._runner: web.AppRunner | None = None
        self._port = 0
        self.anon_key = make_api_key(ANON_ROLE, secret=jwt_secret)
        self.service_key = make_api_key(SERVICE_ROLE, secret=jwt_secret)
        self.started_in_s = 0.0

    # -- what clients need ------------------------------------------------------------------

    @property
    def state(self) -> StackState:
        return self._state

    @property
    def jwt_secret(self) -> str:
        return self._jwt_secret

    @property
    def port(self) -> int:
        if not self._port or self._state is StackState.CLOSED:
            raise StackError(f"the Stack is {self._state.value}, not serving")
        return self._port

    @property
    def url(self) -> str:
        """SUPABASE_URL: ``/rest/v1`` and ``/realtime/v1/websocket`` live under it."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def db_port(self) -> int:
        return self._pg.port

    @property
    def db_url(self) -> str:
        """Superuser DSN of the database (``postgresql://postgres:postgres@127.0.0.1:<port>/postgres``)."""
        return self._pg.dsn()

    @property
    def project_dir(self) -> Path:
        return self._project_dir

    @property
    def postgres(self) -> PostgresServer:
        return self._pg

    @property
    def app(self) -> web.Application:
        """The served aiohttp application (e.g. to reach the API's ``AppKey`` state in tests)."""
        if self._runner is None:
            raise StackError(f"the Stack is {self._state.value}, not serving")
        return self._runner.app

    def env(self) -> dict[str, str]:
        """The stack as environment variables (the names of docs/CONTRACT.md §7 and the Supabase CLI)."""
        return {
            "SUPABASE_URL": self.url,
            "SUPABASE_ANON_KEY": self.anon_key,
            "SUPABASE_SERVICE_ROLE_KEY": self.service_key,
            "SUPABASE_JWT_SECRET": self.jwt_secret,
            "DATABASE_URL": self.db_url,
        }

    # -- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Stack:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Start PostgreSQL, apply the project, serve the API.

        Raises:
            PostgresError: PostgreSQL could not start.
            MigrationError: the bootstrap, a migration or the seed failed.
            StackError: the HTTP site could not bind, or the stack was started before.
        """
        if self._state is not StackState.NEW:
            raise StackError(f"a Stack starts once; this one is {self._state.value}")
        self._state = StackState.STARTING
        started = time.monotonic()
        try:
            self._project = migrate.load_project(self._project_dir)
            await self._pg.start()
            self._admin = await self._pg.connect()
            self.opened = await migrate.migrate_and_seed(self._admin, self._project)
            await self._serve()
        except BaseException:
            await self.aclose()
            raise
        self._state = StackState.RUNNING
        self.started_in_s = time.monotonic() - started

    async def aclose(self) -> None:
        """Stop everything in reverse order; idempotent. Raises the first teardown error, if any."""
        if self._state is StackState.CLOSED:
            return
        self._state = StackState.CLOSED
        errors: list[BaseException] = []
        if self._runner is not None:
            try:
                await self._runner.cleanup()
            except Exception as exc:
                errors.append(exc)
            self._runner = None
        if self._admin is not None:
            try:
                await self._admin.close(timeout=HTTP_SHUTDOWN_TIMEOUT_S)
            except Exception as exc:
                self._admin.terminate()
                errors.append(exc)
            self._admin = None
        try:
            await self._pg.stop()
        except Exception as exc:
            errors.append(exc)
        if errors:
            raise StackError(f"stack teardown failed: {errors[0]!r}") from errors[0]

    # -- database state ---------------------------------------------------------------------

    async def reset(self) -> None:
        """Re-apply bootstrap, migrations and seed from scratch (``supabase db reset``).

        The API reloads its schema cache on the ``NOTIFY pgrst`` the reset sends; realtime capture
        is re-synchronised here at once rather than at its next periodic pass.
        """
        await self._with_admin(lambda conn, project: migrate.reset_database(conn, project))
        await self._resync_capture()

    async def clean(self) -> None:
        """Truncate every data table and re-apply the seed; the schema stays (fast, per test)."""
        await self._with_admin(lambda conn, project: migrate.clean_database(conn, project))

    async def _with_admin(self, action: Callable[[asyncpg.Connection, migrate.Project], Awaitable[None]]) -> None:
        self._require_running()
        assert self._admin is not None and self._project is not None
        async with self._admin_lock:
            await action(self._admin, self._project)

    # -- internals --------------------------------------------------------------------------

    async def _resync_capture(self) -> None:
        try:
            from supalocal.api.app import CAPTURE_KEY
        except ImportError:
            return
        capture = self.app.get(CAPTURE_KEY) if self._runner is not None else None
        if capture is not None:
            await capture.sync()

    def _require_running(self) -> None:
        if self._state is not StackState.RUNNING:
            raise StackError(f"the Stack is {self._state.value}, not running")

    async def _serve(self) -> None:
        app = _create_api_app(dsn=self._pg.dsn(), jwt_secret=self._jwt_secret)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=HTTP_SHUTDOWN_TIMEOUT_S)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, self._requested_port)
        try:
            await site.start()
        except OSError as exc:
            raise StackError(f"cannot listen on {LOOPBACK}:{self._requested_port}: {exc}") from exc
        self._port = int(self._runner.addresses[0][1])


class BackgroundStack:
    """A :class:`Stack` on its own event loop in a daemon thread, driven from synchronous code.

    ``with BackgroundStack() as s:`` blocks until the stack serves; ``s.reset()``/``s.clean()``
    block until done. Stopping waits for a clean shutdown (no postgres left behind); if the process
    dies instead, the kernel stops PostgreSQL (``PR_SET_PDEATHSIG``).
    """

    def __init__(self, **stack_kwargs: Any) -> None:
        self._stack_kwargs = stack_kwargs
        self._stack: Stack | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> BackgroundStack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def stack(self) -> Stack:
        if self._stack is None:
            raise StackError("the background stack is not running")
        return self._stack

    def __getattr__(self, name: str) -> Any:
        # url, anon_key, service_key, jwt_secret, db_url, port, db_port, env(), started_in_s …
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.stack, name)

    def start(self) -> None:
        """Start the thread and wait until the stack serves (or raise its start-up error)."""
        if self._thread is not None:
            raise StackError("a BackgroundStack starts once")
        self._thread = threading.Thread(target=self._run, name="supalocal-stack", daemon=True)
        self._thread.start()
        if not self._ready.wait(BACKGROUND_START_TIMEOUT_S):
            raise StackError(f"the stack did not start within {BACKGROUND_START_TIMEOUT_S}s")
        if self._error is not None:
            self._thread.join(BACKGROUND_STOP_TIMEOUT_S)
            raise self._error

    def stop(self) -> None:
        """Shut the stack down and join the thread; idempotent."""
        if self._thread is None or not self._thread.is_alive():
            return
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(BACKGROUND_STOP_TIMEOUT_S)
        if self._thread.is_alive():
            raise StackError(f"the stack did not stop within {BACKGROUND_STOP_TIMEOUT_S}s")
        if self._error is not None:
            raise self._error

    def reset(self) -> None:
        """:meth:`Stack.reset`, blocking."""
        self.call(self.stack.reset())

    def clean(self) -> None:
        """:meth:`Stack.clean`, blocking."""
        self.call(self.stack.clean())

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the stack's event loop and wait for its result (e.g. API internals in tests)."""
        if self._loop is None:
            raise StackError("the background stack is not running")
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(BACKGROUND_CALL_TIMEOUT_S)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with Stack(**self._stack_kwargs) as stack:
            self._stack = stack
            self._ready.set()
            await self._stop.wait()
