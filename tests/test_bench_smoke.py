"""The telemetry bench still runs end to end (bench/telemetry.py --quick), so CI catches a broken bench.

It runs as a child process exactly as an engineer would run it (stack, simulator and agents are its own
children). Only that it works is asserted, plus the correctness columns (no frames lost, order kept):
the timing figures depend on the machine's load and are not a pass/fail matter here.
"""

from __future__ import annotations

import pytest

from tests.support.bench import run_quick, table_rows

TABLES = (
    "## read → row visible in PostgreSQL",
    "## sustained rate",
    "## agent process memory",
    "## agent process CPU",
    "## replay after an outage",
)


@pytest.mark.timeout(90)
def test_telemetry_bench_quick_mode_runs_every_measurement() -> None:
    done = run_quick("bench/telemetry.py", timeout=80)
    for title in TABLES:
        assert title in done.stdout, f"missing table {title!r}:\n{done.stdout}"
    assert "**no frames**" not in done.stdout, done.stdout
    assert "**BROKEN**" not in done.stdout, done.stdout  # frame order in PostgreSQL
    sustained = table_rows(done.stdout, "## sustained rate")
    replay = table_rows(done.stdout, "## replay after an outage")
    assert [row[1] for row in sustained] == ["10 Hz", "1 Hz"], done.stdout
    assert [row[7] for row in sustained] == ["0", "0"], f"frames lost:\n{done.stdout}"
    assert replay[0][-3] == "0", f"frames lost across the outage:\n{done.stdout}"
