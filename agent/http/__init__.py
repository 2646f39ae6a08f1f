"""The agent's HTTP surface (DESIGN §6): health verdicts (pure), the status page (pure) and the aiohttp server."""

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
