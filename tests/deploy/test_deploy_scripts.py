"""scripts/deploy.sh and scripts/rollback.sh: usage, --dry-run (every step printed, nothing changed), the state
file and its lock, and the compose runtime driven through a recording `docker` stub on PATH while the traffic
switch runs against a real HAProxy in front of two stand-in agent colors."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import threading
import urllib.error
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from deploy_support import ROOT, Haproxy, Standin, get_json, haproxy, require_tool, standin_agent, wait_until

DEPLOY = ROOT / "scripts/deploy.sh"
ROLLBACK = ROOT / "scripts/rollback.sh"
ENV_EXAMPLE = ROOT / "config/production.env.example"
STANDIN_TOKEN = "standin-admin-token"

# A `docker` that records each call (with the two tag variables compose interpolates) and fakes
# `compose ps --format json` with the health DOCKER_STUB_HEALTH (default healthy).
DOCKER_STUB = """#!/usr/bin/env bash
tags="AGENT_TAG_BLUE=${AGENT_TAG_BLUE:-} AGENT_TAG_GREEN=${AGENT_TAG_GREEN:-}"
printf '%s %s\\n' "$tags" "$*" >>"$DOCKER_STUB_LOG"
case " $* " in
  *" ps "*) printf '{"Service":"%s","State":"running","Health":"%s"}\\n' "${!#}" "${DOCKER_STUB_HEALTH:-healthy}" ;;
esac
"""


@pytest.fixture
def stub(tmp_path: Path) -> Path:
    """PATH directory holding the recording docker stub; its log is tmp_path/docker.log."""
    for tool in ("jq", "socat", "flock", "curl"):
        require_tool(tool)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(DOCKER_STUB)
    (bin_dir / "docker").chmod(0o755)
    return bin_dir


def script_env(tmp_path: Path, stub: Path | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEPLOY_", "HAPROXY_", "AGENT_"))}
    env.update(DEPLOY_STATE_DIR=str(tmp_path / "state"), DOCKER_STUB_LOG=str(tmp_path / "docker.log"),
               ENV_FILE=str(ENV_EXAMPLE), HAPROXY_SOCKET=str(tmp_path / "absent.sock"), DEPLOY_ACTOR="ci")  # fmt: skip
    if stub is not None:
        env["PATH"] = f"{stub}{os.pathsep}{env['PATH']}"
    env.update(extra)
    return env


def run(script: Path, *args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(script), *args], capture_output=True, text=True, env=env, timeout=timeout,
                          stdin=subprocess.DEVNULL)  # fmt: skip


def docker_calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "docker.log"
    return log.read_text().splitlines() if log.exists() else []


def write_state(tmp_path: Path, *, active: str, versions: dict[str, str | None], history: list[dict]) -> Path:
    state_dir = tmp_path / "state"
    state_dir.mkdir(exist_ok=True)
    path = state_dir / "test.json"
    other = "green" if active == "blue" else "blue"
    path.write_text(json.dumps({
        "schema": 1, "environment": "test", "runtime": "compose", "active_color": active,
        "active_version": versions[active], "colors": {c: {"version": v} for c, v in versions.items()},
        "lb": {active: 100, other: 0}, "history": history,
    }))  # fmt: skip
    return path


def entry(id_: int, version: str, *, strategy: str = "blue-green", result: str = "success", previous=None) -> dict:
    return {"id": id_, "ts": "2026-01-01T00:00:00Z", "strategy": strategy, "version": version, "color": "blue",
            "result": result, "previous_version": previous, "actor": "ci", "runtime": "compose"}  # fmt: skip


# --- usage ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "args"),
    [
        (DEPLOY, ["--tag", "1.0.0"]),
        (DEPLOY, ["-e", "test"]),
        (DEPLOY, ["-e", "test", "-t", "1.0.0", "--strategy", "big-bang"]),
        (DEPLOY, ["-e", "test", "-t", "1.0.0", "--runtime", "k8s"]),
        (DEPLOY, ["-e", "test", "-t", "1.0.0", "--timeout", "soon"]),
        (DEPLOY, ["-e", "Test!", "-t", "1.0.0"]),
        (DEPLOY, ["-e", "test", "-t", "bad tag"]),
        (DEPLOY, ["-e", "test", "-t", "1.0.0", "--bogus"]),
        (DEPLOY, ["-e", "test", "-t"]),
        (ROLLBACK, []),
        (ROLLBACK, ["-e", "test", "--method", "yolo"]),
        (ROLLBACK, ["-e", "test", "--method", "manual", "--version", "1.0.0"]),
        (ROLLBACK, ["-e", "test", "--bogus"]),
    ],
    ids=["no-env", "no-tag", "bad-strategy", "bad-runtime", "bad-timeout", "bad-env", "bad-tag", "unknown-flag",
         "missing-value", "rb-no-env", "rb-bad-method", "rb-manual-with-version", "rb-unknown-flag"],
)  # fmt: skip
def test_usage_errors_exit_2(tmp_path: Path, script: Path, args: list[str]) -> None:
    result = run(script, *args, env=script_env(tmp_path))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and f"usage: scripts/{script.name}" in result.stderr
    assert result.stdout == "" and not (tmp_path / "state").exists()


@pytest.mark.parametrize("script", [DEPLOY, ROLLBACK], ids=["deploy", "rollback"])
def test_help_prints_defaults(tmp_path: Path, script: Path) -> None:
    result = run(script, "--help", env=script_env(tmp_path, DEPLOY_TIMEOUT="77"))
    assert result.returncode == 0 and "default 77" in result.stdout and str(tmp_path / "state") in result.stdout


# --- dry run --------------------------------------------------------------------------------------------------


def test_dry_run_first_deploy_prints_every_step_and_changes_nothing(tmp_path: Path, stub: Path) -> None:
    run_dir_existed = (ROOT / "run").exists()
    result = run(DEPLOY, "-e", "test", "-t", "1.0.0", "--dry-run", env=script_env(tmp_path, stub))
    assert result.returncode == 0, result.stderr
    steps = [line for line in result.stdout.splitlines() if line.startswith("==> ")]
    assert steps[0] == "==> deploy 1.0.0 to test: blue-green, runtime compose (dry run)"
    assert "==> starting blue on 1.0.0" in steps and "==> weights: blue=100, green=0" in steps
    assert steps[-1] == "==> done: test serves 1.0.0 from blue"
    planned = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("+ ")]
    assert any("docker compose -p ald-agent-test" in p and "ald-control-blue" in p and "AGENT_TAG_BLUE=1.0.0" in p
               for p in planned)  # fmt: skip
    assert "+ hap: set weight be_agent/blue 100; set weight be_agent/green 0" in planned
    assert "+ state: history += blue-green 1.0.0 on blue: success" in planned
    assert docker_calls(tmp_path) == []  # the stub was never called
    assert not (tmp_path / "state").exists()  # no state, no lock file
    assert (ROOT / "run").exists() == run_dir_existed


def test_dry_run_plans_the_standby_color_and_keeps_the_state(tmp_path: Path, stub: Path) -> None:
    state = write_state(tmp_path, active="blue", versions={"blue": "1.0.0", "green": None}, history=[entry(1, "1.0.0")])
    before = state.read_bytes()
    for strategy, color in (("blue-green", "green"), ("canary", "green"), ("rolling", "blue")):
        result = run(DEPLOY, "-e", "test", "-t", "1.1.0", "-s", strategy, "-n", env=script_env(tmp_path, stub))
        assert result.returncode == 0, result.stderr
        assert f"==> starting {color} on 1.1.0" in result.stdout  # rolling restarts the active color in place
        steps = [line for line in result.stdout.splitlines() if line.startswith("==> lease")]
        assert steps[0] == "==> lease: blue stops claiming, lets a running recipe finish, releases (up to 120s)"
        assert "POST http://127.0.0.1:8001/admin/handover (Authorization: Bearer $ADMIN_TOKEN)" in result.stdout
    canary = run(DEPLOY, "-e", "test", "-t", "1.1.0", "-s", "canary", "-n", env=script_env(tmp_path, stub)).stdout
    assert [ln for ln in canary.splitlines() if ln.startswith("==> weights")] == [
        "==> weights: green=10, blue=90", "==> weights: green=25, blue=75", "==> weights: green=50, blue=50",
        "==> weights: green=100, blue=0"]  # fmt: skip
    assert state.read_bytes() == before and docker_calls(tmp_path) == []


def test_deploying_the_active_version_needs_force(tmp_path: Path, stub: Path) -> None:
    write_state(tmp_path, active="blue", versions={"blue": "1.0.0", "green": None}, history=[entry(1, "1.0.0")])
    refused = run(DEPLOY, "-e", "test", "-t", "1.0.0", "-n", env=script_env(tmp_path, stub))
    assert refused.returncode == 1 and "already active on blue" in refused.stderr
    assert run(DEPLOY, "-e", "test", "-t", "1.0.0", "-n", "--force", env=script_env(tmp_path, stub)).returncode == 0


def test_canary_needs_a_serving_version(tmp_path: Path, stub: Path) -> None:
    result = run(DEPLOY, "-e", "test", "-t", "1.0.0", "-s", "canary", "-n", env=script_env(tmp_path, stub))
    assert result.returncode == 1 and "canary needs a version already serving" in result.stderr


def test_dry_run_rollback_targets_the_last_good_version(tmp_path: Path, stub: Path) -> None:
    history = [entry(1, "1.0.0"), entry(2, "1.1.0", previous="1.0.0"), entry(3, "1.2.0", result="aborted"),
               entry(4, "1.2.0", previous="1.1.0")]  # fmt: skip
    write_state(tmp_path, active="green", versions={"blue": "1.1.0", "green": "1.2.0"}, history=history)
    result = run(ROLLBACK, "-e", "test", "--dry-run", env=script_env(tmp_path, stub))
    assert result.returncode == 0, result.stderr
    assert "==> plan: green (1.2.0) → blue (1.1.0)" in result.stdout
    assert "blue already runs 1.1.0: checking it, then flipping" in result.stdout
    assert "starting" not in result.stdout  # the warm standby is reused, nothing restarted


def test_last_good_version_skips_versions_rolled_back_from(tmp_path: Path, stub: Path) -> None:
    history = [entry(1, "1.0.0"), entry(2, "1.1.0", previous="1.0.0"),
               entry(3, "1.0.0", strategy="rollback-version", previous="1.1.0")]  # fmt: skip
    write_state(tmp_path, active="blue", versions={"blue": "1.0.0", "green": "1.1.0"}, history=history)
    result = run(ROLLBACK, "-e", "test", "--dry-run", env=script_env(tmp_path, stub))
    assert result.returncode == 1 and "no earlier good version" in result.stderr
    explicit = run(ROLLBACK, "-e", "test", "--dry-run", "--version", "0.9.0", env=script_env(tmp_path, stub))
    assert explicit.returncode == 0 and "==> starting green on 0.9.0" in explicit.stdout


def test_rollback_refuses_without_yes_and_without_a_terminal(tmp_path: Path, stub: Path) -> None:
    write_state(tmp_path, active="blue", versions={"blue": "1.1.0", "green": "1.0.0"},
                history=[entry(1, "1.0.0"), entry(2, "1.1.0", previous="1.0.0")])  # fmt: skip
    result = run(ROLLBACK, "-e", "test", env=script_env(tmp_path, stub))
    assert result.returncode == 1 and "refusing without --yes" in result.stderr
    assert docker_calls(tmp_path) == []


# --- lock -----------------------------------------------------------------------------------------------------


def test_a_second_deploy_is_refused_while_the_lock_is_held(tmp_path: Path, stub: Path) -> None:
    (tmp_path / "state").mkdir()
    with (tmp_path / "state/test.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a running deploy holds (flock(1) on the same file)
        for script, args in ((DEPLOY, ["-t", "1.0.0"]), (ROLLBACK, ["--yes"])):
            result = run(script, "-e", "test", *args, env=script_env(tmp_path, stub))
            assert result.returncode == 1 and "holds" in result.stderr, result.stderr
    assert docker_calls(tmp_path) == [] and not (tmp_path / "state/test.json").exists()


# --- compose runtime, recording stub, real HAProxy --------------------------------------------------------------


@dataclass
class Stage:
    tmp: Path
    env: dict[str, str]
    lb: Haproxy
    blue: Standin
    green: Standin

    def weights(self) -> tuple[str, str]:
        servers = self.lb.servers()
        return servers["blue"]["weight"], servers["green"]["weight"]

    def state(self) -> dict:
        return json.loads((self.tmp / "state/test.json").read_text())


@pytest.fixture
def stage(tmp_path: Path, stub: Path) -> Iterator[Stage]:
    """Blue serves 1.0.0; green (the standby container the stub 'starts') answers as 2.0.0."""
    lease = {"lease_file": tmp_path / "lease", "admin_token": STANDIN_TOKEN}
    with (
        standin_agent(tmp_path, color="blue", version="1.0.0", **lease) as blue,
        standin_agent(tmp_path, color="green", version="2.0.0", role="standby", **lease) as green,
        haproxy(tmp_path, blue_port=blue.port, green_port=green.port) as lb,
    ):
        wait_until(lambda: lb.up("blue") and lb.up("green"), timeout=10, what="both colors UP")
        write_state(tmp_path, active="blue", versions={"blue": "1.0.0", "green": None}, history=[entry(1, "1.0.0")])
        env = script_env(tmp_path, stub, HAPROXY_SOCKET=str(lb.socket), HAPROXY_STATE_FILE=str(lb.state_file),
                         AGENT_BLUE_PORT=str(blue.port), AGENT_GREEN_PORT=str(green.port), DEPLOY_TIMEOUT="3",
                         POST_SWITCH_SOAK="0.5", DRAIN_TIMEOUT="5", LB_POLL_INTERVAL="0.05",
                         DEPLOY_ADMIN_TOKEN=STANDIN_TOKEN, LEASE_TIMEOUT="3")  # fmt: skip
        yield Stage(tmp_path, env, lb, blue, green)


def _load_until(url: str, done: threading.Event, results: Counter, *, limit: int = 20000) -> None:
    while not done.is_set() and sum(results.values()) < limit:
        try:
            status, body = get_json(url, timeout=5)
            results[body.get("color", "?") if status == 200 else f"http {status}"] += 1
        except (OSError, urllib.error.URLError) as exc:
            results[f"error {type(exc).__name__}"] += 1


def test_blue_green_deploy_then_rollback_under_load(stage: Stage) -> None:
    url = f"http://127.0.0.1:{stage.lb.http_port}/health"
    done, results = threading.Event(), Counter()
    loaders = [threading.Thread(target=_load_until, args=(url, done, results)) for _ in range(2)]
    for loader in loaders:
        loader.start()
    try:
        deployed = run(DEPLOY, "-e", "test", "-t", "2.0.0", env=stage.env)
        rolled_back = run(ROLLBACK, "-e", "test", "--yes", env=stage.env)
    finally:
        done.set()
        for loader in loaders:
            loader.join(30)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert rolled_back.returncode == 0, rolled_back.stdout + rolled_back.stderr
    failed = {k: v for k, v in results.items() if k not in ("blue", "green")}
    assert failed == {} and results["green"] > 0, results  # traffic moved twice, not one request failed
    print(f"\nrequests during deploy + rollback: {dict(results)}")

    calls = docker_calls(stage.tmp)
    project = f"compose -p ald-agent-test --env-file {ENV_EXAMPLE} -f {ROOT / 'docker-compose.prod.yml'}"
    assert calls[:3] == [
        f"AGENT_TAG_BLUE=1.0.0 AGENT_TAG_GREEN=1.0.0 {project} up -d --no-deps haproxy prometheus alertmanager "
        "blackbox grafana",
        f"AGENT_TAG_BLUE=1.0.0 AGENT_TAG_GREEN=2.0.0 {project} up -d --no-deps --force-recreate ald-control-green",
        f"AGENT_TAG_BLUE=1.0.0 AGENT_TAG_GREEN=2.0.0 {project} ps --format json ald-control-green",
    ]
    # the rollback reused the warm blue: no container started or stopped after the deploy
    assert not any(" up " in c.split(project)[1] or " stop " in c for c in calls[3:])

    assert stage.weights() == ("100", "0")
    state = stage.state()
    assert (state["active_color"], state["active_version"]) == ("blue", "1.0.0")
    assert state["colors"]["green"]["version"] == "2.0.0"  # still warm, for a roll forward
    assert [(h["id"], h["strategy"], h["version"], h["result"], h["previous_version"]) for h in state["history"]] == [
        (1, "blue-green", "1.0.0", "success", None),
        (2, "blue-green", "2.0.0", "success", "1.0.0"),
        (3, "rollback-version", "1.0.0", "success", "2.0.0"),
    ]
    assert "be_agent" in stage.lb.state_file.read_text()  # show servers state saved for a restart
    # the lease moved before the traffic each time, and is back on blue
    assert (stage.tmp / "lease").read_text() == "blue"
    assert [h["handover"]["from"] + ">" + h["handover"]["to"] for h in state["history"][1:]] == [
        "blue>green",
        "green>blue",
    ]


def test_new_color_failing_its_checks_is_aborted_and_traffic_untouched(stage: Stage) -> None:
    stage.green.set_serving(False)  # green's /health answers 503
    result = run(DEPLOY, "-e", "test", "-t", "2.0.0", env=stage.env)
    assert result.returncode == 1 and "failed its checks; traffic stays on blue" in result.stderr
    assert stage.weights() == ("100", "0")
    assert docker_calls(stage.tmp)[-2].endswith("logs --no-color --tail 50 ald-control-green")  # diagnostics first
    assert docker_calls(stage.tmp)[-1].endswith("stop ald-control-green")
    state = stage.state()
    assert (state["active_color"], state["active_version"]) == ("blue", "1.0.0")
    assert state["history"][-1]["result"] == "aborted" and state["colors"]["green"]["version"] is None


def test_unhealthy_container_is_aborted_before_any_http_check(stage: Stage) -> None:
    env = {**stage.env, "DOCKER_STUB_HEALTH": "unhealthy"}
    result = run(DEPLOY, "-e", "test", "-t", "2.0.0", env=env)
    assert result.returncode == 1 and "green container is unhealthy" in result.stderr
    assert "==> health of green" not in result.stdout and stage.weights() == ("100", "0")


def test_manual_rollback_flips_to_the_running_standby(stage: Stage) -> None:
    assert run(DEPLOY, "-e", "test", "-t", "2.0.0", env=stage.env).returncode == 0
    assert stage.weights() == ("0", "100")
    result = run(ROLLBACK, "-e", "test", "--method", "manual", "-y", env=stage.env)
    assert result.returncode == 0, result.stderr
    assert stage.weights() == ("100", "0")
    last = stage.state()["history"][-1]
    assert (last["strategy"], last["version"], last["color"], last["previous_version"]) == (
        "rollback-manual", "1.0.0", "blue", "2.0.0")  # fmt: skip


# --- local runtime, dry run (tests/deploy/test_e2e_*.py run it for real) -----------------------------------------


def test_dry_run_local_runtime_plans_processes_and_lease_and_changes_nothing(tmp_path: Path) -> None:
    write_state(tmp_path, active="blue", versions={"blue": "1.0.0", "green": None}, history=[entry(1, "1.0.0")])
    before = (tmp_path / "state/test.json").read_bytes()
    env = script_env(tmp_path, LOCAL_RUN_DIR=str(tmp_path / "run"), LOCAL_RELEASES_DIR=str(tmp_path / "releases"),
                     ENV_FILE=str(tmp_path / "absent.env"))  # fmt: skip
    result = run(DEPLOY, "-e", "test", "-t", "1.1.0", "--runtime", "local", "--dry-run", "--force-handover", env=env)
    assert result.returncode == 0, result.stderr
    steps = [line for line in result.stdout.splitlines() if line.startswith("==> ")]
    assert steps[steps.index("==> starting green on 1.1.0 (release " + str(tmp_path / "releases/1.1.0") +
                             ", http :8002)") + 1:] == [
        "==> waiting for the green process to serve http://127.0.0.1:8002/health/basic, up to 120s",
        "==> health of green: http://127.0.0.1:8002/health",
        "==> waiting for HAProxy to see green UP (L7OK), up to 120s",
        "==> lease: blue stops claiming, stops a running recipe (safe state), releases (up to 120s)",
        "==> lease: green takes it (activate, then /health role active, up to 20s)",
        "==> weights: green=100, blue=0", "==> draining blue (current sessions to 0, up to 30s)",
        "==> watching green for 3s with traffic", "==> health of green: http://127.0.0.1:8002/health",
        "==> waiting for HAProxy to see blue UP (L7OK), up to 5s".replace("blue", "green"),
        "==> done: test serves 1.1.0 from green",
    ]  # fmt: skip
    assert "+ POST http://127.0.0.1:8001/admin/handover?force=true" in result.stdout
    assert "+ POST http://127.0.0.1:8002/admin/activate" in result.stdout
    assert "haproxy -D -p" in result.stdout and "setsid env -i" in result.stdout
    assert (tmp_path / "state/test.json").read_bytes() == before
    assert not (tmp_path / "run").exists() and not (tmp_path / "releases").exists()


@pytest.mark.parametrize("flag", ["--build", "--pull"])
def test_the_image_is_built_or_pulled_before_the_color_starts(tmp_path: Path, stub: Path, flag: str) -> None:
    result = run(DEPLOY, "-e", "test", "-t", "1.0.0", flag, "--dry-run", env=script_env(tmp_path, stub))
    assert result.returncode == 0, result.stderr
    planned = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("+ ")]
    verb = flag.removeprefix("--")
    fetch = next(i for i, p in enumerate(planned) if "docker compose -p ald-agent-test" in p and p.endswith(
        f".yml {verb} ald-control-blue"))  # fmt: skip
    start = next(i for i, p in enumerate(planned) if " up -d --no-deps --force-recreate ald-control-blue" in p)
    assert fetch < start and "AGENT_TAG_BLUE=1.0.0" in planned[fetch]
    assert docker_calls(tmp_path) == []


def test_build_is_for_the_compose_runtime_only(tmp_path: Path) -> None:
    result = run(DEPLOY, "-e", "test", "-t", "1.0.0", "--build", "--runtime", "local", "-n", env=script_env(tmp_path))
    assert result.returncode == 2 and "--build and --pull are for the compose runtime" in result.stderr


def test_an_admin_token_rotation_deploy_asks_the_old_color_with_the_previous_token(tmp_path: Path, stub: Path) -> None:
    """The environment file has the new ADMIN_TOKEN (the color being started holds it); the color still running
    holds the old one: the deploy retries with DEPLOY_ADMIN_TOKEN_PREVIOUS on its 401, and the lease moves."""
    old, new = "old-admin-token-0123456789abcdef0123", "new-admin-token-fedcba9876543210fedc"
    lease_file = tmp_path / "lease"
    with (
        standin_agent(tmp_path, color="blue", version="1.0.0", lease_file=lease_file, admin_token=old) as blue,
        standin_agent(tmp_path, color="green", version="2.0.0", role="standby", lease_file=lease_file,
                      admin_token=new) as green,
        haproxy(tmp_path, blue_port=blue.port, green_port=green.port) as lb,
    ):  # fmt: skip
        wait_until(lambda: lb.up("blue") and lb.up("green"), timeout=10, what="both colors UP")
        write_state(tmp_path, active="blue", versions={"blue": "1.0.0", "green": None}, history=[entry(1, "1.0.0")])
        env = script_env(tmp_path, stub, HAPROXY_SOCKET=str(lb.socket), HAPROXY_STATE_FILE=str(lb.state_file),
                         AGENT_BLUE_PORT=str(blue.port), AGENT_GREEN_PORT=str(green.port), DEPLOY_TIMEOUT="3",
                         POST_SWITCH_SOAK="0.5", DRAIN_TIMEOUT="5", LB_POLL_INTERVAL="0.05", LEASE_TIMEOUT="3",
                         DEPLOY_ADMIN_TOKEN=new)  # fmt: skip
        rotated = run(DEPLOY, "-e", "test", "-t", "2.0.0", env=env | {"DEPLOY_ADMIN_TOKEN_PREVIOUS": old})
        assert rotated.returncode == 0, rotated.stdout + rotated.stderr
        assert "blue refuses the current admin token: trying the previous one (rotation)" in rotated.stderr
        assert old not in rotated.stdout + rotated.stderr and new not in rotated.stdout + rotated.stderr
        state = json.loads((tmp_path / "state/test.json").read_text())
        assert (state["active_color"], state["history"][-1]["result"]) == ("green", "success")
