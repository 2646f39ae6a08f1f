"""The local runtime end to end (scripts/lib/deploy/runtime-local.sh): real agents (`python -m agent run`) on free
loopback ports, the real HAProxy the runtime starts, the local Supabase stack and the PLC simulator.

A stage is one environment, `local`, in a short temporary directory (HAProxy's admin socket path must stay under
108 bytes): its environment file, release directories (`<tag>/venv` → this venv; optional `release.env`), the
deploy state and the runtime's run directory. `LocalStage.stop_all()` stops every process the scripts started
(agents and HAProxy, by the pids they recorded), so a failed test leaves nothing running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from deploy_support import ROOT, free_port, get_json

DEPLOY = ROOT / "scripts/deploy.sh"
ROLLBACK = ROOT / "scripts/rollback.sh"
HEALTH_CHECK = ROOT / "scripts/health-check.sh"
ADMIN_TOKEN = "e2e-admin-token-at-least-32-characters"
COLORS = ("blue", "green")


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class LocalStage:
    dir: Path
    env: dict[str, str]
    db_url: str
    ports: dict[str, int] = field(default_factory=dict)
    DEPLOY = DEPLOY

    @property
    def releases(self) -> Path:
        return self.dir / "releases"

    @property
    def run_dir(self) -> Path:
        return self.dir / "run"

    @property
    def lb_url(self) -> str:
        return f"http://127.0.0.1:{self.env['HAPROXY_HTTP_PORT']}"

    def url(self, color: str) -> str:
        return f"http://127.0.0.1:{self.ports[color]}"

    def release(self, tag: str, *, env: dict[str, str] | None = None) -> None:
        """A release directory: its venv is this one (same code, another tag); `env` becomes its release.env."""
        directory = self.releases / tag
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "venv").symlink_to(Path(sys.prefix))
        if env:
            (directory / "release.env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))

    def script(self, script: Path, *args: str, timeout: float = 60, **extra: str) -> Result:
        started = time.monotonic()
        done = subprocess.run([str(script), *args], capture_output=True, text=True, env={**self.env, **extra},
                              timeout=timeout, stdin=subprocess.DEVNULL)  # fmt: skip
        return Result(done.returncode, done.stdout, done.stderr, time.monotonic() - started)

    async def ascript(self, script: Path, *args: str, **extra: str) -> Result:
        """The same, without blocking the event loop (commands can be inserted meanwhile); 60 s at most."""
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(str(script), *args, env={**self.env, **extra},
                                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                    stderr=subprocess.PIPE)  # fmt: skip
        try:
            async with asyncio.timeout(60):
                out, err = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        return Result(proc.returncode or 0, out.decode(), err.decode(), time.monotonic() - started)

    def deploy(self, tag: str, *args: str, **extra: str) -> Result:
        return self.script(DEPLOY, "-e", "local", "-t", tag, *args, **extra)

    def state(self) -> dict:
        return json.loads((self.dir / "state/local.json").read_text())

    def hap(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(self.env["HAPROXY_SOCKET"])
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def weights(self) -> dict[str, int]:
        lines = self.hap("show stat").strip().splitlines()
        header = lines[0].removeprefix("# ").split(",")
        rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:]]
        return {r["svname"]: int(r["weight"]) for r in rows if r["pxname"] == "be_agent" and r["svname"] in COLORS}

    def health(self, color: str) -> dict:
        try:
            return get_json(f"{self.url(color)}/health", timeout=3)[1]
        except OSError:
            return {}

    def log(self, color: str) -> str:
        path = self.run_dir / color / "agent.log"
        return path.read_text() if path.exists() else ""

    def pids(self) -> list[int]:
        files = [self.run_dir / c / "agent.pid" for c in COLORS] + [self.run_dir / "haproxy.pid"]
        found = []
        for file in files:
            with contextlib.suppress(OSError, ValueError):
                found += [int(p) for p in file.read_text().split()]
        return found

    def stop_all(self, *, timeout: float = 15) -> None:
        """SIGTERM every recorded process (agents flush and release), SIGKILL what is left after `timeout` s."""
        pids = [p for p in self.pids() if _alive(p)]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in pids:
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (a script's child nobody reaped yet) is not running
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    return False


def make_stage(directory: Path, *, supabase_url: str, service_key: str, machine_id: str, plc_port: int,
               db_url: str) -> LocalStage:  # fmt: skip
    """Write the environment file and pick free ports; nothing runs yet (the first deploy starts everything)."""
    env_file = directory / "local.env"
    env_file.write_text("\n".join([
        "# agent settings for every color of the `local` environment (KEY=VALUE, as Docker's env_file)",
        f"SUPABASE_URL={supabase_url}", f"SUPABASE_KEY={service_key}", f"MACHINE_ID={machine_id}",
        "PLC_HOST=127.0.0.1", f"PLC_PORT={plc_port}", "PLC_TIMEOUT_S=0.5", f"ADMIN_TOKEN={ADMIN_TOKEN}",
        "PARAMETER_LOGGING_INTERVAL=0.5", "COMMAND_POLL_INTERVAL=1", "SHUTDOWN_TIMEOUT=5", "LOG_LEVEL=INFO", "",
    ]))  # fmt: skip
    ports = {"blue": free_port(), "green": free_port()}
    keep = ("PATH", "HOME", "LANG", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        DEPLOY_RUNTIME="local", ENV_FILE=str(env_file), DEPLOY_STATE_DIR=str(directory / "state"),
        LOCAL_RELEASES_DIR=str(directory / "releases"), LOCAL_RUN_DIR=str(directory / "run"),
        AGENT_BLUE_PORT=str(ports["blue"]), AGENT_GREEN_PORT=str(ports["green"]),
        HAPROXY_HTTP_PORT=str(free_port()), HAPROXY_HTTPS_PORT=str(free_port()), HAPROXY_STATS_PORT=str(free_port()),
        HAPROXY_SOCKET=str(directory / "run/haproxy/admin.sock"), HAPROXY_CHECK_INTER="200ms",
        DEPLOY_TIMEOUT="20", POST_SWITCH_SOAK="0.5", DRAIN_TIMEOUT="5", LB_POLL_INTERVAL="0.05",
        DEPLOY_ACTOR="e2e",
    )  # fmt: skip
    return LocalStage(directory, env, db_url, ports)


class Load:
    """GET /health through HAProxy from `threads` threads until stopped (at most `limit` requests): the read
    traffic a deploy must not drop. `results` counts answers by color, failures as "http <code>"/"error <type>"."""

    def __init__(self, url: str, *, threads: int = 2, limit: int = 20_000, pause_s: float = 0.005) -> None:
        self.url, self.limit, self.pause_s = url, limit, pause_s
        self.results: Counter[str] = Counter()
        self._done = threading.Event()
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        for thread in self._threads:
            thread.join(30)

    def _loop(self) -> None:
        while not self._done.is_set() and self.results.total() < self.limit:
            try:
                status, body = get_json(self.url, timeout=5)
                self.results[body.get("color", "?") if status == 200 else f"http {status}"] += 1
            except (OSError, urllib.error.URLError) as exc:
                self.results[f"error {type(exc).__name__}"] += 1
            time.sleep(self.pause_s)  # a steady load, not a busy loop competing with the agents for 2 cores

    @property
    def failed(self) -> dict[str, int]:
        return {k: v for k, v in self.results.items() if k not in COLORS}
