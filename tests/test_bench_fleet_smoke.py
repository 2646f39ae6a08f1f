"""The fleet bench still runs end to end (bench/fleet.py --quick: 2 machines for 3 s), so CI catches a broken bench.

It runs as a child process exactly as an engineer would run it (the stack and a fleet worker are its own
children). Only that it works is asserted, plus the correctness columns: every frame of the window became a
row, nothing was skipped, dropped or refused, and every command was claimed and finished. Timing figures
depend on the machine's load and are not a pass/fail matter here.
"""

from __future__ import annotations

import pytest

from tests.support.bench import run_quick, table_rows

TABLES = (
    "## fleet: frames/s sustained",
    "## fleet: read → row visible in PostgreSQL",
    "## fleet: command insert → claimed under that load",
    "## fleet: CPU and memory of the stack",
    "## fleet: what it implies for storage",
)


@pytest.mark.timeout(90)
def test_fleet_bench_quick_mode_runs_every_measurement() -> None:
    done = run_quick("bench/fleet.py", timeout=80)
    for title in TABLES:
        assert title in done.stdout, f"missing table {title!r}:\n{done.stdout}"
    assert "**no frames**" not in done.stdout, done.stdout
    assert "**none claimed**" not in done.stdout, done.stdout
    (fleet,) = table_rows(done.stdout, "## fleet: frames/s sustained")
    visible, expected = (int(n) for n in fleet[4].split(" / "))
    assert fleet[1] == "2" and visible >= expected - 1, f"frames missing:\n{done.stdout}"
    assert fleet[6:7] == ["0"] and fleet[8:10] == ["0", "0"], f"skipped, refused or dropped:\n{done.stdout}"
    (commands,) = table_rows(done.stdout, "## fleet: command insert → claimed under that load")
    assert int(commands[2]) > 0 and commands[2] == commands[3], f"not every command claimed:\n{done.stdout}"
    assert commands[4] == f"succeeded {commands[3]}", done.stdout
    (stack,) = table_rows(done.stdout, "## fleet: CPU and memory of the stack")
    assert float(stack[3]) > 0 and float(stack[5].split(" ")[0]) > 0, f"no stack memory read:\n{done.stdout}"
