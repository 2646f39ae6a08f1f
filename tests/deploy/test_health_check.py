"""scripts/health-check.sh against a live stand-in agent (the real HttpServer): verdicts, retries, exit codes,
--json, --basic, --quiet, usage, and the invocations of the deployment guide verbatim (a base URL, not /health)."""

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
    assert report.keys() == {"url", "mode", "healthy", "attempts", "http_code", "status", "reason", "body"}
    assert (report["mode"], report["healthy"], report["attempts"], report["http_code"]) == ("full", True, 1, 200)
    assert (report["status"], report["body"]["color"], report["body"]["version"]) == ("healthy", "blue", "1.4.2")
    assert report["reason"] is None


# The deployment guide's own invocations, verbatim but for the port: `--url` is the agent's base URL.
def test_guide_url_json_asks_health_at_a_base_url(agent: Standin) -> None:
    result = health_check("--url", agent.url, "--json")
    assert (result.returncode, result.stderr) == (0, "")
    report = json.loads(result.stdout)
    verdict = (report["url"], report["healthy"], report["http_code"], report["status"])
    assert verdict == (f"{agent.url}/health", True, 200, "healthy")


@pytest.mark.parametrize("suffix", ["", "/"], ids=["no-path", "slash"])
def test_guide_retries_interval_at_a_base_url(agent: Standin, suffix: str) -> None:
    started = time.monotonic()
    result = health_check("--url", agent.url + suffix, "--retries", "10", "--interval", "5")
    assert result.returncode == 0, result.stderr
    expected = [f"==> GET {agent.url}/health (attempt 1/10)", "healthy: HTTP 200, status healthy"]
    assert result.stdout.splitlines() == expected
    assert time.monotonic() - started < 5  # the first attempt answers: no pause


def test_guide_basic_quiet_at_a_base_url(agent: Standin) -> None:
    result = health_check("--basic", "--quiet", env={"HEALTH_URL": agent.url})
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    report = json.loads(health_check("--basic", "--json", env={"HEALTH_URL": agent.url}).stdout)
    assert (report["url"], report["status"]) == (f"{agent.url}/health/basic", "ok")


def test_an_answer_that_is_not_a_health_report_fails_at_once_with_the_reason(agent: Standin) -> None:
    started = time.monotonic()
    result = health_check("--url", f"{agent.url}/metrics", "--retries", "10", "--interval", "5")
    assert result.returncode == 1
    assert time.monotonic() - started < 5  # no retry: the URL is wrong, waiting will not fix it
    assert result.stderr.splitlines()[0] == (
        f'error: unhealthy at once, retrying cannot help: HTTP 200 without a JSON "status": not an agent health'
        f" report (give the agent's base URL or its /health URL) from {agent.url}/metrics"
    )


def test_a_404_fails_at_once(agent: Standin) -> None:
    report = json.loads(health_check("--url", f"{agent.url}/nowhere", "-r", "10", "-i", "5", "--json").stdout)
    assert (report["healthy"], report["attempts"], report["http_code"]) == (False, 1, 404)
    assert report["reason"].startswith("HTTP 404: not an agent health endpoint")


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
    assert result.stderr.startswith(
        f"error: unhealthy after 2 attempt(s): HTTP 503, status unhealthy (not serving) from {agent.url}/health"
    )
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
    assert report["reason"].startswith("no answer (curl: (7)")  # curl's own words: connection refused


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
