"""The whole-agent read bench still runs end to end (bench/agent_read.py --quick), so CI catches a broken bench.

Run as a child process exactly as an engineer would (stack, simulator and agents are its children). Only that
it works is asserted — every run read, shipped and reported its cost — never a timing: the figures depend on the
machine's load.
"""

from __future__ import annotations

import pytest

from tests.support.bench import run_quick, table_rows

READS = "## full-map read inside `python -m agent run`"
COST = "## agent process cost"
REFERENCE = "## reference: the PLC layer alone"
BESIDE = "## beside: the PLC layer alone during the agent's window"


@pytest.mark.timeout(120)
def test_agent_read_bench_quick_mode_reports_reads_and_cost_per_rate() -> None:
    done = run_quick("bench/agent_read.py", timeout=110)
    reads, cost = table_rows(done.stdout, READS), table_rows(done.stdout, COST)
    assert [row[1] for row in reads] == ["10 Hz", "1 Hz"], done.stdout
    assert "**no reads**" not in done.stdout, done.stdout
    assert all(int(row[2]) > 0 for row in reads), done.stdout  # reads counted by the agent's histogram
    assert [row[1] for row in cost] == ["10 Hz", "1 Hz"], done.stdout
    assert all(int(row[9]) > 0 and int(row[10]) > 0 for row in cost), done.stdout  # frames taken and shipped
    assert all(float(row[6]) > 0 for row in cost), done.stdout  # RSS read from /proc
    reference = table_rows(done.stdout, REFERENCE)
    assert [row[1] for row in reference] == ["10 Hz", "1 Hz"] and all(int(row[2]) > 0 for row in reference), done.stdout


@pytest.mark.timeout(120)
def test_beside_reads_the_map_during_each_agent_window_without_sharing_the_simulator_with_the_agent() -> None:
    done = run_quick("bench/agent_read.py", "--beside", "--connections", "2", timeout=110)
    beside = table_rows(done.stdout, BESIDE)
    assert [row[1] for row in beside] == ["10 Hz", "1 Hz"], done.stdout
    assert all(int(row[2]) > 0 for row in beside), done.stdout
    assert [row[7] for row in beside] == ["50", "500"], done.stdout  # half a tick after the agent's reads
    assert [row[8] for row in beside] == ["0", "0"], done.stdout  # never during one of the agent's reads
