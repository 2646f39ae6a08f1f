"""The pulse bench still runs end to end (bench/pulses.py --quick), so CI catches a broken bench.

It runs as a child process exactly as an engineer would run it (the simulator and the hog are its children).
Only that it works is asserted — every configuration ran its recipe to the end and saw the simulator's
measurement of every pulse length — never a time: the figures depend on the machine's load.
"""

from __future__ import annotations

import pytest

from tests.support.bench import run_quick, table_rows

TITLE = "## valve pulse error at the simulator"


@pytest.mark.timeout(120)
def test_pulse_bench_quick_mode_measures_every_configuration() -> None:
    done = run_quick("bench/pulses.py", timeout=110)
    rows = table_rows(done.stdout, TITLE)
    assert "**" not in done.stdout, done.stdout  # no run failed, no length without pulses
    seen = {(row[1], row[3]) for row in rows}
    for config in ("plc-hog", "agent-hog", "agent-quiet", "plc-quiet"):
        for length in ("10", "50", "100", "500", "1000", "all"):
            assert (config, length) in seen, f"{config} {length} ms missing:\n{done.stdout}"
    assert all(int(row[4]) > 0 for row in rows), done.stdout
    overhead = table_rows(done.stdout, "## valve step overhead")
    assert [row[1] for row in overhead] == ["plc-hog", "agent-hog", "agent-quiet", "plc-quiet"], done.stdout
    assert all(int(row[3]) > 0 for row in overhead), done.stdout
