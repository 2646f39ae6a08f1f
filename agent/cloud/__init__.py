"""Supabase access: the only package that knows PostgREST and Realtime."""

from agent.cloud.client import CloudClient, CloudState, Watch
from agent.cloud.errors import is_transient_code, translate

__all__ = ["CloudClient", "CloudState", "Watch", "is_transient_code", "translate"]
