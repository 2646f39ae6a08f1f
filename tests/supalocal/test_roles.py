"""The API switches only to roles the authenticator may assume, as PostgREST on Supabase does.

PostgREST logs in as ``authenticator`` and runs ``SET ROLE`` to the token's role; PostgreSQL refuses a role
not granted to it with ``42501 permission denied to set role`` and a missing one with ``22023``.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from supalocal.auth import make_api_key
from tests.supalocal.sql_support import run_sql

SEED_MACHINE_ID = "00000000-0000-4000-8000-000000000001"


def _get(stack: Any, role: str, path: str = "machines?select=id", **claims: str) -> httpx.Response:
    key = make_api_key(role, secret=stack.jwt_secret, claims=dict(claims))
    return httpx.get(f"{stack.url}/rest/v1/{path}", headers={"apikey": key, "Authorization": f"Bearer {key}"})


@pytest.mark.parametrize(
    "role",
    ["postgres", "supabase_admin", "supabase_auth_admin", "dashboard_user", "pg_read_all_data", "pg_write_all_data"],
    ids=["postgres", "superuser-supabase_admin", "auth-admin", "dashboard_user", "builtin-read", "builtin-write"],
)
def test_a_role_not_granted_to_the_authenticator_is_refused(clean_db: Any, role: str) -> None:
    response = _get(clean_db, role)
    assert response.status_code == 403, response.text
    assert response.json() == {
        "code": "42501",
        "details": None,
        "hint": None,
        "message": f'permission denied to set role "{role}"',
    }


def test_a_refused_role_writes_nothing(clean_db: Any) -> None:
    key = make_api_key("postgres", secret=clean_db.jwt_secret)
    response = httpx.post(
        f"{clean_db.url}/rest/v1/recipes",
        json={"name": "smuggled"},
        headers={"apikey": key, "Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 403 and response.json()["code"] == "42501"
    service = _get(clean_db, "service_role", "recipes?select=name&name=eq.smuggled")
    assert service.json() == []


def test_a_nonexistent_role_is_401_22023(clean_db: Any) -> None:
    response = _get(clean_db, "no_such_role")
    assert response.status_code == 401
    assert response.json() == {
        "code": "22023",
        "details": None,
        "hint": None,
        "message": 'role "no_such_role" does not exist',
    }


@pytest.mark.parametrize(
    ("role", "claims", "rows"),
    [
        ("authenticated", {}, 1),
        ("service_role", {}, 1),
        ("ald_agent", {"machine_id": SEED_MACHINE_ID}, 1),
    ],
    ids=["authenticated", "service_role", "ald_agent-granted-by-a-migration"],
)
def test_the_granted_roles_are_assumed(clean_db: Any, role: str, claims: dict[str, str], rows: int) -> None:
    response = _get(clean_db, role, **claims)
    assert response.status_code == 200, response.text
    assert len(response.json()) == rows


def test_anon_is_assumed(clean_db: Any) -> None:
    response = _get(clean_db, "anon")
    assert response.status_code == 401 and response.json()["code"] == "42501"
    assert response.json()["message"] == "permission denied for table machines"


def test_a_grant_to_the_authenticator_takes_effect_at_once_and_so_does_its_revocation(clean_db: Any) -> None:
    run_sql(clean_db, "create role probe_role nologin; grant select on public.recipes to probe_role")
    try:
        assert _get(clean_db, "probe_role", "recipes?select=id").status_code == 403
        run_sql(clean_db, "grant probe_role to authenticator")
        granted = _get(clean_db, "probe_role", "recipes?select=id")
        assert (granted.status_code, granted.json()) == (200, [])  # assumed; RLS has no policy for it
        run_sql(clean_db, "revoke probe_role from authenticator")
        assert _get(clean_db, "probe_role", "recipes?select=id").status_code == 403
    finally:
        run_sql(clean_db, "revoke all on public.recipes from probe_role; drop role probe_role")
