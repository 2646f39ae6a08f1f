"""The command line as an engineer uses it: real processes, a real simulator, exit codes and messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from supalocal.stack import BackgroundStack

TIMEOUT = 30


def agent(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PLC_", "MACHINE_", "SUPABASE_", "LOG_"))}
    return subprocess.run(
        [sys.executable, "-m", "agent", *args], capture_output=True, text=True, timeout=TIMEOUT, env=base | (env or {})
    )


@pytest.fixture(scope="module")
def sim_port() -> Iterator[str]:
    """`python -m agent simulate --port 0` in its own process, as an engineer would start it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "simulate", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("listening on "), line
    yield line.rsplit(":", 1)[1].strip()
    proc.terminate()
    proc.wait(timeout=10)
    proc.stdout.close()


def test_help_lists_every_command() -> None:
    out = agent("--help").stdout
    for command in ("run", "embedded", "simulate", "plc read", "plc write", "plc plan", "config", "key [--check]"):
        assert command in out
    assert "KEY VALUE" in agent("plc", "write", "--help").stdout


@pytest.mark.parametrize(
    ("env", "lines"),
    [
        ({"PLC_PORT": "70000"}, ["error: PLC_PORT: Input should be less than or equal to 65535 (got '70000')"]),
        (
            {"PLC_TYPE": "plc5", "MACHINE_ID": "m1"},
            [
                "error: MACHINE_ID: Input should be a valid UUID, invalid character: found `m` at 0 (got 'm1')",
                "error: PLC_TYPE: Input should be 'real' or 'simulation' (got 'plc5')",
            ],
        ),
        (
            {"PARAMETER_LOGGING_INTERVAL": "0"},
            ["error: PARAMETER_LOGGING_INTERVAL: Input should be greater than 0 (got '0')"],
        ),
    ],
    ids=["bad-port", "two-problems", "zero-interval"],
)
def test_bad_configuration_exits_2_with_one_line_per_problem(env: dict[str, str], lines: list[str]) -> None:
    result = agent("plc", "plan", env=env)
    assert result.returncode == 2
    assert result.stderr.splitlines() == lines
    assert "Traceback" not in result.stderr


def test_config_hides_secrets() -> None:
    result = agent("config", env={"ADMIN_TOKEN": "s3cret-admin-token-of-32-characters", "SUPABASE_KEY": "k3y"})
    shown = json.loads(result.stdout)
    assert shown["ADMIN_TOKEN"] == "********" and shown["SUPABASE_KEY"] == "********"
    assert "s3cret" not in result.stdout + result.stderr


def test_plan_shows_the_requests() -> None:
    result = agent("plc", "plan")
    assert result.returncode == 0
    assert result.stdout.splitlines()[-1].startswith("10 requests for 191 parameters")
    blocks = json.loads(agent("plc", "plan", "--json").stdout)
    assert sum(len(b["keys"]) for b in blocks) == 191


def test_read_all_shows_live_changing_values(sim_port: str) -> None:
    first = json.loads(agent("plc", "read", "--all", "--json", "--port", sim_port).stdout)
    time.sleep(0.3)
    second = json.loads(agent("plc", "read", "--all", "--json", "--port", sim_port).stdout)
    assert len(first) == 191 and None not in first.values()
    changed = [k for k in first if first[k] != second[k]]
    assert "pressure_gauge_1.pressure" in changed


def test_read_shows_a_table_with_units(sim_port: str) -> None:
    result = agent("plc", "read", "mfc_1.flow_sp", "vacuum_pump.power_on", "--port", sim_port)
    assert result.returncode == 0
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0][0] == "vacuum_pump.power_on" and rows[0][1] == "true"
    assert rows[1][0] == "mfc_1.flow_sp" and rows[1][2] == "sccm"


def test_write_is_validated_and_read_back(sim_port: str) -> None:
    ok = agent("plc", "write", "mfc_1.flow_sp", "75.5", "--port", sim_port)
    assert (ok.returncode, ok.stdout.strip()) == (0, "mfc_1.flow_sp = 75.5 sccm")
    assert json.loads(agent("plc", "read", "mfc_1.flow_sp", "--json", "--port", sim_port).stdout) == {
        "mfc_1.flow_sp": 75.5
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("plc", "write", "mfc_1.flow_sp", "500"), "error: mfc_1.flow_sp: 500.0 is above the maximum 200 sccm"),
        (("plc", "write", "mfc_1.flow", "5"), "error: mfc_1.flow is read-only"),
        (
            ("plc", "write", "valve_1.state", "half"),
            "error: valve_1.state: expected true/false, on/off or 1/0, got 'half'",
        ),
        (("plc", "write", "nope", "1"), "error: unknown parameter 'nope'"),
        (
            ("plc", "write", "valve_1.state", "open"),
            "error: valve_1.state is a pulse valve: only a recipe's valve step opens it (and always closes it again)",
        ),
        (
            ("plc", "write", "plc.watchdog", "3"),
            "error: plc.watchdog is the agent's watchdog register: no command or recipe may write it",
        ),
        (("plc", "read", "nope"), "error: unknown parameter 'nope'"),
        (
            (
                "plc",
                "read",
            ),
            "error: name at least one KEY, or --all",
        ),
    ],
    ids=[
        "out-of-range",
        "read-only",
        "bad-bool",
        "unknown-write",
        "pulse-valve",
        "watchdog",
        "unknown-read",
        "nothing-to-read",
    ],
)
def test_bad_input_exits_2_and_never_writes(sim_port: str, args: tuple[str, ...], message: str) -> None:
    result = agent(*args, "--port", sim_port)
    assert result.returncode == 2
    assert message in result.stderr.splitlines()
    assert "Traceback" not in result.stderr


def test_unreachable_plc_exits_1() -> None:
    result = agent("plc", "read", "--all", "--port", "1", env={"PLC_TIMEOUT_S": "0.2"})
    assert result.returncode == 1
    assert "error: PLC unreachable" in result.stderr


def test_recipe_validate_and_plan_from_a_file() -> None:
    ok = agent("recipe", "validate", "examples/recipes/al2o3_tma_h2o.json")
    assert (ok.returncode, ok.stdout.strip()) == (0, "ok: 'Al2O3 TMA/H2O 100 cycles' v1: 405 steps, 0:12:11 planned")
    plan = agent("recipe", "plan", "examples/recipes/al2o3_tma_h2o.json", "--steps")
    lines = plan.stdout.splitlines()
    assert len(lines) == 406 and lines[3].split()[:4] == ["3", "4/1", "1/100", "valve"]
    assert lines[-1].endswith("405 steps, 0:12:11 planned")


def test_an_invalid_recipe_lists_every_problem_and_exits_2() -> None:
    result = agent("recipe", "validate", "examples/recipes/broken.json")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: recipe 'A recipe with four mistakes' has 4 problem(s):",
        "error: 1 'no such valve': valve 9 is not in the register map (no valve_9.state)",
        "error: 2 'too much flow': mfc_1.flow_sp: 500 is above the maximum 200 sccm",
        "error: 3 'forgot the count': count is missing",
        "error: 3/1 'negative': duration_ms must be greater than or equal to 0 (got -5)",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("recipe", "validate"), "error: give a recipe FILE or --id ID (one of them)"),
        (("recipe", "validate", "nope.json"), "error: cannot read nope.json: No such file or directory"),
        (("command", "set", "mfc_1.flow_sp", "fast"), "error: VALUE must be a JSON number or true/false, got 'fast'"),
    ],
    ids=["no-source", "missing-file", "bad-value"],
)
def test_recipe_and_command_usage_errors(args: tuple[str, ...], message: str) -> None:
    env = {
        "SUPABASE_URL": "http://127.0.0.1:1",
        "SUPABASE_KEY": "k",
        "MACHINE_ID": "00000000-0000-4000-8000-000000000001",
    }
    result = agent(*args, env=env)
    assert result.returncode == 2
    assert message in result.stderr.splitlines()


def test_run_without_cloud_settings_names_each_missing_one() -> None:
    result = agent("run")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: SUPABASE_URL: required to run the agent",
        "error: SUPABASE_KEY: required to run the agent",
        "error: MACHINE_ID: required to run the agent",
    ]


# --- `key`: what SUPABASE_KEY says about itself, and whether Supabase accepts it (a key rotation's steps) -------

MACHINE = "00000000-0000-4000-8000-000000000001"


def test_key_shows_role_machine_and_expiry_never_the_key() -> None:
    from supalocal.auth import make_machine_key

    key = make_machine_key(MACHINE, secret="s" * 40, lifetime_s=10 * 86400)
    result = agent("key", env={"SUPABASE_KEY": key})
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert (shown["kind"], shown["role"], shown["machine_id"], shown["expired"]) == ("jwt", "ald_agent", MACHINE, False)
    assert 9.9 <= shown["expires_in_days"] <= 10.0 and shown["expires_at"].endswith("+00:00")
    assert key not in result.stdout + result.stderr and key.split(".")[2] not in result.stdout


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz", {"kind": "opaque", "role": None, "expires_at": None}),
        ("not-a-key", {"kind": "unreadable", "role": None, "expired": None}),
    ],
    ids=["opaque", "unreadable"],
)
def test_key_without_claims_says_what_it_is(key: str, shown: dict[str, object]) -> None:
    result = agent("key", env={"SUPABASE_KEY": key})
    assert result.returncode == 0 and shown.items() <= json.loads(result.stdout).items()


def test_key_without_a_key_or_with_a_missing_env_file_exits_2(tmp_path: Path) -> None:
    assert agent("key").stderr.splitlines() == ["error: SUPABASE_KEY: not set"]
    missing = agent("key", "--env-file", str(tmp_path / "nope.env"))
    assert missing.returncode == 2 and missing.stderr == f"error: --env-file: no such file: {tmp_path / 'nope.env'}\n"


def test_key_check_asks_supabase_and_the_environment_wins_over_the_file(
    clean_db: BackgroundStack, tmp_path: Path
) -> None:
    from supalocal.auth import make_machine_key

    expired = make_machine_key(MACHINE, secret=clean_db.jwt_secret, lifetime_s=-60)
    fresh = make_machine_key(MACHINE, secret=clean_db.jwt_secret, lifetime_s=365 * 86400)
    env_file = tmp_path / "production.env"
    env_file.write_text(
        f"# the agent's file\nSUPABASE_URL={clean_db.url}\nSUPABASE_KEY={expired}\nMACHINE_ID={MACHINE}\n"
    )

    refused = agent("key", "--check", "--env-file", str(env_file))
    assert refused.returncode == 1, refused.stderr
    shown = json.loads(refused.stdout)
    assert (shown["expired"], shown["accepted"], shown["problem"]) == (
        True,
        False,
        "select machines: JWT expired (PGRST303)",
    )

    accepted = agent("key", "--check", "--env-file", str(env_file), env={"SUPABASE_KEY": fresh})
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    shown = json.loads(accepted.stdout)
    assert (shown["expired"], shown["accepted"], shown["problem"]) == (False, True, None)
    assert shown["expires_in_days"] >= 364.9

    elsewhere = {"SUPABASE_KEY": fresh, "MACHINE_ID": "00000000-0000-4000-8000-0000000000ff"}
    other = agent("key", "--check", "--env-file", str(env_file), env=elsewhere)
    assert other.returncode == 2 and "the key acts for machine" in other.stderr  # a key copied onto another box
