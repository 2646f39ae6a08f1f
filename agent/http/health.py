"""Health verdicts as pure functions of an `AgentSnapshot` (docs/DESIGN.md §6): no I/O, no clock, inputs untouched.

`/health/basic` is the liveness probe HAProxy and Docker poll: 200 while serving, 503 otherwise.
`/health` is the operator's and deploy.sh's view, with an overall status decided by these rules, first match wins:

    unhealthy  (HTTP 503)  not serving (starting or shutting down)
                           the active instance's sampler is dead: it holds the lease but logs nothing
    degraded   (HTTP 200)  PLC disconnected · Supabase refused the key (said instead of "database unreachable": the
                           records wait in the spool until a valid key is configured) · database unreachable
                           · realtime down on the active instance
                           (the standby takes no commands) · a standby's sampler dead · spool quarantine not empty
                           · spool at its size bound, dropping the oldest telemetry (data is being lost)
                           · spool backlog > `spool_backlog` records (one snapshot cannot see a trend; the
                           ALDSpoolGrowing alert adds the slope of ald_spool_depth)
                           · last logging interval > `logging_interval_s` · memory > `memory_mb`
                           · a safety problem: register map or interlocks refused, safe state not confirmed
                           · the alarm limits refused (the process is not watched as configured)
    healthy    (HTTP 200)  none of the above

Process alarms do not change the verdict (they are the process's state, not the agent's); `/health` lists
their counts under `alarms`.

Degraded answers 200 on purpose: HAProxy must keep routing to an agent that is up but, say, lost its PLC (the
operators still need its /health and the spool keeps data), while a dead sampler on the active color is worth
failing over. Every rule that fired is listed in `reasons`, in the order above.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from agent.status import AgentSnapshot

__all__ = [
    "DEFAULT_THRESHOLDS",
    "HealthStatus",
    "HealthThresholds",
    "assess",
    "basic_health",
    "full_health",
]

HTTP_OK = 200
HTTP_UNAVAILABLE = 503
ROLE_ACTIVE = "active"


class HealthStatus(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthThresholds:
    """Limits past which the agent reports itself degraded; defaults match monitoring/alert_rules.yml."""

    logging_interval_s: float = 3.0  # ALDLoggingIntervalHigh: > 3 s
    memory_mb: float = 800.0  # ALDMemoryHigh: > 800 MB
    spool_backlog: int = 300  # ALDSpoolGrowing: > 300 records, about five minutes of frames at 1 Hz


DEFAULT_THRESHOLDS = HealthThresholds()


def basic_health(snapshot: AgentSnapshot) -> tuple[int, dict[str, str]]:
    """(200, {"status": "ok"}) while serving, else (503, {"status": "unavailable"})."""
    if snapshot.serving:
        return HTTP_OK, {"status": "ok"}
    return HTTP_UNAVAILABLE, {"status": "unavailable"}


def assess(
    snapshot: AgentSnapshot, *, thresholds: HealthThresholds = DEFAULT_THRESHOLDS
) -> tuple[HealthStatus, tuple[str, ...]]:
    """The overall status and every reason for it (empty when healthy), by the rules in the module docstring."""
    active = snapshot.role == ROLE_ACTIVE
    fatal: list[str] = []
    if not snapshot.serving:
        fatal.append("not serving")
    if active and not snapshot.sampling:
        fatal.append("sampler stopped on the active instance")
    warnings: list[str] = []
    if not snapshot.plc_connected:
        warnings.append("plc disconnected")
    if snapshot.cloud_auth_error:
        warnings.append(f"Supabase refused the key: {snapshot.cloud_auth_error}")
    elif not snapshot.database_connected:
        warnings.append("database unreachable")
    if active and not snapshot.realtime_connected:
        warnings.append("realtime disconnected")
    if not active and not snapshot.sampling:
        warnings.append("sampler stopped")
    if snapshot.quarantined > 0:
        warnings.append(f"{snapshot.quarantined} spool records quarantined")
    if snapshot.telemetry_dropping:
        warnings.append(f"spool full: dropping the oldest telemetry ({snapshot.dropped} records dropped so far)")
    if snapshot.spool_depth > thresholds.spool_backlog:
        warnings.append(f"spool backlog of {snapshot.spool_depth} records")
    interval = snapshot.logging_interval_s
    if interval is not None and interval > thresholds.logging_interval_s:
        warnings.append(f"logging interval {interval:.3f} s > {thresholds.logging_interval_s:g} s")
    if snapshot.memory_mb > thresholds.memory_mb:
        warnings.append(f"memory {snapshot.memory_mb:.0f} MB > {thresholds.memory_mb:g} MB")
    warnings.extend(snapshot.safety_problems)
    if snapshot.alarm_limits_problem:
        warnings.append(snapshot.alarm_limits_problem)
    if fatal:
        return HealthStatus.UNHEALTHY, (*fatal, *warnings)
    if warnings:
        return HealthStatus.DEGRADED, tuple(warnings)
    return HealthStatus.HEALTHY, ()


def _up(flag: bool) -> str:
    return "up" if flag else "down"


def full_health(
    snapshot: AgentSnapshot, *, thresholds: HealthThresholds = DEFAULT_THRESHOLDS
) -> tuple[int, dict[str, Any]]:
    """The /health answer: HTTP status (503 only when unhealthy) and the docs/DESIGN.md §6 body, JSON-ready.

    The body is built only from the snapshot's fields, none of which is a secret (no URL, key or token).
    `current_run` is copied as given; serialise with `default=str` for its timestamps and ids.
    """
    status, reasons = assess(snapshot, thresholds=thresholds)
    s = snapshot
    body: dict[str, Any] = {
        "status": status.value,
        "reasons": list(reasons),
        "role": s.role,
        "color": s.color,
        "version": s.version,
        "instance_id": s.instance_id,
        "machine_id": s.machine_id,
        "started_at": s.started_at.isoformat(),
        "uptime_s": round(s.uptime_s, 3),
        "services": {
            "plc": {"status": _up(s.plc_connected), "response_ms": s.plc_response_ms, "last_error": s.plc_last_error},
            "database": {
                "status": _up(s.database_connected),
                "key_scope": s.key_scope,
                "key_refused": s.cloud_auth_error,
                "key_expires_at": s.cloud_key_expires_at.isoformat() if s.cloud_key_expires_at else None,
            },
            "realtime": {"status": _up(s.realtime_connected)},
            "parameter_logger": {
                "status": _up(s.sampling),
                "interval_s": s.logging_interval_s,
                "frames": s.frames,
                "skipped_ticks": s.skipped_ticks,
                "late_ticks": s.late_ticks,
                "failed_frames": s.failed_frames,
            },
        },
        "metrics": {
            "logging_interval_s": s.logging_interval_s,
            "plc_response_ms": s.plc_response_ms,
            "spool_depth": s.spool_depth,
            "spool_bytes": s.spool_bytes,
            "quarantined": s.quarantined,
            "dropped": s.dropped,
            "shipped": s.shipped,
            "memory_mb": round(s.memory_mb, 1),
            "frames": s.frames,
            "skipped_ticks": s.skipped_ticks,
            "late_ticks": s.late_ticks,
            "failed_frames": s.failed_frames,
        },
        "safety": {
            "problems": list(s.safety_problems),
            "map_refused": s.map_refused,
            "interlocks": s.interlocks,
            "interlock_blocks": s.interlock_blocks,
            "interlock_trips": s.interlock_trips,
            "safe_state_pending": s.safe_state_pending,
        },
        "alarms": {
            "active": dict(s.alarms_active),
            "unacknowledged": s.alarms_unacknowledged,
            "limits": s.alarm_limits,
            "limits_problem": s.alarm_limits_problem,
        },
        "errors": dict(s.errors),
        "current_run": None if s.current_run is None else dict(s.current_run),
    }
    return (HTTP_UNAVAILABLE if status is HealthStatus.UNHEALTHY else HTTP_OK), body
