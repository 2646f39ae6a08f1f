"""`python -m agent spool quarantine …` as an engineer runs it (a real process on a real spool file): the
table, the JSON, replay and discard, and bad input as one `error:` line with exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.spool import list_quarantined
from tests.spool.test_quarantine import quarantined_spool

ROOT = Path(__file__).resolve().parents[2]


def spool_cli(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPOOL_", "LOG_"))} | {"SPOOL_PATH": str(path)}
    return subprocess.run([sys.executable, "-m", "agent", "spool", "quarantine", *args], capture_output=True,
                          text=True, timeout=30, env=env, cwd=ROOT)  # fmt: skip


async def test_list_show_replay_discard(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    ids = await quarantined_spool(path)
    listed = spool_cli(path, "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["ID", "KIND", "CODE", "QUARANTINED", "ERROR"]
    assert lines[1].split()[:3] == [str(ids[0]), "history", "23503"] and lines[1].endswith("refused 0")
    assert lines[-1] == f"3 quarantined record(s) in {path}"
    assert [r["id"] for r in json.loads(spool_cli(path, "list", "--json", "--kind", "run").stdout)] == [ids[1]]
    shown = json.loads(spool_cli(path, "show", str(ids[1])).stdout)
    assert (shown["kind"], shown["payload"], shown["error"]) == ("run", {"n": 1}, "refused 1")

    replayed = spool_cli(path, "replay", str(ids[1]))
    assert replayed.stdout == f"replayed 1 record(s): {ids[1]}; the shipper sends them next\n"
    discarded = spool_cli(path, "discard", "--all", "--kind", "history", "--yes")
    assert discarded.stdout == f"discarded 2 record(s): {ids[0]}, {ids[2]}\n"
    assert list_quarantined(path) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "999"), "no quarantined record 999"),
        (("replay",), "give the record ids"),
        (("replay", "1", "--all"), "ids or --all, not both"),
        (("discard", "--all"), "add --yes"),
        (("replay", "1", "--kind", "run"), "--kind selects with --all only"),
        (("replay", "PAYLOAD-ONE"), "--payload: "),
    ],
    ids=["unknown-id", "no-ids", "ids-and-all", "discard-all-unconfirmed", "kind-without-all", "payload-not-json"],
)
async def test_bad_input_is_one_error_line_and_changes_nothing(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    path = tmp_path / "spool.sqlite"
    ids = await quarantined_spool(path)
    if args == ("replay", "PAYLOAD-ONE"):
        bad = tmp_path / "fix.json"
        bad.write_bytes(b"\xff{not json")
        args = ("replay", str(ids[0]), "--payload", str(bad))
    done = spool_cli(path, *args)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: ") and message in done.stderr and len(done.stderr.splitlines()) == 1
    assert [r.id for r in list_quarantined(path)] == ids


def test_no_spool_there(tmp_path: Path) -> None:
    done = spool_cli(tmp_path / "none.sqlite", "list")
    assert (done.returncode, done.stderr) == (2, f"error: SPOOL_PATH: no spool at {tmp_path / 'none.sqlite'}\n")
    assert not (tmp_path / "none.sqlite").exists()
