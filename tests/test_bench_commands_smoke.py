"""The commands bench still runs end to end (bench/commands.py --quick), so CI catches a broken bench.

It runs as a child process exactly as an engineer would run it (stack and agents are its own children, the
simulator a thread of it). Only that it works is asserted, plus the correctness columns (every command
succeeded, every valve step paired with the simulator's open and close): timing figures depend on the
machine's load and are not a pass/fail matter here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TABLES = (
    "## command insert → claimed",
    "## where a command's time goes",
    "## valve pulse duration at the simulator",
    "## the agent's own record (run_steps)",
    "## where a pulse's error comes from",
    "## hold timer lateness by when the close was due",
    "## the five worst pulses",
    "## CPU scheduling over the pulse run",
    "A bare sleeper process",
    "## estimate: the same pulses with the hold timed from the open request",
    "## step-boundary overhead",
)


@pytest.mark.timeout(60)
def test_commands_bench_quick_mode_runs_every_measurement() -> None:
    done = subprocess.run(
        [sys.executable, "bench/commands.py", "--quick"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    for title in TABLES:
        assert title in done.stdout, f"missing table {title!r}:\n{done.stdout}"
    assert "**none claimed**" not in done.stdout, done.stdout
    assert "without a simulator open/close pair" not in done.stdout, done.stdout
    assert "**no pulses seen**" not in done.stdout, done.stdout
    commands = _rows(done.stdout, "## command insert → claimed")
    assert [row[1].split(" ")[0] for row in commands] == ["realtime", "poll"], done.stdout
    assert all(row[2] == row[3] for row in commands), f"not every command succeeded:\n{done.stdout}"
    pulses = _rows(done.stdout, "## valve pulse duration at the simulator")
    assert [row[1] for row in pulses] == ["50", "100", "500", "1000"], done.stdout
    record = _rows(done.stdout, "## the agent's own record (run_steps)")
    assert all(row[-2].split(" / ")[0] == row[-2].split(" / ")[1] for row in record), done.stdout  # clock check


def _rows(stdout: str, title: str) -> list[list[str]]:
    """The data rows of the Markdown table under `title`, as lists of stripped cells ("" at both ends)."""
    section = stdout.split(title, 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")][2:]  # header and rule
    return [[cell.strip() for cell in line.split("|")] for line in lines]
