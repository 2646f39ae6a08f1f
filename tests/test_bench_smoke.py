"""The telemetry bench still runs end to end (bench/telemetry.py --quick), so CI catches a broken bench.

It runs as a child process exactly as an engineer would run it (stack, simulator and agents are its own
children). Only that it works is asserted, plus the correctness columns (no frames lost, order kept):
the timing figures depend on the machine's load and are not a pass/fail matter here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TABLES = (
    "## read → row visible in PostgreSQL",
    "## sustained rate",
    "## agent process memory",
    "## agent process CPU",
    "## replay after an outage",
)


@pytest.mark.timeout(90)
def test_telemetry_bench_quick_mode_runs_every_measurement() -> None:
    done = subprocess.run(
        [sys.executable, "bench/telemetry.py", "--quick"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=80,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    for title in TABLES:
        assert title in done.stdout, f"missing table {title!r}:\n{done.stdout}"
    assert "**no frames**" not in done.stdout, done.stdout
    assert "**BROKEN**" not in done.stdout, done.stdout  # frame order in PostgreSQL
    sustained = _rows(done.stdout, "## sustained rate")
    replay = _rows(done.stdout, "## replay after an outage")
    assert [row[1] for row in sustained] == ["10 Hz", "1 Hz"], done.stdout
    assert [row[7] for row in sustained] == ["0", "0"], f"frames lost:\n{done.stdout}"
    assert replay[0][-3] == "0", f"frames lost across the outage:\n{done.stdout}"


def _rows(stdout: str, title: str) -> list[list[str]]:
    """The data rows of the Markdown table under `title`, as lists of stripped cells ("" at both ends)."""
    section = stdout.split(title, 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")][2:]  # header and rule
    return [[cell.strip() for cell in line.split("|")] for line in lines]
