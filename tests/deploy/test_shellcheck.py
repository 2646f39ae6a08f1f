"""Every shell script of the project (deploy harness with both runtimes, test and run commands, CI) is ShellCheck
clean (all severities; suppressions are justified inline or in scripts/lib/deploy/.shellcheckrc) and parses with
bash -n. scripts/lib/deploy/*.sh (runtime-local.sh, lease.sh, ...) are found by the glob."""

from __future__ import annotations

import subprocess

import pytest
from deploy_support import ROOT, require_tool

SCRIPTS = [
    "scripts/deploy.sh", "scripts/rollback.sh", "scripts/health-check.sh", "scripts/lib/tools.sh",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "scripts/lib/deploy").glob("*.sh")),
    "haproxy/make-selfsigned-cert.sh",
    "scripts/test.sh", "scripts/run-local.sh", "scripts/lib/env.sh", "scripts/lib/node.sh", ".ci/run",
]  # fmt: skip


@pytest.mark.parametrize("script", SCRIPTS)
def test_shellcheck_clean(script: str) -> None:
    result = subprocess.run([require_tool("shellcheck"), "-x", script], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_bash_parses(script: str) -> None:
    assert subprocess.run(["bash", "-n", script], cwd=ROOT, timeout=30).returncode == 0


def test_cert_script_makes_a_bundle_haproxy_can_load(tmp_path) -> None:
    require_tool("openssl")
    script = ROOT / "haproxy/make-selfsigned-cert.sh"
    dry = subprocess.run([str(script), "-o", str(tmp_path / "c"), "--dry-run"], capture_output=True, text=True)
    assert dry.returncode == 0 and not (tmp_path / "c").exists()
    made = subprocess.run([str(script), "-o", str(tmp_path / "c"), "-n", "agent.local"], capture_output=True, text=True)
    bundle = tmp_path / "c/ald-agent.pem"
    assert made.returncode == 0 and bundle.stat().st_mode & 0o777 == 0o600
    text = bundle.read_text()
    assert "BEGIN CERTIFICATE" in text and "PRIVATE KEY" in text
    assert subprocess.run([str(script), "--bogus"], capture_output=True).returncode == 2
