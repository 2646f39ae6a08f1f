"""`python -m agent machine register|list` as an engineer runs it (a real process against the local stack), and
`python -m agent run` refusing a machine Supabase does not know."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import jwt

from supalocal.stack import BackgroundStack
from supalocal.testing import SEED_MACHINE_ID

ROOT = Path(__file__).resolve().parents[2]
MAP = ROOT / "agent/plc/default_map.csv"
PARAMETERS = 191  # rows of MAP


def agent(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PLC_", "MACHINE_", "SUPABASE_", "LOG_"))}
    return subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True, text=True, timeout=60,
                          env=base | env, cwd=ROOT)  # fmt: skip


def project(stack: BackgroundStack, **extra: str) -> dict[str, str]:
    return {"SUPABASE_URL": stack.url, "SUPABASE_KEY": stack.service_key} | extra


def assignments(stdout: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line and not line.startswith("("))


def test_register_prints_the_machine_id_and_key_and_a_rerun_finds_the_same_machine(clean_db: BackgroundStack) -> None:
    env = project(clean_db, SUPABASE_JWT_SECRET=clean_db.jwt_secret)
    args = ("machine", "register", "--name", "ALD tool 2", "--serial", "ALD-0002", "--map", str(MAP))
    first = agent(*args, env=env)
    assert (first.returncode, first.stderr) == (0, ""), first.stderr
    expected = ["==> machine ALD-0002: registered", f"==> parameters: {PARAMETERS} added, 0 updated"]
    assert first.stdout.splitlines()[:2] == expected
    printed = assignments(first.stdout)
    machine_id = printed["MACHINE_ID"]
    claims = jwt.decode(printed["SUPABASE_KEY"], clean_db.jwt_secret, algorithms=["HS256"])
    assert (claims["role"], claims["machine_id"]) == ("ald_agent", machine_id)

    again = agent(*args, env=env)
    assert again.returncode == 0
    expected = ["==> machine ALD-0002: already registered, updated", f"==> parameters: 0 added, {PARAMETERS} updated"]
    assert again.stdout.splitlines()[:2] == expected
    assert assignments(again.stdout)["MACHINE_ID"] == machine_id

    listed = json.loads(agent("machine", "list", "--json", env=env).stdout)
    assert sorted(row["serial_number"] for row in listed) == ["ALD-0002", "ALD-REF-0001"]


def test_without_the_jwt_secret_it_says_how_to_get_the_key(clean_db: BackgroundStack) -> None:
    done = agent("machine", "register", "--name", "t", "--serial", "ALD-0009", "--json", env=project(clean_db))
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["machine_key"] is None and report["created"]
    uuid.UUID(report["machine_id"])


def test_bad_input_is_one_error_line_and_exit_2(clean_db: BackgroundStack, tmp_path: Path) -> None:
    bad_map = tmp_path / "map.csv"
    bad_map.write_text(MAP.read_text().replace(",coil,15,", ",coil,99999999,", 1))
    cases = {
        "bad map": (("--map", str(bad_map)), project(clean_db), "valve_1.state"),
        "missing map": (("--map", str(tmp_path / "none.csv")), project(clean_db), "cannot read map"),
        "machine key": ((), project(clean_db, SUPABASE_KEY=jwt.encode({"role": "ald_agent",
                        "machine_id": SEED_MACHINE_ID}, clean_db.jwt_secret)), "a machine key cannot register"),
        "no url": ((), {"SUPABASE_KEY": clean_db.service_key}, "SUPABASE_URL: required"),
    }  # fmt: skip
    for name, (extra, env, message) in cases.items():
        done = agent("machine", "register", "--name", "t", "--serial", "ALD-0008", *extra, env=env)
        assert done.returncode == 2, (name, done.stderr)
        assert done.stderr.startswith("error: ") and message in done.stderr, (name, done.stderr)
        assert "Traceback" not in done.stderr
    assert "ALD-0008" not in agent("machine", "list", env=project(clean_db)).stdout  # nothing registered


def test_the_agent_refuses_to_start_for_an_unknown_machine(clean_db: BackgroundStack, tmp_path: Path) -> None:
    unknown = str(uuid.uuid4())
    env = project(clean_db, MACHINE_ID=unknown, SPOOL_PATH=str(tmp_path / "spool.sqlite"), HTTP_PORT="0")
    done = agent("run", env=env)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: MACHINE_ID: machine {unknown} does not exist in Supabase; register it with "
        "`python -m agent machine register --name NAME --serial SERIAL --map FILE.csv`"
    ]
    assert "Traceback" not in done.stderr
