"""supalocal through the official supabase-js client, for what a browser dashboard does with it.

The tests themselves are JavaScript (``tests/supalocal/js/*.test.mjs``, ``node:test``, supabase-js pinned by
``tests/supalocal/js/package-lock.json``; docs/LOCAL_STACK.md §8.6): resource embedding, JSON operators, counted
pages, CSV, the 416 of a range past the end and GET RPCs in ``rest``; broadcast, presence and postgres_changes
filtered by machine in ``realtime``. Each file runs in its own ``node --test`` against the session stack at its
seed state, as the signed-in dashboard user (an ``authenticated`` JWT signed with the stack's secret); a failure
shows node's report.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from supalocal.auth import make_api_key
from supalocal.stack import BackgroundStack
from supalocal.testing import SEED_MACHINE_ID

JS_DIR = Path(__file__).parent / "js"
NODE_TIMEOUT_S = 45.0  # each suite takes a few seconds; this only bounds a hang, under pytest's own 60 s
DASHBOARD_USER_ID = "00000000-0000-4000-8000-00000000d5b1"
SUITES = ("rest", "realtime")
_SUMMARY = re.compile(r"^ℹ (tests|pass) (\d+)$", re.MULTILINE)  # the spec reporter's totals


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: scripts/test.sh installs Node.js and the supabase-js test dependencies")
    if not (JS_DIR / "node_modules" / "@supabase" / "supabase-js").is_dir():
        pytest.fail(f"supabase-js is not installed in {JS_DIR}: run scripts/test.sh (or `npm ci` there)")
    return node


def _text(output: str | bytes | None) -> str:
    """A timed-out run's output, which subprocess leaves as bytes even with ``text=True``."""
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def _env(stack: BackgroundStack) -> dict[str, str]:
    user_token = make_api_key(
        "authenticated", secret=stack.jwt_secret, claims={"sub": DASHBOARD_USER_ID, "email": "operator@example.com"}
    )
    return {
        **os.environ,
        "SUPABASE_URL": stack.url,
        "SUPABASE_ANON_KEY": stack.anon_key,
        "SUPABASE_SERVICE_ROLE_KEY": stack.service_key,
        "SUPABASE_USER_TOKEN": user_token,
        "MACHINE_ID": SEED_MACHINE_ID,
    }


@pytest.mark.parametrize("suite", SUITES)
def test_supabase_js_suite_passes(suite: str, clean_db: BackgroundStack) -> None:
    # --test-force-exit: supabase-js' realtime disconnect leaves a 10 s timer behind, which would hold node open.
    command = [_node(), "--test", "--test-force-exit", "--test-reporter=spec", f"{suite}.test.mjs"]
    try:
        result = subprocess.run(
            command, cwd=JS_DIR, env=_env(clean_db), capture_output=True, text=True, timeout=NODE_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as exc:
        output = _text(exc.stdout) + _text(exc.stderr)
        pytest.fail(f"node --test {suite}.test.mjs did not finish in {NODE_TIMEOUT_S} s:\n{output}")
    assert result.returncode == 0, f"node --test {suite}.test.mjs failed:\n{result.stdout}{result.stderr}"
    totals = dict(_SUMMARY.findall(result.stdout))
    assert totals.get("tests") == totals.get("pass") and int(totals.get("tests", 0)) > 0, result.stdout
