"""The docs/RUNBOOK.md commands not already run by another test: the runtime-API one-liners through socat
against a live HAProxy, and the jq look at the deploy state file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from deploy_support import ROOT, haproxy, require_tool, standin_agent, wait_until

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
