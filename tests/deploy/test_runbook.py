"""The docs/RUNBOOK.md commands not already run by another test: the runtime-API one-liners through socat
against a live HAProxy, the jq look at the deploy state file, and each quarantine command on a real spool file."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from deploy_support import ROOT, haproxy, require_tool, standin_agent, wait_until

from agent.spool import list_quarantined
from supalocal.stack import BackgroundStack
from supalocal.testing import SEED_MACHINE_ID

RUNBOOK = (ROOT / "docs/RUNBOOK.md").read_text()


def shell(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", f"set -o pipefail; {command}"], cwd=cwd, capture_output=True, text=True,
                          timeout=30)  # fmt: skip


def test_runtime_api_one_liners(tmp_path: Path) -> None:
    require_tool("socat")
    show = 'echo "show stat" | socat stdio unix-connect:run/haproxy/admin.sock | cut -d, -f1,2,18,19,37'
    switch = ('echo "set weight be_agent/green 100; set weight be_agent/blue 0" | socat stdio '
              "unix-connect:run/haproxy/admin.sock")  # fmt: skip
    assert show in RUNBOOK and switch in RUNBOOK
    (tmp_path / "run/haproxy").mkdir(parents=True)
    with (
        standin_agent(tmp_path, color="blue", version="1.0.0") as blue,
        standin_agent(tmp_path, color="green", version="1.1.0") as green,
        haproxy(tmp_path / "run/haproxy", blue_port=blue.port, green_port=green.port) as lb,
    ):
        wait_until(lambda: lb.up("blue") and lb.up("green"), timeout=10, what="both UP")
        rows = shell(show, tmp_path).stdout.splitlines()
        assert rows[0] == "# pxname,svname,status,weight,check_status"
        assert "be_agent,blue,UP,100,L7OK" in rows and "be_agent,green,UP,0,L7OK" in rows
        assert shell(switch, tmp_path).returncode == 0
        assert (lb.servers()["blue"]["weight"], lb.servers()["green"]["weight"]) == ("0", "100")


def test_state_file_query(tmp_path: Path) -> None:
    require_tool("jq")
    command = "jq '.active_color, .active_version, .history[-1]' /var/lib/ald-agent/deploy/production.json"
    assert command in RUNBOOK
    history = [{"id": 1, "result": "success"}]
    state = {"schema": 1, "active_color": "green", "active_version": "1.4.2", "history": history}
    (tmp_path / "production.json").write_text(json.dumps(state))
    out = shell(command.replace("/var/lib/ald-agent/deploy/", f"{tmp_path}/"), tmp_path).stdout
    assert out.split("\n", 2)[:2] == ['"green"', '"1.4.2"'] and '"result": "success"' in out


def runbook_block(heading: str) -> list[str]:
    """The shell lines of the first ```sh block under the section whose title starts with `heading`
    (comments stripped, continuation lines joined)."""
    section = RUNBOOK.split(f"\n## {heading}", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    lines = [line.split("  #", 1)[0].rstrip() for line in block.replace("\\\n", " ").splitlines()]
    return [line for line in lines if line]


def quarantine_spool(path: Path) -> None:
    """A spool file (the agent's schema) with records 1234-1238 quarantined, as the runbook's examples name."""
    db = sqlite3.connect(path)
    db.executescript(
        "create table outbox (id integer primary key autoincrement, kind text not null, payload text not null,"
        " created real not null, size integer not null);"
        "create table quarantine (id integer primary key, kind text not null, payload text not null,"
        " created real not null, error text not null, code text, moved real not null);"
    )
    rows = [(1234, "history"), (1235, "history"), (1236, "run"), (1237, "history"), (1238, "step")]
    db.executemany("insert into quarantine values (?, ?, '{}', 1, 'violates foreign key', '23503', 2)", rows)
    db.commit()
    db.close()


@pytest.mark.parametrize("index", range(9), ids=lambda i: f"line-{i + 1}")
def test_quarantine_commands(tmp_path: Path, index: int) -> None:
    """Each line of the Quarantine block, verbatim, on a spool holding the records it names."""
    lines = runbook_block("Quarantine")
    assert len(lines) == 9
    spool = tmp_path / "spool.sqlite"
    quarantine_spool(spool)
    (tmp_path / "fixed.json").write_text('{"fixed": true}')
    env = {"SPOOL_PATH": str(spool), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    line = lines[index]
    done = subprocess.run(["bash", "-c", f"set -o pipefail; {line}"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=30, env=env)  # fmt: skip
    assert done.returncode == 0, (line, done.stderr)
    left = [r.id for r in list_quarantined(spool)]
    expected = {
        "replay 1234 1235": [1236, 1237, 1238],
        "replay --all --kind history": [1236, 1238],
        "replay 1234 --payload fixed.json": [1235, 1236, 1237, 1238],
        "discard 1234": [1235, 1236, 1237, 1238],
        "discard --all --yes": [],
    }
    effect = next((ids for command, ids in expected.items() if line.endswith(command)), [1234, 1235, 1236, 1237, 1238])
    assert left == effect, line
    if line.endswith("> quarantine-1234.json"):
        assert json.loads((tmp_path / "quarantine-1234.json").read_text())["id"] == 1234


# --- the bad-day sections ---------------------------------------------------------------------------------------


def run_line(line: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PLC_", "SUPABASE_", "MACHINE_", "LOG_"))}
    path = f"{Path(sys.executable).parent}:{base.get('PATH', '/usr/bin:/bin')}"
    return subprocess.run(["bash", "-c", f"set -o pipefail; {line}"], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env=base | {"PATH": path, "PYTHONPATH": str(ROOT)} | env)  # fmt: skip


def test_troubleshooting_first_look(tmp_path: Path, clean_db: BackgroundStack) -> None:
    lines = runbook_block("Troubleshooting by symptom")
    assert len(lines) == 4
    token = "troubleshooting-admin-token-of-32-chars"
    with standin_agent(tmp_path, color="blue", version="1.0.0", quarantined=2, lease_file=tmp_path / "lease",
                       admin_token=token) as blue:  # fmt: skip
        env = {"ADMIN_TOKEN": token, "DATABASE_URL": clean_db.db_url}
        out = [run_line(line.replace("127.0.0.1:8001", f"127.0.0.1:{blue.port}"), ROOT, env) for line in lines]
    assert all(o.returncode == 0 for o in out), [(o.args, o.stderr) for o in out if o.returncode]
    reasons, metrics, handover, leases = (o.stdout for o in out)
    assert reasons.splitlines() == ["2 spool records quarantined"]
    assert "ald_spool_quarantined 2.0" in metrics.splitlines() and "ald_plc_connected 1.0" in metrics.splitlines()
    assert json.loads(handover)["role"] == "active"
    assert "machine_id | holder | token | expires_at" in leases.replace("  ", " ")


def test_backup_and_restore_lines(tmp_path: Path) -> None:
    import asyncio

    from agent.spool import Spool

    lines = runbook_block("Backup and restore")
    assert len(lines) == 4
    spool, backups, state, config = tmp_path / "spool.sqlite", tmp_path / "backups", tmp_path / "state", tmp_path

    async def fill() -> None:
        async with Spool(spool) as s:
            await s.append_many([("history", {"n": i}) for i in range(3)])

    asyncio.run(fill())
    backups.mkdir()
    state.mkdir()
    (state / "production.json").write_text('{"active_color": "green"}')
    (config / "config").mkdir()
    (config / "config/production.env").write_text("MACHINE_ID=x\n")
    restored = tmp_path / "restored"
    restored.mkdir()
    for line in lines:
        line = (line.replace("/var/backups/ald-agent", str(backups)).replace("/var/lib/ald-agent/deploy", str(state))
                .replace("2026-12-01", "$(date +%F)").replace("-C /", f"-C {restored}"))  # fmt: skip
        if "spool restore" in line:
            spool.unlink()  # the disk was lost
        done = run_line(line, tmp_path, {"SPOOL_PATH": str(spool)})
        assert done.returncode == 0, (line, done.stderr)
    assert list_quarantined(spool) == []
    with sqlite3.connect(spool) as db:
        assert db.execute("select count(*) from outbox").fetchone()[0] == 3
    assert (restored / str(state).lstrip("/") / "production.json").read_text() == '{"active_color": "green"}'
    assert (restored / str(config).lstrip("/") / "config/production.env").read_text() == "MACHINE_ID=x\n"


def test_partition_lines(clean_db: BackgroundStack) -> None:
    lines = runbook_block("Partition maintenance and retention")
    assert len(lines) == 2
    assert 'psql "$DATABASE_URL" -c "select public.ensure_parameter_history_partitions(2)"' in RUNBOOK  # crontab
    for line in lines:
        done = run_line(line, ROOT, {"DATABASE_URL": clean_db.db_url})
        assert done.returncode == 0, (line, done.stderr)
        assert "(1 row)" in done.stdout or "rows)" in done.stdout or "(0 rows)" in done.stdout


def test_daily_checks(tmp_path: Path, clean_db: BackgroundStack) -> None:
    daily = RUNBOOK.split("- Daily: ", 1)[1].split("- Weekly:", 1)[0]
    commands = re.findall(r"`((?:scripts/|python -m )[^`]+)`", daily)
    assert len(commands) == 3
    spool = tmp_path / "spool.sqlite"
    sqlite3.connect(spool).executescript(
        "create table outbox (id integer primary key autoincrement, kind text, payload text, created real, size int);"
        "create table quarantine (id integer primary key, kind text, payload text, created real, error text,"
        " code text, moved real);"
    )
    env = {"SPOOL_PATH": str(spool), "SUPABASE_URL": clean_db.url, "SUPABASE_KEY": clean_db.service_key,
           "MACHINE_ID": SEED_MACHINE_ID}  # fmt: skip
    with standin_agent(tmp_path, color="green", version="1.0.0") as green:
        out = [run_line(c.replace("127.0.0.1:8000", f"127.0.0.1:{green.port}"), ROOT, env) for c in commands]
    assert all(o.returncode == 0 for o in out), [(o.args, o.stderr) for o in out if o.returncode]
    assert out[0].stdout.strip() == "healthy"
    assert out[1].stdout.splitlines()[-1] == f"0 quarantined record(s) in {spool}"
    assert out[2].stdout.split()[:2] == ["RUN", "STATUS"]
    monthly = RUNBOOK.split("- Monthly:", 1)[1].split("\n\n", 1)[0]
    drill = re.findall(r"`(python -m agent spool --spool [^`]+)`", monthly)
    assert len(drill) == 2
    backup = tmp_path / "backup.sqlite"
    assert run_line(f"python -m agent spool backup {backup}", ROOT, env).returncode == 0
    for line in drill:
        line = line.replace("/tmp/restore-drill.sqlite", str(tmp_path / "drill.sqlite")).replace(
            "<backup>", str(backup)
        )
        done = run_line(line, ROOT, env)
        assert done.returncode == 0, (line, done.stderr)
