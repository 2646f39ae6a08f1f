"""Alerts end to end: a real agent (`python -m agent run` against the local stack, its PLC unreachable and a
refused record in its spool), a real Prometheus evaluating monitoring/alert_rules.yml against it, and a real
Alertmanager with monitoring/alertmanager.yml delivering each alert to the receiver its severity routes to.

Only the timings are shortened for the test: every rule's `for:` becomes 0s, Alertmanager's group waits 1 s;
the expressions, labels, routes and receivers are the production ones (webhook URLs re-pointed here)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from deploy_support import ROOT, free_port, require_tool, stop_process, wait_until
from test_monitoring import MONITORING, prometheus_server

from agent.spool import Spool
from supalocal.stack import BackgroundStack
from supalocal.testing import SEED_MACHINE_ID

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed; scripts/lib/tools.sh installs it")


@contextmanager
def webhook() -> Iterator[tuple[str, dict[str, list[dict[str, Any]]]]]:
    """An HTTP receiver on a free port: yields its base URL and the JSON bodies received, by path."""
    received: dict[str, list[dict[str, Any]]] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.setdefault(self.path, []).append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def alertmanager(tmp: Path, *, receiver_url: str) -> Iterator[str]:
    """monitoring/alertmanager.yml with its webhook URLs re-pointed at `receiver_url` (same paths) and 1 s group
    timings; yields host:port."""
    binary = require_tool("prometheus-alertmanager")
    config = yaml.safe_load((MONITORING / "alertmanager.yml").read_text())
    for route in [config["route"], *config["route"]["routes"]]:
        route.update(group_wait="1s", group_interval="1s")
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = receiver_url + "/" + hook["url"].rsplit("/", 1)[1]
    (tmp / "alertmanager.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen(
        [binary, f"--config.file={tmp / 'alertmanager.yml'}", f"--storage.path={tmp / 'am-data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(lambda: _ready(f"http://127.0.0.1:{port}/-/ready"), timeout=20, what="alertmanager ready")
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(proc)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def immediate_rules(tmp: Path) -> Path:
    """alert_rules.yml with every `for:` at 0s."""
    text = re.sub(r"^(\s+)for: \S+$", r"\1for: 0s", (MONITORING / "alert_rules.yml").read_text(), flags=re.M)
    path = tmp / "alert_rules.yml"
    path.write_text(text)
    return path


async def refused_record_in(spool_path: Path) -> None:
    async with Spool(spool_path) as spool:
        await spool.append("latest", [{"machine_id": SEED_MACHINE_ID, "parameter_id": "x", "value": 1}])
        (record,) = await spool.peek("latest", 1)
        await spool.quarantine(record, error="violates foreign key constraint", code="23503")


@contextmanager
def real_agent(stack: BackgroundStack, tmp: Path, *, http_port: int) -> Iterator[subprocess.Popen[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLC_", "SUPABASE_", "MACHINE_", "LOG_"))}
    env |= {"SUPABASE_URL": stack.url, "SUPABASE_KEY": stack.service_key, "MACHINE_ID": SEED_MACHINE_ID,
            "PLC_HOST": "127.0.0.1", "PLC_PORT": str(free_port()), "PLC_TIMEOUT_S": "0.3",  # nothing listens
            "HTTP_PORT": str(http_port), "HTTP_HOST": "127.0.0.1", "SPOOL_PATH": str(tmp / "spool.sqlite"),
            "SHUTDOWN_TIMEOUT": "3"}  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "agent", "run"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_until(lambda: _ready(f"http://127.0.0.1:{http_port}/health/basic"), timeout=30, what="agent serving")
        yield proc
    finally:
        stop_process(proc, timeout=15)


def alerts_at(received: dict[str, list[dict[str, Any]]], path: str) -> dict[str, dict[str, str]]:
    return {a["labels"]["alertname"]: a["labels"] for body in received.get(path, []) for a in body["alerts"]
            if a["status"] == "firing"}  # fmt: skip


def test_a_real_prometheus_and_alertmanager_page_for_a_real_agent(clean_db: BackgroundStack, tmp_path: Path) -> None:
    asyncio.run(refused_record_in(tmp_path / "spool.sqlite"))
    agent_port = free_port()
    with (
        webhook() as (receiver_url, received),
        alertmanager(tmp_path, receiver_url=receiver_url) as am,
        real_agent(clean_db, tmp_path, http_port=agent_port),
        prometheus_server(
            tmp_path,
            blue_port=agent_port,
            green_port=None,
            stats_port=None,
            alertmanager=am,
            rules=immediate_rules(tmp_path),
        ),  # fmt: skip
    ):

        def delivered() -> bool:
            return "ALDPlcConnectionLost" in alerts_at(received, "/oncall") and (
                "ALDSpoolQuarantineNotEmpty" in alerts_at(received, "/team"))  # fmt: skip

        wait_until(delivered, timeout=60, interval=0.5, what="both alerts delivered")
    oncall, team = alerts_at(received, "/oncall"), alerts_at(received, "/team")
    assert (oncall["ALDPlcConnectionLost"]["severity"], oncall["ALDPlcConnectionLost"]["color"]) == ("critical", "blue")
    assert team["ALDSpoolQuarantineNotEmpty"]["severity"] == "warning"
    assert all(labels["severity"] == "critical" for labels in oncall.values())  # routed by severity
    assert all(labels["severity"] == "warning" for labels in team.values())
