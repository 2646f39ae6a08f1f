"""Bad CLI input is exit 2 with one `error:` line, never a traceback: recipe files that are not text, numbers
too long to convert, nesting too deep for the parser, a write refused before the PLC is even asked (it may be
down), and a short ADMIN_TOKEN."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def agent(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PLC_", "MACHINE_", "SUPABASE_", "LOG_", "ADMIN"))}
    return subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True, text=True, timeout=60,
                          env=base | (env or {}), cwd=ROOT)  # fmt: skip


def nested_loops(depth: int) -> str:
    step = '{"type": "wait", "name": "w", "config": {"duration_ms": 1}}'
    for i in range(depth):
        step = f'{{"type": "loop", "name": "l{i}", "config": {{"count": 1}}, "steps": [{step}]}}'
    return f'{{"format": "ald-recipe/1", "name": "deep", "version": 1, "steps": [{step}]}}'


RECIPES = {
    "non-utf8": (b'\xff\xfe{"name": "x"}', "not UTF-8 text"),
    "5001-digit-number": (('{"name": "x", "version": ' + "9" * 5001 + "}").encode(), "4300 digits"),
    "deep-json": (('{"steps": ' + "[" * 100_000 + "]" * 100_000 + "}").encode(), "JSON nested too deeply"),
    "deep-loops": (nested_loops(900).encode(), "nested too deeply"),
    "not-json": (b"{name: x}", "not JSON"),
}


@pytest.mark.parametrize("command", ["validate", "plan"])
@pytest.mark.parametrize("case", list(RECIPES), ids=list(RECIPES))
def test_an_unusable_recipe_file(tmp_path: Path, case: str, command: str) -> None:
    content, message = RECIPES[case]
    path = tmp_path / "recipe.json"
    path.write_bytes(content)
    done = agent("recipe", command, str(path))
    assert done.returncode == 2, done.stderr[-500:]
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith(f"error: {path}: ") and message in done.stderr


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])  # closed again on return: nothing listens there


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope", "1"), "error: unknown parameter 'nope'"),
        (("pressure_gauge_1.pressure", "1"), "error: pressure_gauge_1.pressure is read-only"),
        (("mfc_1.flow_sp", "lots"), "error: mfc_1.flow_sp: "),
        (("mfc_1.flow_sp", "1e9"), "error: mfc_1.flow_sp: "),
    ],
    ids=["unknown-key", "read-only", "not-a-number", "out-of-range"],
)
def test_a_write_is_refused_before_the_plc_is_asked(args: tuple[str, ...], message: str) -> None:
    done = agent("plc", "write", *args, "--port", closed_port())  # the PLC is down: it must not matter
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(message) and len(done.stderr.splitlines()) == 1
    assert "unreachable" not in done.stderr


def test_with_a_valid_write_a_down_plc_is_what_it_says() -> None:
    done = agent("plc", "write", "mfc_1.flow_sp", "20", "--port", closed_port())
    assert done.returncode == 1 and "unreachable" in done.stderr


def test_a_short_admin_token_stops_the_start() -> None:
    done = agent("run", env={"ADMIN_TOKEN": "change-me"})
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: ADMIN_TOKEN: must be at least 32 characters (e.g. `openssl rand -hex 32`), got 9"]  # fmt: skip


@pytest.mark.parametrize(
    ("force", "message"),
    [
        ("chamber_heater.temperature", "error: --force takes KEY=VALUE, got 'chamber_heater.temperature'"),
        ("chamber_heater.temperature=hot", "error: --force chamber_heater.temperature: VALUE must be a JSON number"),
        ("no.such.key=1", "error: --force: not in the register map: no.such.key"),
    ],
    ids=["no-value", "not-a-number", "unknown-key"],
)
def test_a_bad_simulator_force_stops_it_before_it_listens(force: str, message: str) -> None:
    done = agent("simulate", "--port", "0", "--force", force)
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert done.stderr.startswith(message) and len(done.stderr.splitlines()) == 1
