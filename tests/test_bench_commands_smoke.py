"""The commands bench still runs end to end (bench/commands.py --quick), so CI catches a broken bench.

It runs as a child process exactly as an engineer would run it (stack and agents are its own children, the
simulator a thread of it). Only that it works is asserted, plus the correctness columns (every command
succeeded, every valve step paired with the simulator's open and close): timing figures depend on the
machine's load and are not a pass/fail matter here.
"""

from __future__ import annotations

import pytest

from tests.support.bench import run_quick, table_rows

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
    done = run_quick("bench/commands.py", timeout=50)
    for title in TABLES:
        assert title in done.stdout, f"missing table {title!r}:\n{done.stdout}"
    assert "**none claimed**" not in done.stdout, done.stdout
    assert "without a simulator open/close pair" not in done.stdout, done.stdout
    assert "**no pulses seen**" not in done.stdout, done.stdout
    commands = table_rows(done.stdout, "## command insert → claimed")
    assert [row[1].split(" ")[0] for row in commands] == ["realtime", "poll"], done.stdout
    assert all(row[2] == row[3] for row in commands), f"not every command succeeded:\n{done.stdout}"
    pulses = table_rows(done.stdout, "## valve pulse duration at the simulator")
    assert [row[1] for row in pulses] == ["50", "100", "500", "1000"], done.stdout
    record = table_rows(done.stdout, "## the agent's own record (run_steps)")
    assert all(row[-2].split(" / ")[0] == row[-2].split(" / ")[1] for row in record), done.stdout  # clock check
