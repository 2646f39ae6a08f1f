"""The agent's HTTP surface (docs/DESIGN.md §6): health verdicts and status page (pure), the aiohttp server."""

from agent.http.auth import AuthOutcome, authorize, require_admin
from agent.http.health import DEFAULT_THRESHOLDS, HealthStatus, HealthThresholds, assess, basic_health, full_health
from agent.http.page import render_status_page
from agent.http.server import HttpServer, ServerState

__all__ = [
    "DEFAULT_THRESHOLDS",
    "AuthOutcome",
    "HealthStatus",
    "HealthThresholds",
    "HttpServer",
    "ServerState",
    "assess",
    "authorize",
    "basic_health",
    "full_health",
    "render_status_page",
    "require_admin",
]
