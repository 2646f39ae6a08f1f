"""Health verdicts (pure): the status rules as a table, the /health body shape, /health/basic."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from agent.http import DEFAULT_THRESHOLDS, HealthStatus, assess, basic_health, full_health
from agent.status import AgentSnapshot

H, D, U = HealthStatus.HEALTHY, HealthStatus.DEGRADED, HealthStatus.UNHEALTHY

# (id, changes to a healthy active snapshot, expected status, expected reasons)
RULES: list[tuple[str, dict[str, Any], HealthStatus, tuple[str, ...]]] = [
    ("all-good", {}, H, ()),
    ("not-serving", {"serving": False}, U, ("not serving",)),
    ("active-sampler-dead", {"sampling": False}, U, ("sampler stopped on the active instance",)),
    ("standby-sampler-dead", {"role": "standby", "sampling": False}, D, ("sampler stopped",)),
    ("plc-down", {"plc_connected": False}, D, ("plc disconnected",)),
    ("database-down", {"database_connected": False}, D, ("database unreachable",)),
    (
        "key-refused-says-why-not-unreachable",
        {"database_connected": False, "cloud_auth_error": "upsert parameter_history: JWT expired (PGRST303)"},
        D,
        ("Supabase refused the key: upsert parameter_history: JWT expired (PGRST303)",),
    ),
    (
        "key-refused-on-realtime-only",
        {"cloud_auth_error": "realtime commands: InvalidJWTToken: Token has expired 3 seconds ago"},
        D,
        ("Supabase refused the key: realtime commands: InvalidJWTToken: Token has expired 3 seconds ago",),
    ),
    ("key-refusals-are-history-not-health", {"cloud_auth_failures": 12}, H, ()),
    ("realtime-down-active", {"realtime_connected": False}, D, ("realtime disconnected",)),
    ("realtime-down-standby", {"role": "standby", "realtime_connected": False}, H, ()),
    ("standby-all-good", {"role": "standby"}, H, ()),
    ("quarantine", {"quarantined": 2}, D, ("2 spool records quarantined",)),
    ("backlog-at-limit", {"spool_depth": DEFAULT_THRESHOLDS.spool_backlog}, H, ()),
    ("backlog-over", {"spool_depth": DEFAULT_THRESHOLDS.spool_backlog + 1}, D, ("spool backlog of 301 records",)),
    ("interval-at-limit", {"logging_interval_s": 3.0}, H, ()),
    ("interval-over", {"logging_interval_s": 3.25}, D, ("logging interval 3.250 s > 3 s",)),
    ("interval-unmeasured", {"logging_interval_s": None}, H, ()),
    ("memory-at-limit", {"memory_mb": 800.0}, H, ()),
    ("memory-over", {"memory_mb": 812.4}, D, ("memory 812 MB > 800 MB",)),
    ("dropped-is-history-not-health", {"dropped": 5}, H, ()),
    (
        "dropping-now",
        {"dropped": 5, "telemetry_dropping": True},
        D,
        ("spool full: dropping the oldest telemetry (5 records dropped so far)",),
    ),
    (
        "unhealthy-keeps-warnings",
        {"serving": False, "plc_connected": False, "database_connected": False},
        U,
        ("not serving", "plc disconnected", "database unreachable"),
    ),
    (
        "both-fatal",
        {"serving": False, "sampling": False},
        U,
        ("not serving", "sampler stopped on the active instance"),
    ),
    (
        "several-warnings-in-rule-order",
        {"memory_mb": 900.0, "plc_connected": False, "quarantined": 1},
        D,
        ("plc disconnected", "1 spool records quarantined", "memory 900 MB > 800 MB"),
    ),
]


@pytest.mark.parametrize(("changes", "status", "reasons"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_assess_rules(
    healthy: AgentSnapshot, changes: dict[str, Any], status: HealthStatus, reasons: tuple[str, ...]
) -> None:
    assert assess(replace(healthy, **changes)) == (status, reasons)


@pytest.mark.parametrize(
    ("changes", "code"),
    [({}, 200), ({"plc_connected": False}, 200), ({"serving": False}, 503), ({"sampling": False}, 503)],
    ids=["healthy-200", "degraded-200", "not-serving-503", "sampler-dead-503"],
)
def test_full_health_http_status(healthy: AgentSnapshot, changes: dict[str, Any], code: int) -> None:
    assert full_health(replace(healthy, **changes))[0] == code


@pytest.mark.parametrize(
    ("serving", "expected"), [(True, (200, {"status": "ok"})), (False, (503, {"status": "unavailable"}))]
)
def test_basic_health(healthy: AgentSnapshot, serving: bool, expected: tuple[int, dict[str, str]]) -> None:
    assert basic_health(replace(healthy, serving=serving)) == expected


def test_full_health_body_shape(healthy: AgentSnapshot) -> None:
    run = {"id": "r-1", "recipe": "Al2O3 100 cycles", "completed_steps": 12, "total_steps": 400}
    expiry = datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)
    code, body = full_health(
        replace(healthy, current_run=run, plc_connected=False, plc_last_error="timeout", cloud_key_expires_at=expiry)
    )
    assert code == 200
    assert body == {
        "status": "degraded",
        "reasons": ["plc disconnected"],
        "role": "active",
        "color": "blue",
        "version": "1.4.2",
        "instance_id": "blue-7f3a",
        "machine_id": "6f1c2a4e-0000-4000-8000-000000000001",
        "started_at": "2026-01-02T03:04:05+00:00",
        "uptime_s": 125.5,
        "services": {
            "plc": {"status": "down", "response_ms": 4.5, "last_error": "timeout"},
            "database": {
                "status": "up",
                "key_scope": "project",
                "key_refused": None,
                "key_expires_at": "2027-01-02T03:04:05+00:00",
            },
            "realtime": {"status": "up"},
            "parameter_logger": {
                "status": "up",
                "interval_s": 1.0004,
                "frames": 120,
                "skipped_ticks": 1,
                "late_ticks": 4,
                "failed_frames": 2,
            },
        },
        "metrics": {
            "logging_interval_s": 1.0004,
            "plc_response_ms": 4.5,
            "spool_depth": 7,
            "spool_bytes": 4096,
            "quarantined": 0,
            "dropped": 0,
            "shipped": 300,
            "memory_mb": 61.2,
            "frames": 120,
            "skipped_ticks": 1,
            "late_ticks": 4,
            "failed_frames": 2,
        },
        "safety": {
            "problems": [],
            "map_refused": False,
            "interlocks": 0,
            "interlock_blocks": 0,
            "interlock_trips": 0,
            "safe_state_pending": False,
        },
        "alarms": {"active": {}, "unacknowledged": 0, "limits": 0, "limits_problem": None},
        "errors": {"plc": 3, "database": 1},
        "current_run": run,
    }
    assert body["current_run"] is not run  # a copy: the body never aliases live state


def test_custom_thresholds(healthy: AgentSnapshot) -> None:
    strict = replace(DEFAULT_THRESHOLDS, memory_mb=50.0)
    assert assess(healthy, thresholds=strict) == (HealthStatus.DEGRADED, ("memory 61 MB > 50 MB",))
