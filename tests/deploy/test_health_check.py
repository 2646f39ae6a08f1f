"""scripts/health-check.sh against a live stand-in agent (the real HttpServer): verdicts, retries, exit codes,
--json, --basic, --quiet, usage."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy_support import ROOT, Standin, free_port, require_tool, standin_agent

SCRIPT = ROOT / "scripts/health-check.sh"


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Standin]:
    require_tool("curl")
    require_tool("jq")
    with standin_agent(tmp_path, color="blue", version="1.4.2") as standin:
        yield standin


def health_check(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, **(env or {})})  # fmt: skip


def test_healthy(agent: Standin) -> None:
    result = health_check("--url", f"{agent.url}/health")
    assert result.returncode == 0, result.stderr
    expected = [f"==> GET {agent.url}/health (attempt 1/3)", "healthy: HTTP 200, status healthy"]
    assert result.stdout.splitlines() == expected


def test_json_shape(agent: Standin) -> None:
    result = health_check("-u", f"{agent.url}/health", "--json")
    assert result.returncode == 0 and result.stderr == ""
    report = json.loads(result.stdout)
    assert report.keys() == {"url", "mode", "healthy", "attempts", "http_code", "status", "body"}
    assert (report["mode"], report["healthy"], report["attempts"], report["http_code"]) == ("full", True, 1, 200)
    assert (report["status"], report["body"]["color"], report["body"]["version"]) == ("healthy", "blue", "1.4.2")


def test_basic_asks_health_basic(agent: Standin) -> None:
    report = json.loads(health_check("--url", f"{agent.url}/health", "--basic", "--json").stdout)
    assert (report["url"], report["mode"], report["status"]) == (f"{agent.url}/health/basic", "basic", "ok")


def test_quiet_prints_nothing(agent: Standin) -> None:
    result = health_check("-u", f"{agent.url}/health", "-q")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    agent.set_serving(False)
    result = health_check("-u", f"{agent.url}/health", "-q", "-r", "1")
    assert (result.returncode, result.stdout, result.stderr) == (1, "", "")


def test_unhealthy_after_every_retry(agent: Standin) -> None:
    agent.set_serving(False)  # 503 "unhealthy"
    started = time.monotonic()
    result = health_check("-u", f"{agent.url}/health", "--retries", "3", "--interval", "0.2", "--json")
    assert result.returncode == 1
    assert time.monotonic() - started >= 0.4  # two pauses between three attempts
    report = json.loads(result.stdout)
    verdict = (report["healthy"], report["attempts"], report["http_code"], report["status"])
    assert verdict == (False, 3, 503, "unhealthy")


def test_error_line_on_stderr(agent: Standin) -> None:
    agent.set_serving(False)
    result = health_check("-u", f"{agent.url}/health", "-r", "2", "-i", "0.1")
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: unhealthy after 2 attempt(s): HTTP 503, status unhealthy from {agent.url}")
    assert result.stdout.count("==> GET") == 2


def test_recovers_within_retries(agent: Standin) -> None:
    agent.set_serving(False)
    timer = threading.Timer(0.5, agent.set_serving, args=(True,))
    timer.start()
    try:
        report = json.loads(health_check("-u", f"{agent.url}/health", "-r", "20", "-i", "0.2", "--json").stdout)
    finally:
        timer.cancel()
    assert report["healthy"] and report["attempts"] > 1


def test_degraded_counts_as_up_unless_told_otherwise(tmp_path: Path) -> None:
    require_tool("curl")
    require_tool("jq")
    with standin_agent(tmp_path, color="green", version="1.0.0", quarantined=1) as agent:
        assert health_check("-u", f"{agent.url}/health", "-q").returncode == 0
        strict = health_check("-u", f"{agent.url}/health", "-q", "-r", "1", env={"HEALTH_ACCEPT": "healthy"})
        assert strict.returncode == 1
        assert health_check("-u", f"{agent.url}/health", "--basic", "-q").returncode == 0


def test_nothing_listening() -> None:
    require_tool("curl")
    require_tool("jq")
    report = json.loads(health_check("-u", f"http://127.0.0.1:{free_port()}/health", "-r", "1", "--json").stdout)
    assert (report["healthy"], report["http_code"], report["body"]) == (False, 0, None)


@pytest.mark.parametrize(
    "args",
    [["--bogus"], ["--retries", "0"], ["--retries"], ["--interval", "soon"], ["--json", "--quiet"],
     ["--url", "localhost:8000"]],
    ids=["unknown-flag", "zero-retries", "missing-value", "bad-interval", "json-and-quiet", "url-without-scheme"],
)  # fmt: skip
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = health_check(*args)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: ") and "usage: scripts/health-check.sh" in result.stderr


def test_help_prints_the_defaults() -> None:
    result = health_check("--help", env={"HEALTH_RETRIES": "7"})
    assert result.returncode == 0 and "default 7" in result.stdout and "http://127.0.0.1:8000/health" in result.stdout


def test_dry_run_makes_no_request() -> None:
    result = health_check("--dry-run", "-u", f"http://127.0.0.1:{free_port()}/health")
    assert result.returncode == 0 and result.stdout.startswith("==> would GET")
