"""``python -m supalocal start|stop|status|reset|run|machine-key``: the local stack from a shell.

``start`` launches ``run`` as a background daemon and returns once the stack serves; the daemon's state
(pid, URLs, keys) lives in ``<home>/<name>/state.json`` and its log in ``<home>/<name>/stack.log``, where
``<home>`` is ``--home``, else ``$SUPALOCAL_HOME``, else ``./var/supalocal``. Instances with different
``--name`` run side by side on their own free ports.

Data persists: PostgreSQL's data directory is ``<home>/<name>/pgdata`` and a later ``start``/``run``
comes back on the same data (also after a ``kill -9``), applying only migrations it has not recorded
and seeding only a never-seeded database. ``--ephemeral`` instead runs on a throwaway cluster removed
at stop (what tests use). ``reset`` wipes on purpose: in place on a running instance, else it deletes
the data directory so the next start begins from scratch.

Every command that finds the stack running prints it env-file style on stdout::

    SUPABASE_URL=http://127.0.0.1:41234
    SUPABASE_ANON_KEY=eyJ…
    SUPABASE_SERVICE_ROLE_KEY=eyJ…
    SUPABASE_JWT_SECRET=…
    DATABASE_URL=postgresql://postgres:postgres@127.0.0.1:40321/postgres

Exit codes: 0 ok, 1 failure, 2 bad usage, 3 not running (``status``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg

from supalocal import migrate
from supalocal.auth import make_machine_key
from supalocal.errors import SupalocalError
from supalocal.pgfiles import pid_alive

__all__ = ["main"]

DEFAULT_NAME = "default"
HOME_ENV = "SUPALOCAL_HOME"
JWT_SECRET_ENV = "SUPALOCAL_JWT_SECRET"
DEFAULT_HOME = Path("var") / "supalocal"
STATE_FILE = "state.json"
LOG_FILE = "stack.log"
DATA_DIR = "pgdata"
PG_LOG_FILE = "postgres.log"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
POLL_S = 0.05
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3
LOG_TAIL_LINES = 20


# -- state ------------------------------------------------------------------------------------------


def _instance_dir(args: argparse.Namespace) -> Path:
    home = Path(args.home or os.environ.get(HOME_ENV) or DEFAULT_HOME)
    name: str = args.name
    return home / name


def _data_dir(instance: Path) -> Path:
    return instance / DATA_DIR


def _pid_alive(pid: int) -> bool:
    """Our daemon is alive: the pid exists and (a recycled pid belongs to someone else) runs "-m supalocal"."""
    if not pid_alive(pid):
        return False
    try:
        return b"supalocal" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True


def _read_state(instance: Path) -> dict[str, Any] | None:
    """The running instance's state, or None (a stale file of a dead daemon is removed)."""
    path = instance / STATE_FILE
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not _pid_alive(int(state.get("pid", 0))):
        path.unlink(missing_ok=True)
        return None
    return state


def _write_state(instance: Path, state: dict[str, Any]) -> None:
    instance.mkdir(parents=True, exist_ok=True)
    tmp = instance / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(state, indent=2))
    tmp.chmod(0o600)  # it holds the service-role key
    tmp.replace(instance / STATE_FILE)


def _print_env(state: dict[str, Any]) -> None:
    for name, value in state["env"].items():
        print(f"{name}={value}")
    sys.stdout.flush()


def _log_tail(instance: Path) -> str:
    try:
        return "\n".join((instance / LOG_FILE).read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:])
    except OSError:
        return "(no log)"


# -- commands ---------------------------------------------------------------------------------------


async def _run_stack(args: argparse.Namespace, instance: Path) -> None:
    from supalocal.stack import DEFAULT_JWT_SECRET, Stack  # aiohttp & co. only where needed: fast CLI

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Stack(
        port=args.port,
        db_port=args.db_port,
        jwt_secret=args.jwt_secret or DEFAULT_JWT_SECRET,
        project_dir=args.project_dir,
        data_dir=None if args.ephemeral else _data_dir(instance),
    ) as stack:
        opened = stack.opened
        if opened is not None:
            where = "ephemeral" if args.ephemeral else str(_data_dir(instance))
            print(
                f"==> supalocal {args.name} data: {where}; "
                f"{'new database' if opened.bootstrapped else 'existing database'}, "
                f"{len(opened.migrations)} migration(s) applied{', seeded' if opened.seeded else ''}",
                file=sys.stderr,
            )
        state = {
            "pid": os.getpid(),
            "name": args.name,
            "project_dir": str(stack.project_dir),
            "ephemeral": bool(args.ephemeral),
            "started_in_s": round(stack.started_in_s, 3),
            "env": stack.env(),
        }
        _write_state(instance, state)
        try:
            print(f"==> supalocal {args.name} up in {stack.started_in_s:.2f}s", file=sys.stderr)
            _print_env(state)
            await stop.wait()
            print(f"==> supalocal {args.name} stopping", file=sys.stderr)
        finally:
            (instance / STATE_FILE).unlink(missing_ok=True)


def cmd_run(args: argparse.Namespace) -> int:
    """Foreground: serve until SIGINT/SIGTERM, then stop everything."""
    instance = _instance_dir(args)
    if _read_state(instance) is not None:
        print(f"error: supalocal {args.name} is already running (python -m supalocal stop)", file=sys.stderr)
        return EXIT_FAILURE
    asyncio.run(_run_stack(args, instance))
    return EXIT_OK


def cmd_start(args: argparse.Namespace) -> int:
    """Background: launch ``run`` as a daemon and wait until it serves."""
    instance = _instance_dir(args)
    state = _read_state(instance)
    if state is not None:
        print(f"==> supalocal {args.name} already running (pid {state['pid']})", file=sys.stderr)
        _print_env(state)
        return EXIT_OK
    instance.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "supalocal", "run", "--name", args.name, "--home", str(instance.parent)]
    command += ["--port", str(args.port), "--db-port", str(args.db_port), "--project-dir", str(args.project_dir)]
    if args.ephemeral:
        command.append("--ephemeral")
    env = dict(os.environ)
    if args.jwt_secret:  # through the environment, not argv: `ps` shows argv to everyone
        env[JWT_SECRET_ENV] = args.jwt_secret
    with open(instance / LOG_FILE, "ab") as log:
        daemon = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, env=env
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        state = _read_state(instance)
        if state is not None and state["pid"] == daemon.pid:
            print(f"==> supalocal {args.name} started (pid {daemon.pid})", file=sys.stderr)
            _print_env(state)
            return EXIT_OK
        if daemon.poll() is not None:
            print(f"error: supalocal {args.name} failed to start:\n{_log_tail(instance)}", file=sys.stderr)
            return EXIT_FAILURE
        time.sleep(POLL_S)
    daemon.terminate()
    print(f"error: supalocal {args.name} did not start within {START_TIMEOUT_S}s", file=sys.stderr)
    return EXIT_FAILURE


def cmd_stop(args: argparse.Namespace) -> int:
    """Stop the daemon (it stops PostgreSQL; only an ephemeral one's data goes with it); idempotent."""
    instance = _instance_dir(args)
    state = _read_state(instance)
    if state is None:
        print(f"==> supalocal {args.name} is not running", file=sys.stderr)
        return EXIT_OK
    pid = int(state["pid"])
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    if _pid_alive(pid):
        # the kernel then stops PostgreSQL too (PR_SET_PDEATHSIG)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        print(f"error: supalocal {args.name} did not stop in {STOP_TIMEOUT_S}s; killed", file=sys.stderr)
    (instance / STATE_FILE).unlink(missing_ok=True)
    print(f"==> supalocal {args.name} stopped", file=sys.stderr)
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    """Exit 0 and print the env if running, else exit 3."""
    state = _read_state(_instance_dir(args))
    if state is None:
        print(f"supalocal {args.name} is not running", file=sys.stderr)
        return EXIT_NOT_RUNNING
    _print_env(state)
    return EXIT_OK


async def _reset(state: dict[str, Any]) -> None:
    project = migrate.load_project(Path(state["project_dir"]))
    conn = await asyncpg.connect(state["env"]["DATABASE_URL"])
    try:
        await migrate.reset_database(conn, project)
    finally:
        await conn.close()


def cmd_reset(args: argparse.Namespace) -> int:
    """Wipe the data on purpose: re-apply migrations and seed on the running instance, or, when it is not
    running, delete its data directory so the next start begins from scratch."""
    instance = _instance_dir(args)
    state = _read_state(instance)
    if state is None:
        data_dir = _data_dir(instance)
        shutil.rmtree(data_dir, ignore_errors=True)
        (instance / PG_LOG_FILE).unlink(missing_ok=True)
        if data_dir.exists():
            print(f"error: could not remove {data_dir}", file=sys.stderr)
            return EXIT_FAILURE
        print(f"==> supalocal {args.name} is not running; its data ({data_dir}) is wiped", file=sys.stderr)
        return EXIT_OK
    asyncio.run(_reset(state))
    print(f"==> supalocal {args.name} reset (migrations and seed re-applied)", file=sys.stderr)
    _print_env(state)
    return EXIT_OK


def cmd_machine_key(args: argparse.Namespace) -> int:
    """Print a key scoped to one machine (role ald_agent): for the agent's SUPABASE_KEY on that machine.

    Signed with --jwt-secret (a real project's JWT secret), else with the running instance's secret."""
    secret = args.jwt_secret
    if not secret:
        state = _read_state(_instance_dir(args))
        if state is None:
            print(f"error: supalocal {args.name} is not running and no --jwt-secret was given", file=sys.stderr)
            return EXIT_NOT_RUNNING
        secret = state["env"]["SUPABASE_JWT_SECRET"]
    print(make_machine_key(str(args.machine), secret=secret, lifetime_s=int(args.days * 86400)))
    return EXIT_OK


COMMANDS = {
    "start": cmd_start,
    "stop": cmd_stop,
    "status": cmd_status,
    "reset": cmd_reset,
    "run": cmd_run,
    "machine-key": cmd_machine_key,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m supalocal",
        description="Local Supabase-compatible stack (PostgreSQL + /rest/v1 + /realtime/v1) for ald-agent.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}")
    helps = {
        "start": "start in the background and print the env",
        "stop": "stop (no postgres left behind; the data stays unless --ephemeral)",
        "status": "print the env if running (exit 0), else exit 3",
        "reset": "wipe the data: re-apply migrations and seed (running), or delete the data dir (stopped)",
        "run": "run in the foreground until Ctrl-C",
        "machine-key": "print an agent key scoped to one machine (role ald_agent)",
    }
    for name, text in helps.items():
        cmd = sub.add_parser(name, help=text, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        cmd.add_argument("--name", default=DEFAULT_NAME, help="instance name (several can run side by side)")
        cmd.add_argument("--home", default=None, help=f"state dir (default ${HOME_ENV} or ./{DEFAULT_HOME})")
        if name == "machine-key":
            cmd.add_argument("--machine", type=uuid.UUID, required=True, help="the machine's id (uuid)")
            cmd.add_argument("--days", type=float, default=365.0, help="validity")
            cmd.add_argument("--jwt-secret", default=None, help="sign with this secret (a project's JWT secret)")
        if name in ("start", "run"):
            cmd.add_argument("--port", type=int, default=0, help="HTTP port (0 = a free one)")
            cmd.add_argument("--db-port", type=int, default=0, help="PostgreSQL port (0 = a free one)")
            cmd.add_argument(
                "--project-dir", type=Path, default=migrate.DEFAULT_PROJECT_DIR, help="Supabase CLI project"
            )
            cmd.add_argument(
                "--ephemeral",
                action="store_true",
                help=f"a throwaway database removed at stop, instead of <home>/<name>/{DATA_DIR}",
            )
            cmd.add_argument(
                "--jwt-secret",
                default=os.environ.get(JWT_SECRET_ENV),
                help=f"HS256 secret of the API keys (env {JWT_SECRET_ENV}; default: the Supabase CLI's)",
            )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)  # bad usage: usage on stderr, exit 2
    try:
        return COMMANDS[args.command](args)
    except SupalocalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE
