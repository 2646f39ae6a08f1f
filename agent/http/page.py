"""The operator status page (`GET /`): one small HTML table rendered from the snapshot, no scripts, no assets.

Pure: it takes the snapshot and the health verdict and returns text. Every value is HTML-escaped because
`plc_last_error` and the run fields carry text from outside (PLC messages, recipe names).
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from agent.http.health import HealthStatus
from agent.status import AgentSnapshot

__all__ = ["render_status_page"]

REFRESH_S = 5
_COLORS = {HealthStatus.HEALTHY: "#2e7d32", HealthStatus.DEGRADED: "#ef6c00", HealthStatus.UNHEALTHY: "#c62828"}


def _rows(pairs: Iterable[tuple[str, object]]) -> str:
    return "\n".join(
        f"<tr><th>{escape(name)}</th><td>{escape('—' if value is None else str(value))}</td></tr>"
        for name, value in pairs
    )


def _updown(flag: bool) -> str:
    return "up" if flag else "down"


def render_status_page(snapshot: AgentSnapshot, status: HealthStatus, reasons: Iterable[str]) -> str:
    """A self-refreshing HTML page: identity, health and reasons, services, spool, counters, current run."""
    s = snapshot
    run = s.current_run or {}
    pairs: list[tuple[str, object]] = [
        ("status", status.value),
        ("reasons", "; ".join(reasons) or None),
        ("role", s.role),
        ("color", s.color),
        ("version", s.version),
        ("instance", s.instance_id),
        ("machine", s.machine_id),
        ("started at", s.started_at.isoformat(timespec="seconds")),
        ("uptime", f"{s.uptime_s:.0f} s"),
        ("plc", _updown(s.plc_connected)),
        ("plc last error", s.plc_last_error),
        ("plc read", None if s.plc_response_ms is None else f"{s.plc_response_ms:.1f} ms"),
        ("database", _updown(s.database_connected)),
        ("realtime", _updown(s.realtime_connected)),
        ("parameter logger", _updown(s.sampling)),
        ("logging interval", None if s.logging_interval_s is None else f"{s.logging_interval_s:.3f} s"),
        ("frames / failed / skipped ticks", f"{s.frames} / {s.failed_frames} / {s.skipped_ticks}"),
        ("spool", f"{s.spool_depth} records, {s.spool_bytes} bytes"),
        ("quarantined / dropped / shipped", f"{s.quarantined} / {s.dropped} / {s.shipped}"),
        ("memory", f"{s.memory_mb:.1f} MB"),
        ("errors", ", ".join(f"{area}: {n}" for area, n in sorted(s.errors.items())) or None),
        *((f"run {key}", value) for key, value in run.items()),
    ]
    title = f"ald-agent {s.color} {s.version}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="{REFRESH_S}">
<title>{escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}th{{text-align:left;padding-right:2em}}
.status{{color:{_COLORS[status]}}}</style></head>
<body><h1>{escape(title)} — <span class="status">{escape(status.value)}</span></h1>
<table>
{_rows(pairs)}
</table>
<p><a href="/health">/health</a> · <a href="/metrics">/metrics</a></p>
</body></html>
"""
