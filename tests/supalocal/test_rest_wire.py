"""PostgREST wire details the clients depend on, checked with raw HTTP (aiohttp): status codes,
``Content-Range``, error bodies and headers, profiles, ``Prefer`` handling and the async official client.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from supabase import acreate_client

pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")

MACHINE_A = "00000000-0000-4000-8000-0000000000aa"
ERROR_KEYS = {"code", "message", "details", "hint"}


def _headers(stack: Any, **extra: str) -> dict[str, str]:
    return {"apikey": stack.service_key, "Authorization": f"Bearer {stack.service_key}", **extra}


async def test_insert_status_and_content_range(api_tables: Any) -> None:  # items 7, 9
    async with aiohttp.ClientSession(headers=_headers(api_tables)) as http:
        url = f"{api_tables.url}/rest/v1/api_plain"
        async with http.post(url, json={"seq": 1}, headers={"Prefer": "return=minimal"}) as resp:
            assert resp.status == 201 and await resp.read() == b"" and "Content-Type" not in resp.headers
        async with http.post(url, json=[{"seq": 2}, {"seq": 3}], headers={"Prefer": "return=representation"}) as r:
            assert r.status == 201 and r.headers["Content-Type"] == "application/json; charset=utf-8"
            assert await r.json() == [{"id": 2, "machine_id": None, "seq": 2}, {"id": 3, "machine_id": None, "seq": 3}]
        async with http.get(url, params={"select": "id", "order": "id", "offset": "1"}) as resp:
            assert resp.headers["Content-Range"] == "1-2/*"
        async with http.get(url, params={"id": "gt.99"}, headers={"Prefer": "count=exact"}) as resp:
            assert resp.headers["Content-Range"] == "*/0" and await resp.json() == []
        async with http.get(url, params={"limit": "1"}, headers={"Prefer": "count=exact"}) as resp:
            assert resp.headers["Content-Range"] == "0-0/3"
        async with http.post(
            url,
            params={"on_conflict": "id"},
            json={"id": 1, "seq": 9},
            headers={"Prefer": "return=representation,resolution=merge-duplicates"},
        ) as resp:
            assert resp.status == 200  # every row was updated, none inserted


async def test_patch_delete_minimal_is_204_and_delete_tolerates_body(api_tables: Any) -> None:  # item 8
    async with aiohttp.ClientSession(headers=_headers(api_tables)) as http:
        url = f"{api_tables.url}/rest/v1/api_plain"
        await http.post(url, json=[{"seq": 1}, {"seq": 2}])
        async with http.patch(url, params={"seq": "eq.1"}, json={"seq": 5}, headers={"Prefer": "return=minimal"}) as r:
            assert r.status == 204
        async with http.delete(url, params={"seq": "eq.5"}, json={}, headers={"Prefer": "return=representation"}) as r:
            assert r.status == 200 and [row["seq"] for row in await r.json()] == [5]


@pytest.mark.parametrize(
    ("method", "path", "params", "headers", "status", "code"),
    [
        ("GET", "/api_nope", {}, {}, 404, "PGRST205"),
        ("GET", "/api_items", {"value": "zz.1"}, {}, 400, "PGRST100"),
        ("GET", "/api_items", {}, {"Accept-Profile": "private"}, 406, "PGRST106"),
        ("POST", "/rpc/api_nope", {}, {}, 404, "PGRST202"),
        ("GET", "/api_items", {}, {"Accept": "application/vnd.pgrst.object+json"}, 406, "PGRST116"),
        ("GET", "/api_items", {}, {"Authorization": "Bearer x.y.z"}, 401, "PGRST301"),
    ],
    ids=["unknown-table", "bad-operator", "unexposed-schema", "unknown-rpc", "singular-empty", "bad-jwt"],
)
async def test_error_bodies(
    api_tables: Any, method: str, path: str, params: dict[str, str], headers: dict[str, str], status: int, code: str
) -> None:  # item 11
    async with (
        aiohttp.ClientSession(headers=_headers(api_tables)) as http,
        http.request(method, f"{api_tables.url}/rest/v1{path}", params=params, headers=headers, json={}) as resp,
    ):
        body = await resp.json()
        assert (resp.status, body["code"]) == (status, code)
        assert set(body) == ERROR_KEYS
        assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
        assert resp.headers["Proxy-Status"] == f"PostgREST; error={code}"
        if status == 401:
            assert resp.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


async def test_apikey_header_alone_and_opaque_keys(api_tables: Any) -> None:  # item 2
    async with aiohttp.ClientSession() as http:
        url = f"{api_tables.url}/rest/v1/api_secret"
        async with http.get(url, headers={"apikey": api_tables.service_key}) as resp:
            assert resp.status == 200
        async with http.get(url, headers={"apikey": "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"}) as resp:
            assert resp.status == 200
        async with http.get(url, headers={"apikey": "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH"}) as resp:
            assert resp.status == 401 and (await resp.json())["code"] == "42501"
        async with http.get(url) as resp:  # no key at all: the anon role
            assert resp.status == 401


async def test_read_only_transaction_for_get(api_tables: Any) -> None:  # item 3
    async with (
        aiohttp.ClientSession(headers=_headers(api_tables)) as http,
        http.get(f"{api_tables.url}/rest/v1/rpc/api_touch", params={"p_name": "x"}) as resp,
    ):
        body = await resp.json()
        assert (resp.status, body["code"]) == (405, "25006")  # a volatile function over GET


async def test_async_client_rest_round_trip(api_tables: Any) -> None:  # acreate_client for REST
    client = await acreate_client(api_tables.url, api_tables.service_key)
    try:
        items = client.table("api_items")
        await items.insert([{"machine_id": MACHINE_A, "name": f"n{i}", "value": i} for i in range(3)]).execute()
        result = await items.select("name", count="exact").gte("value", 1).order("name").execute()
        assert (result.data, result.count) == ([{"name": "n1"}, {"name": "n2"}], 2)
        assert (await client.rpc("api_add", {"a": 40, "b": 2}).execute()).data == 42
        upserted = await items.upsert({"name": "n0", "machine_id": MACHINE_A, "value": 7}, on_conflict="name").execute()
        assert upserted.data[0]["value"] == 7
    finally:
        await client.postgrest.aclose()
