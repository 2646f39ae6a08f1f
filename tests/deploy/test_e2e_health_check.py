"""scripts/health-check.sh against real agents started by the local runtime: exit codes and the JSON report for
the active color, the warm standby, and a port where nothing listens."""

from __future__ import annotations

import json

from local_stage import HEALTH_CHECK, LocalStage


def test_health_check_exit_codes_and_json_against_real_agents(local: LocalStage) -> None:
    local.release("v1")
    local.release("v2")
    assert local.deploy("v1").returncode == 0
    blue = local.script(HEALTH_CHECK, "--url", f"{local.url('blue')}/health", "--json")
    assert (blue.returncode, blue.stderr) == (0, "")
    report = json.loads(blue.stdout)
    assert (report["healthy"], report["http_code"], report["status"], report["mode"]) == (True, 200, "healthy", "full")
    body = report["body"]
    assert (body["role"], body["color"], body["services"]["plc"]["status"]) == ("active", "blue", "up")

    basic = local.script(HEALTH_CHECK, "--url", f"{local.url('blue')}/health", "--basic", "--json")
    assert basic.returncode == 0 and json.loads(basic.stdout)["body"] == {"status": "ok"}

    # The deployment guide's invocations verbatim (but for the port): the base URL, not /health.
    guide = local.script(HEALTH_CHECK, "--url", local.url("blue"), "--json")
    assert (guide.returncode, json.loads(guide.stdout)["status"]) == (0, "healthy"), guide.stdout
    patient = local.script(HEALTH_CHECK, "--url", local.url("blue"), "--retries", "10", "--interval", "5")
    assert patient.returncode == 0 and patient.seconds < 5, patient
    liveness = local.script(HEALTH_CHECK, "--basic", "--quiet", HEALTH_URL=local.url("blue"))
    assert (liveness.returncode, liveness.stdout, liveness.stderr) == (0, "", "")

    nothing = local.script(HEALTH_CHECK, "--url", f"{local.url('green')}/health", "-r", "2", "-i", "0.1", "--json")
    assert nothing.returncode == 1  # green not started yet: no answer
    assert {k: json.loads(nothing.stdout)[k] for k in ("healthy", "attempts", "http_code", "body")} == {
        "healthy": False, "attempts": 2, "http_code": 0, "body": None}  # fmt: skip

    assert local.deploy("v2").returncode == 0  # green active, blue the warm standby
    standby = local.script(HEALTH_CHECK, "--url", f"{local.url('blue')}/health", "--json")
    assert standby.returncode == 0
    assert (json.loads(standby.stdout)["body"]["role"], json.loads(standby.stdout)["status"]) == ("standby", "healthy")
    quiet = local.script(HEALTH_CHECK, "-u", f"{local.url('green')}/health", "-q")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    usage = local.script(HEALTH_CHECK, "--retries", "0")
    assert usage.returncode == 2 and usage.stderr.startswith("error: ")
