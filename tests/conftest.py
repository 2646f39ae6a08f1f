"""Shared fixtures. The local Supabase stack fixture lives in `supalocal.testing` (a pytest plugin)."""

pytest_plugins = ["supalocal.testing"]
