"""The telemetry bench's child processes: the local stack and the agent, plus /proc readings of a child.

Why separate processes: RSS and CPU must be the agent's own (read from /proc/<pid>), and neither the
stack's PostgreSQL/API work nor the bench's probes may run on the agent's event loop. Children start in
their own session, so a Ctrl-C in the terminal reaches only the bench, which then stops them in order
(agent → simulator → stack): SIGTERM, and SIGKILL after a grace period. PostgreSQL dies with the stack
process in any case (the stack sets PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from agent.config import Settings
from tests.support.ports import free_port

__all__ = ["AgentProcess", "ProcSample", "StackProcess", "free_port", "read_proc"]

REPO = Path(__file__).resolve().parent.parent
STACK_START_TIMEOUT_S = 60.0
AGENT_READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 20.0  # the agent flushes its spool on SIGTERM (SHUTDOWN_TIMEOUT, set lower by the bench)
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


@dataclass(frozen=True, slots=True)
class ProcSample:
    rss_mb: float
    hwm_mb: float  # peak RSS since the process started
    cpu_s: float  # user + system, all threads


def read_proc(pid: int) -> ProcSample:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(stat[11]), int(stat[12])  # fields 14 and 15 of proc(5), counted after "pid (comm)"
    return ProcSample(
        rss_mb=int(fields["VmRSS"].split()[0]) / 1024,
        hwm_mb=int(fields["VmHWM"].split()[0]) / 1024,
        cpu_s=(utime + stime) / CLK_TCK,
    )


def _stop(proc: subprocess.Popen[Any], grace_s: float) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class StackProcess:
    """`python -m supalocal run --ephemeral` in `home` (a throwaway database, as every run starts from the seed);
    `env` holds what it printed (SUPABASE_URL, …, DATABASE_URL)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.log = home / "stack.log"
        self.env: dict[str, str] = {}
        self.proc: subprocess.Popen[str] | None = None

    def launch(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "supalocal", "run", "--ephemeral"),
                    *("--name", f"bench-{os.getpid()}", "--home", str(self.home)),
                ],
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                start_new_session=True,
            )

    async def wait_ready(self) -> None:
        """Read the env lines the stack prints once it serves; RuntimeError if it dies or takes too long."""
        assert self.proc is not None
        stdout = self.proc.stdout
        assert stdout is not None
        try:
            async with asyncio.timeout(STACK_START_TIMEOUT_S):
                while "DATABASE_URL" not in self.env:
                    line = await asyncio.to_thread(stdout.readline)
                    if not line:
                        raise RuntimeError(f"the stack exited during start-up; see {self.log}:\n{_tail(self.log)}")
                    name, _, value = line.strip().partition("=")
                    self.env[name] = value
        except TimeoutError:
            raise RuntimeError(f"the stack did not start within {STACK_START_TIMEOUT_S}s") from None

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc, STOP_GRACE_S)
            if self.proc.stdout is not None:
                self.proc.stdout.close()


class AgentProcess:
    """`python -m agent run` configured by `settings` (environment variables), logging to `log`.

    The inherited environment is stripped of every agent setting first, so a developer's exported
    PLC_MAP_FILE or SUPABASE_URL cannot skew a run.
    """

    def __init__(self, settings: Mapping[str, str], *, log: Path, python: str = sys.executable) -> None:
        self.http_port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in Settings.model_fields}
        env.update(settings)
        env["HTTP_PORT"] = str(self.http_port)
        self.log = log
        self._log_file: IO[bytes] = open(log, "ab")  # noqa: SIM115 - closed in stop(), after the child exits
        self.proc = subprocess.Popen(
            [python, "-m", "agent", "run"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.http_port}", timeout=5.0)

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def health(self) -> dict[str, Any]:
        """The agent's /health body (answered with 503 too when unhealthy, e.g. during an outage)."""
        response = await self._http.get("/health")
        body: dict[str, Any] = response.json()
        return body

    async def wait_serving(self) -> None:
        """Until /health answers with sampling up; RuntimeError (with the log's tail) if the agent died."""
        async with asyncio.timeout(AGENT_READY_TIMEOUT_S):
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the agent exited ({self.proc.returncode}):\n{_tail(self.log)}")
                with contextlib.suppress(httpx.HTTPError):
                    body = await self.health()
                    if body["services"]["parameter_logger"]["status"] == "up":
                        return
                await asyncio.sleep(0.1)

    async def stop(self) -> None:
        await self._http.aclose()
        await asyncio.to_thread(_stop, self.proc, STOP_GRACE_S)
        self._log_file.close()

    def returncode(self) -> int | None:
        return self.proc.poll()


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
