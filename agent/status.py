"""A point-in-time picture of the agent, taken from the live objects at each /health request or scrape.

`AgentSnapshot` is plain data so the HTTP layer and the metrics are pure functions of it: the app builds
one from the real state (PLC hub, sampler, spool, shipper, cloud client, lease) whenever asked, never caching
constants.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["AgentSnapshot", "process_rss_mb"]


@dataclass(frozen=True, slots=True)
class AgentSnapshot:
    version: str
    color: str
    role: str  # "active" (holds the lease, may command the PLC) or "standby"
    instance_id: str
    machine_id: str | None
    started_at: datetime
    uptime_s: float
    serving: bool  # False while starting or shutting down: /health/basic answers 503
    plc_connected: bool
    plc_last_error: str | None
    plc_response_ms: float | None  # duration of the last full-frame read
    database_connected: bool  # the last Supabase call got an answer
    realtime_connected: bool
    sampling: bool  # the sampler task is alive
    logging_interval_s: float | None  # last measured interval between two frames
    frames: int
    skipped_ticks: int  # ticks whose whole interval was lost (no read started in it)
    late_ticks: int  # ticks taken late because the read before ran past their deadline (not skipped)
    failed_frames: int
    spool_depth: int
    spool_bytes: int
    quarantined: int
    dropped: int
    shipped: int
    memory_mb: float
    errors: Mapping[str, int] = field(default_factory=dict)  # area → count, e.g. {"plc": 3, "database": 1}
    current_run: Mapping[str, Any] | None = None
    #: What SUPABASE_KEY may touch: "machine" (a key for this machine only) or "project" (every machine).
    key_scope: str = "project"
    #: The safety kernel's refusals in force: a map or interlock set refused, a safe state not confirmed.
    safety_problems: tuple[str, ...] = ()
    map_refused: bool = False
    map_refusals: int = 0
    interlocks: int = 0
    interlock_blocks: int = 0
    interlock_trips: int = 0
    safe_state_pending: bool = False
    #: Supabase's refusal of SUPABASE_KEY in force (expired, revoked, signed with another secret), None while
    #: the key is accepted; records wait in the spool meanwhile. `cloud_auth_failures` counts refused calls.
    cloud_auth_error: str | None = None
    cloud_auth_failures: int = 0
    #: When SUPABASE_KEY expires by its own `exp` claim (None: no expiry, or not a JWT), to rotate it in time.
    cloud_key_expires_at: datetime | None = None
    #: The spool is at its size bound and drops the oldest telemetry (it did within the last minute).
    telemetry_dropping: bool = False
    #: Process alarms: active ones (acknowledged or not) by severity, every severity listed; open ones not yet
    #: acknowledged; limits in force; why the alarm limits in Supabase are refused (None: in use).
    alarms_active: Mapping[str, int] = field(default_factory=dict)
    alarms_unacknowledged: int = 0
    alarm_limits: int = 0
    alarm_limits_problem: str | None = None


def process_rss_mb() -> float:
    """This process's resident memory from /proc (a procfs read: no disk I/O), 0.0 where /proc is absent."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0
