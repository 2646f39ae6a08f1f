"""Running a benchmark script in its CI smoke mode and reading the Markdown tables it prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_quick(script: str, *options: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """`python bench/<script> --quick [options]` from the repository root; asserts it exited 0."""
    done = subprocess.run(
        [sys.executable, script, "--quick", *options],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def table_rows(stdout: str, title: str) -> list[list[str]]:
    """The data rows of the Markdown table under `title`, as lists of stripped cells ("" at both ends)."""
    section = stdout.split(title, 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")][2:]  # header and rule
    return [[cell.strip() for cell in line.split("|")] for line in lines]
