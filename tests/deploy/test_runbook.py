"""The docs/RUNBOOK.md commands not already run by another test: the runtime-API one-liners through socat
against a live HAProxy, the jq look at the deploy state file, the key rotation end to end (local runtime), and each
quarantine command on a real spool file."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import asyncpg
import pytest
from deploy_support import ROOT, haproxy, require_tool, standin_agent, wait_until
from local_stage import LocalStage

from agent.spool import list_quarantined
from supalocal.auth import make_machine_key
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


# --- "Rotate the agent's key": the whole procedure on the local runtime, with real agents ---------------------

ROTATION = [
    "curl -s http://127.0.0.1:8000/health | jq '.status, .reasons'",
    "python -m agent key --env-file config/production.env",
    'python -m supalocal machine-key --machine "$MACHINE_ID" --jwt-secret "$PROJECT_JWT_SECRET" --days 365 >new.key',
    'SUPABASE_KEY="$(cat new.key)" python -m agent key --check --env-file config/production.env',
    'sed -i "s|^SUPABASE_KEY=.*|SUPABASE_KEY=$(cat new.key)|" config/production.env && rm new.key',
    "scripts/deploy.sh --environment production --strategy blue-green --tag "
    '"$(jq -r .active_version /var/lib/ald-agent/deploy/production.json)" --force',
]
#: The first key lives this long: enough for the first deploy, short enough for a test to see it expire.
FIRST_KEY_LIFETIME_S = 45


def held_frames(spool: Path) -> set[float]:
    """Acquisition times of the telemetry frames waiting in an agent's spool (read beside the running agent)."""
    with contextlib.closing(sqlite3.connect(spool)) as conn:
        rows = conn.execute("select payload from outbox where kind = 'history'").fetchall()
    return {datetime.fromisoformat(json.loads(payload)["ts"]).timestamp() for (payload,) in rows}


def history_stamps(db_url: str) -> list[float]:
    async def fetch() -> list[float]:
        conn = await asyncpg.connect(db_url)
        try:
            rows = await conn.fetch(
                "select ts from parameter_history where machine_id = $1 order by ts", SEED_MACHINE_ID
            )
        finally:
            await conn.close()
        return [r["ts"].timestamp() for r in rows]

    return asyncio.run(fetch())


@pytest.mark.timeout(300)
def test_key_rotation(local: LocalStage, clean_db: BackgroundStack, tmp_path: Path) -> None:
    """The key in use expires under a running agent: its frames wait in the spool, /health says why; the runbook's
    commands make, check and install a new key and restart both colors on it; every held frame then lands."""
    for command in ROTATION:
        assert command in RUNBOOK, command
    env_file = Path(local.env["ENV_FILE"])
    state = local.dir / "state/local.json"

    def set_key(key: str) -> None:
        lines = [
            f"SUPABASE_KEY={key}" if ln.startswith("SUPABASE_KEY=") else ln for ln in env_file.read_text().split("\n")
        ]
        env_file.write_text("\n".join(lines))

    def run(command: str) -> subprocess.CompletedProcess[str]:
        for production, here in (
            ("config/production.env", str(env_file)),
            ("/var/lib/ald-agent/deploy/production.json", str(state)),
            ("--environment production", "--environment local"),
            ("http://127.0.0.1:8000", local.lb_url),
            ("scripts/deploy.sh", str(ROOT / "scripts/deploy.sh")),
        ):
            command = command.replace(production, here)
        env = local.env | {"PATH": f"{Path(sys.executable).parent}:{local.env['PATH']}", "MACHINE_ID": SEED_MACHINE_ID,
                           "PROJECT_JWT_SECRET": clean_db.jwt_secret}  # fmt: skip
        return subprocess.run(["bash", "-c", f"set -o pipefail; {command}"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    set_key(make_machine_key(SEED_MACHINE_ID, secret=clean_db.jwt_secret, lifetime_s=FIRST_KEY_LIFETIME_S))
    local.release("1.4.2")
    first = local.deploy("1.4.2")
    assert first.returncode == 0, first.output
    assert local.health("blue")["role"] == "active"

    # the key expires: blue keeps sampling into its spool, quarantines nothing and says why
    refused = wait_until(lambda: [r for r in local.health("blue").get("reasons", []) if "refused the key" in r],
                         timeout=FIRST_KEY_LIFETIME_S + 30, what="blue reporting its key refused")  # fmt: skip
    assert refused == ["Supabase refused the key: " + local.health("blue")["services"]["database"]["key_refused"]]
    assert "JWT expired (PGRST303)" in refused[0]
    wait_until(lambda: local.health("blue")["metrics"]["spool_depth"] >= 3, timeout=30, what="records held")
    assert local.health("blue")["metrics"]["quarantined"] == 0
    shown = run(ROTATION[0])
    assert shown.returncode == 0 and '"degraded"' in shown.stdout and "Supabase refused the key" in shown.stdout

    looked = run(ROTATION[1])
    assert looked.returncode == 0, looked.stderr
    assert (json.loads(looked.stdout)["expired"], json.loads(looked.stdout)["machine_id"]) == (True, SEED_MACHINE_ID)
    made = run(ROTATION[2])
    assert made.returncode == 0 and (tmp_path / "new.key").read_text().count(".") == 2, made.stderr
    checked = run(ROTATION[3])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads(checked.stdout)["accepted"] is True
    assert run(ROTATION[4]).returncode == 0 and not (tmp_path / "new.key").exists()
    held = held_frames(local.run_dir / "blue/spool.sqlite")  # blue still runs, refused: these wait in its spool
    assert json.loads(run(ROTATION[1]).stdout)["expired"] is False  # the file now holds the new key

    for target in ("green", "blue"):  # twice: each deploy restarts the standby color on the new key
        deployed = run(ROTATION[5])
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        assert local.health(target)["role"] == "active", deployed.stdout

    def drained() -> bool:
        views = [local.health(color) for color in ("blue", "green")]
        return all(v["metrics"]["spool_depth"] == 0 and v["services"]["database"]["key_refused"] is None
                   for v in views)  # fmt: skip

    wait_until(drained, timeout=30, what="both spools empty on the new key")
    assert [local.health(c)["metrics"]["quarantined"] for c in ("blue", "green")] == [0, 0]
    assert held and held <= set(history_stamps(local.db_url))  # every frame held while refused landed


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
