"""The agent's HTTP surface (docs/DESIGN.md §6): health verdicts (pure), the operator console's page and event
stream, the aiohttp server."""

from agent.http.auth import AuthOutcome, authorize, require_admin
from agent.http.console import ConsoleSource
from agent.http.health import DEFAULT_THRESHOLDS, HealthStatus, HealthThresholds, assess, basic_health, full_health
from agent.http.server import HttpServer, ServerState

__all__ = [
    "DEFAULT_THRESHOLDS",
    "AuthOutcome",
    "ConsoleSource",
    "HealthStatus",
    "HealthThresholds",
    "HttpServer",
    "ServerState",
    "assess",
    "authorize",
    "basic_health",
    "full_health",
    "require_admin",
]
