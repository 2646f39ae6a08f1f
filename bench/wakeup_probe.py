"""How late a bare sleeper wakes up on this box: the scheduling noise under any timing figure taken here.

    .venv/bin/python -m bench.wakeup_probe [--period-ms 10]     # until SIGTERM; prints JSON lateness (ms)

A single-threaded process with nothing else to do sleeps `period` at a time (CLOCK_MONOTONIC, ns
resolution) and records how much later than asked it woke. What it sees is the OS's (run-queue waits on a
shared box) plus the interpreter's own small cost — a floor for any Python timer on the machine, the
agent's hold deadlines included. Run as a child of the commands bench while the pulses run.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from types import FrameType


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--period-ms", type=float, default=10.0, help="sleep per sample, ms (10)")
    period = parser.parse_args(argv).period_ms / 1000
    late: list[float] = []
    running = True

    def stop(_sig: int, _frame: FrameType | None) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("ready", flush=True)
    while running:
        asked = time.monotonic()
        time.sleep(period)
        late.append((time.monotonic() - asked - period) * 1000)
    json.dump({"period_ms": period * 1000, "late_ms": [round(x, 4) for x in late]}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
