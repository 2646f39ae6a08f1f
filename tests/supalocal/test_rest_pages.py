"""Counting, pages, media types and GET RPC arguments as PostgREST answers them (raw HTTP where the
official client hides the status or headers)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from supabase import Client, create_client
from tests.supalocal.sql_support import run_sql

pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")

PROBE_SQL = """
create or replace function public.api_has_a(p jsonb) returns boolean language sql stable as $$ select p ? 'a' $$;
grant execute on function public.api_has_a(jsonb) to service_role;
notify pgrst, 'reload schema';
"""


def _get(stack: Any, path: str, **headers: str) -> httpx.Response:
    key = stack.service_key
    return httpx.get(
        f"{stack.url}/rest/v1/{path}", headers={"apikey": key, "Authorization": f"Bearer {key}", **headers}
    )


@pytest.fixture
def db(clean_db: Any) -> Iterator[Client]:
    client = create_client(clean_db.url, clean_db.service_key)
    try:
        yield client
    finally:
        client.postgrest.aclose()


def test_a_counted_partial_page_is_206_with_content_range(clean_db: Any, db: Client) -> None:
    page = _get(clean_db, "recipe_steps?select=id&limit=2&offset=1", Prefer="count=exact")
    assert (page.status_code, page.headers["Content-Range"]) == (206, "1-2/25")
    whole = _get(clean_db, "recipes?select=id", Prefer="count=exact")
    assert (whole.status_code, whole.headers["Content-Range"]) == (200, "0-1/2")
    uncounted = _get(clean_db, "recipe_steps?select=id&limit=2")
    assert (uncounted.status_code, uncounted.headers["Content-Range"]) == (200, "0-1/*")
    counted = db.table("recipe_steps").select("id", count="exact").limit(2).execute()
    assert (counted.count, len(counted.data)) == (25, 2)


def test_the_range_header_pages(clean_db: Any) -> None:
    page = _get(clean_db, "recipe_steps?select=id&order=id", Range="3-5")
    assert page.status_code == 200 and len(page.json()) == 3
    assert page.headers["Content-Range"] == "3-5/*"
    counted = _get(clean_db, "recipe_steps?select=id&order=id", Range="3-5", Prefer="count=exact")
    assert (counted.status_code, counted.headers["Content-Range"]) == (206, "3-5/25")
    intersected = _get(clean_db, "recipe_steps?select=id&order=id&offset=4", Range="3-5")
    assert intersected.headers["Content-Range"] == "4-5/*", "the query's page and the header's intersect"
    open_ended = _get(clean_db, "recipe_steps?select=id", Range="24-")
    assert open_ended.headers["Content-Range"] == "24-24/*"


def test_an_offset_past_the_end_is_416(clean_db: Any) -> None:
    past = _get(clean_db, "recipes?select=id&offset=5", Prefer="count=exact")
    assert past.status_code == 416
    assert past.headers["Content-Range"] == "*/2"
    assert past.json() == {
        "code": "PGRST103",
        "details": "An offset of 5 was requested, but there are only 2 rows.",
        "hint": None,
        "message": "Requested range not satisfiable",
    }
    backwards = _get(clean_db, "recipes?select=id", Range="5-2")
    assert backwards.status_code == 416 and backwards.json()["code"] == "PGRST103"


def test_csv(clean_db: Any, db: Client) -> None:
    text = db.table("recipes").select("name,version").order("name").csv().execute().data
    assert text == 'name,version\n"Al2O3 TMA/H2O 100 cycles",1\n"Al2O3/ZnO nanolaminate 5x(10+10)",1'
    response = _get(clean_db, "recipes?select=id&id=eq.00000000-0000-4000-8000-000000000000", Accept="text/csv")
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8" and response.text == "\n"


def test_a_media_type_not_offered_is_406(clean_db: Any) -> None:
    for accept in ("text/xml", "application/vnd.pgrst.plan+json"):
        response = _get(clean_db, "recipes?select=id", Accept=accept)
        assert response.status_code == 406 and response.json() == {
            "code": "PGRST107",
            "details": None,
            "hint": None,
            "message": f"None of these media types are available: {accept}",
        }


def test_a_get_rpc_parses_a_jsonb_argument_as_json(clean_db: Any, db: Client) -> None:
    run_sql(clean_db, PROBE_SQL)
    try:
        assert db.rpc("api_has_a", {"p": {"a": 1}}).execute().data is True
        got = _get(clean_db, 'rpc/api_has_a?p={"a":1}')
        assert (got.status_code, got.json()) == (200, True)
        bad = _get(clean_db, "rpc/api_has_a?p={not json")
        assert bad.status_code == 400 and bad.json()["code"] == "22P02"
    finally:
        run_sql(clean_db, "drop function if exists public.api_has_a(jsonb); notify pgrst, 'reload schema';")
