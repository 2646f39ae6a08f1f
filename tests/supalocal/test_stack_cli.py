"""`python -m supalocal`: start/status/reset/stop as a daemon, run in the foreground, usage errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import jwt
import pytest

SEED_MACHINE_ID = "00000000-0000-4000-8000-000000000001"
ENV_NAMES = {"SUPABASE_URL", "SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_JWT_SECRET", "DATABASE_URL"}
GONE_TIMEOUT_S = 10.0


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SUPALOCAL_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "supalocal", *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def _env(stdout: str) -> dict[str, str]:
    pairs = dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)
    assert set(pairs) == ENV_NAMES, stdout
    return pairs


def _postmaster_pids(*database_urls: str) -> set[int]:
    """The postmasters serving these stacks, known by their ports (tests running beside this one have their own)."""
    ports = {f"port={urlsplit(url).port}" for url in database_urls}
    out = subprocess.run(["ps", "-ww", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
    return {
        int(line.split()[0])
        for line in out.splitlines()
        if "postgres -D" in line and "supalocal-pg-" in line and ports & set(line.split())
    }


def _wait_gone(pids: set[int], *database_urls: str) -> set[int]:
    deadline = time.monotonic() + GONE_TIMEOUT_S
    while time.monotonic() < deadline and pids & _postmaster_pids(*database_urls):
        time.sleep(0.1)
    return pids & _postmaster_pids(*database_urls)


def test_daemon_lifecycle_side_by_side(tmp_path: Path) -> None:
    started = _cli(tmp_path, "start", "--ephemeral")
    assert started.returncode == 0, started.stderr
    first = _env(started.stdout)
    other = _cli(tmp_path, "start", "--ephemeral", "--name", "other")
    assert other.returncode == 0, other.stderr
    second = _env(other.stdout)
    ours = _postmaster_pids(first["DATABASE_URL"], second["DATABASE_URL"])
    try:
        assert first["SUPABASE_URL"] != second["SUPABASE_URL"]
        assert first["DATABASE_URL"] != second["DATABASE_URL"]
        assert len(ours) == 2

        again = _cli(tmp_path, "start", "--ephemeral")
        assert again.returncode == 0 and _env(again.stdout) == first, "start is idempotent"
        status = _cli(tmp_path, "status")
        assert status.returncode == 0 and _env(status.stdout) == first

        key = first["SUPABASE_SERVICE_ROLE_KEY"]
        response = httpx.get(
            f"{first['SUPABASE_URL']}/rest/v1/machines?select=id",
            headers={"apikey": key, "Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 200 and response.json() == [{"id": SEED_MACHINE_ID}]

        scoped = _cli(tmp_path, "machine-key", "--machine", SEED_MACHINE_ID)  # signed with the running secret
        assert scoped.returncode == 0, scoped.stderr
        key = scoped.stdout.strip()
        response = httpx.post(
            f"{first['SUPABASE_URL']}/rest/v1/machine_commands",
            json={"machine_id": SEED_MACHINE_ID, "type": "stop_recipe"},
            headers={"apikey": key, "Authorization": f"Bearer {key}"},
        )
        assert response.status_code in (401, 403) and response.json()["code"] == "42501"  # an agent key

        reset = _cli(tmp_path, "reset")
        assert reset.returncode == 0, reset.stderr
    finally:
        stopped = [_cli(tmp_path, "stop"), _cli(tmp_path, "stop", "--name", "other")]
    assert [s.returncode for s in stopped] == [0, 0]
    assert _wait_gone(ours, first["DATABASE_URL"], second["DATABASE_URL"]) == set(), "postgres left behind"
    assert _cli(tmp_path, "status").returncode == 3
    assert _cli(tmp_path, "reset").returncode == 0, "a stopped instance's reset wipes its (absent) data"
    assert _cli(tmp_path, "stop").returncode == 0, "stop is idempotent"
    assert not (tmp_path / "default" / "state.json").exists()


def test_run_in_foreground_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    env = {**os.environ, "SUPALOCAL_HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "supalocal", "run", "--ephemeral", "--name", "fg"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first_line = proc.stdout.readline()
        assert first_line.startswith("SUPABASE_URL=http://127.0.0.1:"), first_line
        printed = _env(first_line + "".join(proc.stdout.readline() for _ in range(len(ENV_NAMES) - 1)))
        ours = _postmaster_pids(printed["DATABASE_URL"])
        assert len(ours) == 1
        assert (tmp_path / "fg" / "state.json").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert _wait_gone(ours, printed["DATABASE_URL"]) == set()
    assert not (tmp_path / "fg" / "state.json").exists()


def test_machine_key_for_a_project_secret_needs_no_running_stack(tmp_path: Path) -> None:
    secret = "a-project-jwt-secret-at-least-32-bytes-long"
    made = _cli(tmp_path, "machine-key", "--machine", SEED_MACHINE_ID, "--jwt-secret", secret, "--days", "30")
    assert made.returncode == 0, made.stderr
    claims = jwt.decode(made.stdout.strip(), secret, algorithms=["HS256"])
    assert (claims["role"], claims["machine_id"]) == ("ald_agent", SEED_MACHINE_ID)
    assert claims["exp"] - claims["iat"] == 30 * 86400
    missing = _cli(tmp_path, "machine-key", "--machine", SEED_MACHINE_ID)
    assert missing.returncode == 3 and "no --jwt-secret" in missing.stderr


@pytest.mark.parametrize(
    "args",
    [[], ["bogus"], ["start", "--port", "x"], ["status", "--nope"], ["machine-key"], ["machine-key", "--machine", "x"]],
    ids=repr,
)
def test_bad_usage_exits_2_with_usage_on_stderr(tmp_path: Path, args: list[str]) -> None:
    result = _cli(tmp_path, *args)
    assert result.returncode == 2
    assert "usage:" in result.stderr
    assert result.stdout == ""
