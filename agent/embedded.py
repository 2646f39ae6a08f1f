"""The embedded default: the local Supabase stack and the reactor simulator as child processes, the agent here.

This is what the README's run command starts on a fresh machine. Each child is like the real thing it
stands for (its own process, real HTTP/websocket and Modbus TCP), so the agent runs exactly as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from agent.app import run_agent
from agent.config import PlcType, Settings
from agent.errors import AgentError

__all__ = ["REFERENCE_MACHINE_ID", "banner", "force_file", "run_embedded"]

#: The reference machine of supabase/seed.sql, which the embedded default runs as.
REFERENCE_MACHINE_ID = "00000000-0000-4000-8000-000000000001"
PR_SET_PDEATHSIG = 1


async def run_embedded(settings: Settings, *, status_every_s: float) -> int:
    """The local Supabase stack and the simulator in child processes (each like the real thing: its own
    process, real TCP), the agent in this one. Ctrl-C (or SIGTERM) stops all three cleanly."""
    async with contextlib.AsyncExitStack() as children:
        print("==> starting the local Supabase stack (supalocal) …", flush=True)
        stack_lines = await _child(children, ["-m", "supalocal", "run", "--name", "embedded"], "DATABASE_URL=")
        env = dict(line.split("=", 1) for line in stack_lines if "=" in line)
        spool = settings.SPOOL_PATH if "SPOOL_PATH" in os.environ else Path("var/embedded/spool.sqlite")
        print("==> starting the reactor simulator …", flush=True)
        sim_lines = await _child(
            children,
            ["-m", "agent", "simulate", "--port", "0", "--watchdog-timeout", str(settings.WATCHDOG_TIMEOUT),
             "--force-file", str(force_file(spool))],
            "listening on ",
        )  # fmt: skip
        host, port = sim_lines[-1].removeprefix("listening on ").strip().rsplit(":", 1)
        embedded = settings.model_copy(
            update={
                "SUPABASE_URL": env["SUPABASE_URL"],
                "SUPABASE_KEY": SecretStr(env["SUPABASE_SERVICE_ROLE_KEY"]),
                "MACHINE_ID": settings.MACHINE_ID or uuid.UUID(REFERENCE_MACHINE_ID),
                "PLC_HOST": host,
                "PLC_PORT": int(port),
                "PLC_TYPE": PlcType.REAL,  # the simulator child above is its PLC, over real TCP
                "SPOOL_PATH": spool,
            }
        )
        print(banner(embedded, database_url=env.get("DATABASE_URL", "?")), flush=True)
        await run_agent(embedded, status_interval_s=status_every_s)
    return 0


def force_file(spool: Path) -> Path:
    """The simulator's force file of the embedded default (agent/plc/sim/forcing.py), beside the spool."""
    return spool.parent / "sim-force.json"


def banner(embedded: Settings, *, database_url: str) -> str:
    """What the embedded default prints once everything is up: where each part listens, and the variables the
    CLI needs in another shell (README: `command …` and `recipe … --id` need SUPABASE_URL, SUPABASE_KEY and
    MACHINE_ID), ready to paste. The key is the local stack's own development key, never a project's."""
    key = embedded.SUPABASE_KEY.get_secret_value() if embedded.SUPABASE_KEY else ""
    return (
        f"\n  Supabase (local)  {embedded.SUPABASE_URL}   database {database_url}\n"
        f"  simulator         modbus://{embedded.PLC_HOST}:{embedded.PLC_PORT}"
        f"   (python -m agent plc read --all --port {embedded.PLC_PORT})\n"
        f"                    drive a value: echo '{{\"chamber_heater.temperature\": 360}}' > "
        f"{force_file(Path(embedded.SPOOL_PATH))}\n"
        f"  agent             http://127.0.0.1:{embedded.HTTP_PORT}/health   /metrics   /health/basic\n"
        f"  machine           {embedded.MACHINE_ID}\n\n"
        "  For the CLI in another shell (python -m agent command …, recipe … --id, machine list):\n"
        f"    export SUPABASE_URL={embedded.SUPABASE_URL}\n"
        f"    export SUPABASE_KEY={key}\n"
        f"    export MACHINE_ID={embedded.MACHINE_ID}\n"
        f"    export PLC_HOST={embedded.PLC_HOST} PLC_PORT={embedded.PLC_PORT}\n\n"
        "  Ctrl-C stops everything.\n"
    )


async def _child(children: contextlib.AsyncExitStack, args: list[str], ready: str) -> list[str]:
    """Start `python ARGS`, read its stdout until a line starts with `ready`; stop it when `children` closes."""
    # Own session: a Ctrl-C on the terminal reaches the agent only, which stops the children itself once the
    # spool is flushed. PR_SET_PDEATHSIG: if the agent is killed outright, the kernel stops them too.
    prctl = _libc_prctl()

    def die_with_parent() -> None:
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=asyncio.subprocess.PIPE, start_new_session=True, preexec_fn=die_with_parent
    )

    async def stop() -> None:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)  # both children stop cleanly on SIGINT, like on Ctrl-C
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()

    children.push_async_callback(stop)
    assert proc.stdout is not None
    lines: list[str] = []
    async with asyncio.timeout(60):
        while True:
            line = (await proc.stdout.readline()).decode()
            if not line:
                raise AgentError(f"python {' '.join(args)} exited before it was ready")
            lines.append(line.strip())
            if line.startswith(ready):
                break
    # Keep reading its stdout so a chatty child never blocks on a full pipe.
    drain = asyncio.create_task(_discard(proc.stdout))
    children.callback(drain.cancel)
    return lines


async def _discard(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


def _libc_prctl() -> Any:
    """`prctl` resolved before forking, so the child only makes a plain C call (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
