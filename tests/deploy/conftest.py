"""Fixtures of the local-runtime end-to-end tests (helpers are in local_stage.py; conftest is not importable)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy_support import ROOT, require_tool, stop_process
from local_stage import LocalStage, make_stage

from supalocal.stack import BackgroundStack
from supalocal.testing import SEED_MACHINE_ID


@pytest.fixture(scope="module")
def plc_port() -> Iterator[int]:
    """The PLC simulator (`python -m agent simulate --port 0`) for one test module; its port."""
    proc = subprocess.Popen([sys.executable, "-m", "agent", "simulate", "--port", "0"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("listening on "):
            raise RuntimeError(f"simulator did not start: {line!r}")
        yield int(line.rsplit(":", 1)[1])
    finally:
        stop_process(proc)
        if proc.stdout:
            proc.stdout.close()


@pytest.fixture
def local(clean_db: BackgroundStack, plc_port: int) -> Iterator[LocalStage]:
    """An empty `local` environment on the local runtime: nothing runs until the test's first deploy; every
    process the scripts started is stopped afterwards."""
    for tool in ("haproxy", "jq", "socat", "flock", "curl", "openssl", "setsid"):
        require_tool(tool)
    directory = Path(tempfile.mkdtemp(prefix="dh-"))  # short: the HAProxy socket path has a 108-byte limit
    stage = make_stage(directory, supabase_url=clean_db.url, service_key=clean_db.service_key,
                       machine_id=SEED_MACHINE_ID, plc_port=plc_port, db_url=clean_db.db_url)  # fmt: skip
    try:
        yield stage
    finally:
        stage.stop_all()
        shutil.rmtree(directory, ignore_errors=True)
