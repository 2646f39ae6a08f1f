"""What the agent says about itself, periodically: the `agent_instances` heartbeat and the status log line.

Both are built from the live `AgentSnapshot`; the heartbeat goes through the spool like every other write.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Callable, Sequence
from datetime import datetime

from loguru import logger

from agent.spool import SpoolWriter
from agent.status import AgentSnapshot

__all__ = ["HEARTBEAT_S", "Heartbeat", "log_status", "status_line"]

HEARTBEAT_S = 10.0


class Heartbeat:
    def __init__(
        self,
        writer: SpoolWriter,
        snapshot: Callable[[], AgentSnapshot],
        *,
        started_at: datetime,
        interval_s: float = HEARTBEAT_S,
    ) -> None:
        self.writer, self.snapshot, self.started_at, self.interval_s = writer, snapshot, started_at, interval_s

    async def run(self) -> None:
        while True:
            self.beat()
            await asyncio.sleep(self.interval_s)

    def beat(self) -> None:
        """One `agent_instances` row now (also on a role change, so the dashboard sees it at once)."""
        snap = self.snapshot()
        self.writer.submit(
            "heartbeat",
            {
                "instance_id": snap.instance_id,
                "machine_id": snap.machine_id,
                "color": snap.color,
                "version": snap.version,
                "role": snap.role,
                "started_at": self.started_at.isoformat(),
                "last_seen": datetime.now(self.started_at.tzinfo).isoformat(),
                "plc_connected": snap.plc_connected,
                "realtime_connected": snap.realtime_connected,
                "spool_depth": snap.spool_depth,
                # degraded reasons the dashboard must see (a refused map, interlocks, an unconfirmed safe state)
                "error": "; ".join((*snap.safety_problems, *filter(None, [snap.alarm_limits_problem])))[:1000] or None,
            },
        )


def status_line(snap: AgentSnapshot, lateness_s: Sequence[float]) -> str:
    """One summary line: what an engineer tailing the log needs at a glance."""
    late = sorted(lateness_s)
    p99 = late[round(0.99 * (len(late) - 1))] * 1000 if late else 0.0
    p50 = statistics.median(late) * 1000 if late else 0.0
    interval = f"{snap.logging_interval_s:.3f}s" if snap.logging_interval_s else "-"
    read = f"{snap.plc_response_ms:.1f}" if snap.plc_response_ms is not None else "-"
    line = (
        f"status: plc={'up' if snap.plc_connected else 'DOWN'} db={'up' if snap.database_connected else 'DOWN'} "
        f"interval={interval} read={read}ms lateness p50={p50:.1f}ms p99={p99:.1f}ms frames={snap.frames} "
        f"skipped={snap.skipped_ticks} late={snap.late_ticks} spool={snap.spool_depth} quarantined={snap.quarantined} "
        f"errors={dict(snap.errors)}"
    )
    if snap.safety_problems:
        line += " SAFETY: " + "; ".join(snap.safety_problems)
    return line


async def log_status(
    snapshot: Callable[[], AgentSnapshot], lateness: Callable[[], Sequence[float]], every_s: float
) -> None:
    while True:
        await asyncio.sleep(every_s)
        logger.info("{}", status_line(snapshot(), lateness()))
