"""Supabase access: the only package that knows PostgREST and Realtime."""

from agent.cloud.client import CloudClient, CloudState, KeyStatus, Watch
from agent.cloud.errors import is_auth_code, is_transient_code, realtime_refusal, translate
from agent.cloud.key import KeyClaims, read_claims
from agent.config import Settings

__all__ = [
    "CloudClient",
    "CloudState",
    "KeyClaims",
    "KeyStatus",
    "Watch",
    "cloud_for",
    "is_auth_code",
    "is_transient_code",
    "read_claims",
    "realtime_refusal",
    "translate",
]


def cloud_for(settings: Settings) -> CloudClient:
    """The client for the configured project (after `settings.require_cloud()`)."""
    settings.require_cloud()
    assert settings.SUPABASE_URL and settings.SUPABASE_KEY
    api_key = settings.SUPABASE_API_KEY.get_secret_value() if settings.SUPABASE_API_KEY else None
    return CloudClient(settings.SUPABASE_URL, settings.SUPABASE_KEY.get_secret_value(), api_key=api_key)
