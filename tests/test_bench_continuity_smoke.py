"""The continuity bench still runs end to end (bench/continuity.py --quick), so CI catches a broken bench.

It runs as a child process exactly as an engineer would run it (stack and agents are its own children, the
simulator a thread of it): one kill -9 and restart, a recipe through a 3 s cloud outage, and a short commands
drill with kills. Only that it works is asserted, plus the correctness columns (the restarted agent's command
succeeded, the run through the outage finished with every step recorded and every pulse seen at the PLC, nothing
quarantined): timing figures depend on the machine's load and are not a pass/fail matter here.
"""

from __future__ import annotations

import pytest

from tests.support.bench import run_quick, table_rows

TABLES = (
    "## kill -9 → restarted agent claiming again",
    "## a recipe through a cloud outage",
    "## records after the outage",
    "## commands drill",
)


@pytest.mark.timeout(90)
def test_continuity_bench_quick_mode_runs_every_measurement() -> None:
    done = run_quick("bench/continuity.py", timeout=85)
    for title in TABLES:
        assert title in done.stdout, f"missing table {title!r}:\n{done.stdout}"
    kills = table_rows(done.stdout, "## kill -9 → restarted agent claiming again")
    assert all(row[2] == "1 of 1" for row in kills), f"a kill sample is missing:\n{done.stdout}"
    assert "commands: {'succeeded': 1}" in done.stdout, done.stdout
    runs = table_rows(done.stdout, "## a recipe through a cloud outage")
    assert [row[1] for row in runs] == ["no outage", "outage 3 s"], done.stdout
    for row in runs:
        assert (row[4], row[5]) == ("succeeded", "succeeded"), f"a run did not succeed:\n{done.stdout}"
        completed, total = row[6].split(" / ")
        assert completed == total == row[7], f"steps missing:\n{done.stdout}"  # run_steps rows == total
        seen, planned = row[11].split(" / ")
        assert seen == planned, f"pulses missing at the PLC:\n{done.stdout}"
    records = table_rows(done.stdout, "## records after the outage")
    assert [row[7] for row in records] == ["0", "0"], f"records quarantined:\n{done.stdout}"
    assert records[1][8] == "yes" and "**not drained**" not in done.stdout, done.stdout
    assert "commands ended {" in done.stdout, done.stdout
