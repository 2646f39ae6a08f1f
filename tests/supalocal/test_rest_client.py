"""PostgREST conformance through the unmodified official sync client (``create_client``).

Each test names the item of the conformance checklist (docs/LOCAL_STACK.md §7) it covers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from postgrest import APIError

from supabase import Client, create_client
from supalocal.auth import make_api_key

# supabase-py 2.34.1's own create_client passes postgrest's deprecated ``timeout``/``verify`` arguments.
pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")

MACHINE_A = "00000000-0000-4000-8000-0000000000aa"
MACHINE_B = "00000000-0000-4000-8000-0000000000bb"


@contextlib.contextmanager
def client_for(url: str, key: str) -> Iterator[Client]:
    """An official sync client whose HTTP session is closed afterwards."""
    client = create_client(url, key)
    try:
        yield client
    finally:
        client.postgrest.aclose()  # the sync client's close is (oddly) named aclose


@pytest.fixture
def service(api_tables: Any) -> Iterator[Client]:
    with client_for(api_tables.url, api_tables.service_key) as client:
        yield client


@pytest.fixture
def anon(api_tables: Any) -> Iterator[Client]:
    with client_for(api_tables.url, api_tables.anon_key) as client:
        yield client


def _items(n: int, *, machine: str = MACHINE_A) -> list[dict[str, Any]]:
    return [{"machine_id": machine, "name": f"item-{i}", "value": i} for i in range(n)]


def test_insert_single_returns_representation_with_postgres_json(service: Client) -> None:  # items 7, 9
    row = {"machine_id": MACHINE_A, "name": "x", "value": 1.50, "meta": {"a": [1, 2]}, "tags": ["p", "q"]}
    data = service.table("api_items").insert(row).execute().data
    assert len(data) == 1
    got = data[0]
    assert got["id"] == 1 and got["machine_id"] == MACHINE_A and got["value"] == 1.5
    assert got["meta"] == {"a": [1, 2]} and got["tags"] == ["p", "q"]
    assert got["ts"].endswith("+00:00") and got["note"] == "dflt" and got["flag"] is False


def test_bulk_insert_with_columns_missing_keys_become_null(service: Client) -> None:  # item 7
    rows = [{"machine_id": MACHINE_A, "name": "a", "note": "n"}, {"machine_id": MACHINE_A, "name": "b"}]
    data = service.table("api_items").insert(rows).execute().data
    assert [r["name"] for r in data] == ["a", "b"]
    assert data[0]["note"] == "n" and data[1]["note"] is None  # columns= semantics, not the default
    assert data[0]["value"] is None and data[1]["flag"] is False  # absent from all rows: the default


def test_bulk_insert_missing_default(service: Client) -> None:  # item 6, 7
    rows = [{"machine_id": MACHINE_A, "name": "a", "note": "n"}, {"machine_id": MACHINE_A, "name": "b"}]
    data = service.table("api_items").insert(rows, default_to_null=False).execute().data
    assert {r["name"]: r["note"] for r in data} == {"a": "n", "b": "dflt"}


def test_insert_minimal_returns_empty(service: Client) -> None:
    result = service.table("api_items").insert({"machine_id": MACHINE_A, "name": "m"}, returning="minimal").execute()
    assert result.data == []
    assert service.table("api_items").select("name").execute().data == [{"name": "m"}]


def test_upsert_merge_and_ignore_duplicates(service: Client) -> None:  # item 7
    service.table("api_items").insert(_items(2)).execute()
    merged = (
        service.table("api_items")
        .upsert({"name": "item-1", "machine_id": MACHINE_B, "value": 9}, on_conflict="name")
        .execute()
    )
    assert merged.data[0]["machine_id"] == MACHINE_B and merged.data[0]["id"] == 2
    ignored = (
        service.table("api_items")
        .upsert(
            [{"name": "item-0", "machine_id": MACHINE_B}, {"name": "new", "machine_id": MACHINE_B}],
            on_conflict="name",
            ignore_duplicates=True,
        )
        .execute()
    )
    assert [r["name"] for r in ignored.data] == ["new"]
    rows = service.table("api_items").select("name,machine_id").order("id").execute().data
    assert rows == [
        {"name": "item-0", "machine_id": MACHINE_A},
        {"name": "item-1", "machine_id": MACHINE_B},
        {"name": "new", "machine_id": MACHINE_B},
    ]


def test_upsert_on_primary_key_by_default(service: Client) -> None:
    service.table("api_plain").insert({"id": 5, "seq": 1}).execute()
    data = service.table("api_plain").upsert({"id": 5, "seq": 2}).execute().data
    assert data == [{"id": 5, "machine_id": None, "seq": 2}]


def test_select_filters_order_limit_offset(service: Client) -> None:  # items 5, 9
    service.table("api_items").insert(_items(6) + _items(2, machine=MACHINE_B)[:0]).execute()
    service.table("api_items").insert({"machine_id": MACHINE_B, "name": "b,c", "value": None}).execute()
    t = service.table("api_items")
    assert [r["name"] for r in t.select("name").gt("value", 3).order("value", desc=True).execute().data] == [
        "item-5",
        "item-4",
    ]
    assert len(t.select("id").lte("value", 2).execute().data) == 3
    assert [r["name"] for r in t.select("name").in_("name", ["item-1", "b,c"]).order("id").execute().data] == [
        "item-1",
        "b,c",
    ]
    assert [r["name"] for r in t.select("name").is_("value", None).execute().data] == ["b,c"]
    assert len(t.select("id").neq("machine_id", MACHINE_A).execute().data) == 1
    assert [r["name"] for r in t.select("name").like("name", "item-%").order("id").range(1, 2).execute().data] == [
        "item-1",
        "item-2",
    ]
    assert len(t.select("id").ilike("name", "ITEM-*").execute().data) == 6
    assert [r["id"] for r in t.select("id").order("value", desc=True, nullsfirst=True).limit(2).execute().data] == [
        7,
        6,
    ]
    assert len(t.select("id").not_.eq("machine_id", MACHINE_A).execute().data) == 1
    assert len(t.select("id").or_("value.eq.0,value.eq.5").execute().data) == 2
    assert len(t.select("id").gte("ts", "2000-01-01T00:00:00+00:00").execute().data) == 7
    assert t.select("name,v:value").eq("name", "item-2").execute().data == [{"name": "item-2", "v": 2}]


def test_select_count_head_and_single(service: Client) -> None:  # item 9
    service.table("api_items").insert(_items(5)).execute()
    result = service.table("api_items").select("id", count="exact").eq("machine_id", MACHINE_A).limit(2).execute()
    assert result.count == 5 and len(result.data) == 2
    head = service.table("api_items").select("*", count="exact", head=True).execute()
    assert head.count == 5
    one = service.table("api_items").select("name").eq("value", 3).single().execute()
    assert one.data == {"name": "item-3"}
    with pytest.raises(APIError) as err:
        service.table("api_items").select("*").eq("value", 99).single().execute()
    assert err.value.code == "PGRST116"


def test_update_and_delete_with_filters(service: Client) -> None:  # item 8
    service.table("api_items").insert(_items(3)).execute()
    updated = service.table("api_items").update({"note": "done"}).eq("name", "item-1").eq("machine_id", MACHINE_A)
    assert [r["note"] for r in updated.execute().data] == ["done"]
    assert service.table("api_items").update({"note": "x"}).eq("name", "nope").execute().data == []
    minimal = service.table("api_items").update({"note": "y"}, returning="minimal").eq("id", 1).execute()
    assert minimal.data == []
    deleted = service.table("api_items").delete().eq("id", 1).execute().data
    assert [r["id"] for r in deleted] == [1]
    counted = service.table("api_items").delete(count="exact").gte("id", 2).execute()
    assert counted.count == 2


def test_update_or_delete_without_filter_is_rejected(service: Client) -> None:  # item 8 (safeupdate)
    service.table("api_items").insert(_items(1)).execute()
    with pytest.raises(APIError) as err:
        service.table("api_items").update({"note": "all"}).execute()
    assert err.value.code == "21000" and err.value.message == "UPDATE requires a WHERE clause"
    with pytest.raises(APIError) as err:
        service.table("api_items").delete().execute()
    assert err.value.message == "DELETE requires a WHERE clause"
    assert len(service.table("api_items").select("id").execute().data) == 1


def test_rpc_shapes(service: Client) -> None:  # item 10
    service.table("api_items").insert([*_items(3), {"machine_id": MACHINE_B, "name": "other"}]).execute()
    rows = service.rpc("api_by_machine", {"p_machine": MACHINE_A}).execute().data
    assert [r["name"] for r in rows] == ["item-0", "item-1", "item-2"]
    filtered = service.rpc("api_by_machine", {"p_machine": MACHINE_A}).gt("value", 0).order("id", desc=True)
    assert [r["name"] for r in filtered.limit(1).execute().data] == ["item-2"]
    assert service.rpc("api_add", {"a": 2, "b": 3}).execute().data == 5
    assert service.rpc("api_add", {"a": 2}).execute().data == 3  # default argument
    assert service.rpc("api_item", {"p_id": 2}).execute().data["name"] == "item-1"  # composite → object
    assert service.rpc("api_words").execute().data == ["a", "b", "c"]  # setof scalar
    assert service.rpc("api_touch", {"p_name": "item-0"}).execute().data == []  # void → 204
    assert service.table("api_items").select("flag").eq("name", "item-0").single().execute().data == {"flag": True}
    assert service.rpc("api_add", {"a": 1, "b": 1}, get=True).execute().data == 2


def test_jwt_role_and_claims_reach_postgres(service: Client, anon: Client) -> None:  # items 2, 3
    claims = service.rpc("api_claims").execute().data
    assert claims["role"] == "service_role" and claims["user"] == "service_role"
    assert claims["jwt"]["iss"] == "supabase-demo"
    assert anon.rpc("api_claims").execute().data["user"] == "anon"


def test_error_unknown_table(service: Client) -> None:  # item 4, 11
    with pytest.raises(APIError) as err:
        service.table("api_itemz").select("*").execute()
    assert err.value.code == "PGRST205"
    assert err.value.message == "Could not find the table 'public.api_itemz' in the schema cache"
    assert err.value.hint == "Perhaps you meant the table 'public.api_items'"


def test_error_unique_violation(service: Client) -> None:  # item 11
    service.table("api_items").insert(_items(1)).execute()
    with pytest.raises(APIError) as err:
        service.table("api_items").insert(_items(1)).execute()
    assert err.value.code == "23505"
    assert err.value.details == "Key (name)=(item-0) already exists."


def test_error_bad_filter_and_bad_column(service: Client) -> None:  # item 5, 11
    with pytest.raises(APIError) as err:
        service.table("api_items").select("*").filter("value", "nope", "1").execute()
    assert err.value.code == "PGRST100"
    with pytest.raises(APIError) as err:
        service.table("api_items").select("*").eq("no_such_column", 1).execute()
    assert err.value.code == "42703"
    with pytest.raises(APIError) as err:
        service.table("api_items").select("*").eq("value", "not-a-number").execute()
    assert err.value.code == "22P02"
    with pytest.raises(APIError) as err:
        service.table("api_items").insert({"machine_id": MACHINE_A, "name": "z", "nope": 1}).execute()
    assert err.value.code == "PGRST204"


@pytest.mark.parametrize(
    ("make_key", "code"),
    [
        (lambda s: make_api_key("service_role", secret=s, lifetime_s=-10), "PGRST303"),
        (lambda s: make_api_key("service_role", secret="x" * 40), "PGRST301"),
        (lambda s: "not-a-jwt", "PGRST301"),
    ],
    ids=["expired", "wrong-secret", "garbage"],
)
def test_error_rejected_jwt(api_tables: Any, make_key: Any, code: str) -> None:  # item 2
    with client_for(api_tables.url, make_key(api_tables.jwt_secret)) as client, pytest.raises(APIError) as err:
        client.table("api_items").select("*").execute()
    assert err.value.code == code


def test_error_anon_denied(anon: Client) -> None:  # items 2, 11 (42501 → 401 for anon)
    with pytest.raises(APIError) as err:
        anon.table("api_secret").select("*").execute()
    assert err.value.code == "42501"
    with pytest.raises(APIError) as err:
        anon.table("machine_commands").insert({"machine_id": MACHINE_A, "type": "stop_recipe"}).execute()
    assert err.value.code == "42501"


def test_error_rpc_unknown_and_raise(service: Client) -> None:  # item 10, 11
    with pytest.raises(APIError) as err:
        service.rpc("api_nope", {"a": 1}).execute()
    assert err.value.code == "PGRST202"
    assert err.value.message == "Could not find the function public.api_nope(a) in the schema cache"
    with pytest.raises(APIError) as err:
        service.rpc("api_add", {"zzz": 1}).execute()
    assert err.value.code == "PGRST202"
    with pytest.raises(APIError) as err:
        service.rpc("api_fail").execute()
    assert (err.value.code, err.value.message, err.value.details, err.value.hint) == (
        "P0001",
        "boom",
        "the detail",
        "the hint",
    )


def test_upsert_into_a_partitioned_table(clean_db: Any) -> None:
    """Regression: `RETURNING xmax` is refused on partitions (0A000); parameter_history is partitioned."""
    row = {"machine_id": "00000000-0000-4000-8000-000000000001", "ts": "2026-11-30T12:00:00+00:00", "values": {"a": 1}}
    with client_for(clean_db.url, clean_db.service_key) as c:
        c.table("parameter_history").upsert(row, on_conflict="machine_id,ts").execute()
        again = c.table("parameter_history").upsert(row | {"values": {"a": 2}}, on_conflict="machine_id,ts").execute()
        assert again.data[0]["values"] == {"a": 2}
        assert len(c.table("parameter_history").select("ts").execute().data) == 1


def test_parameter_history_read_ms_round_trips_and_a_row_without_it_still_inserts(clean_db: Any) -> None:
    """One bulk upsert as the agent sends it (`missing=default`): a row with `read_ms` and one shaped like an
    older agent's (no `read_ms`, null on read); a negative duration is the column check's 23514."""
    machine = "00000000-0000-4000-8000-000000000001"
    rows = [
        {"machine_id": machine, "ts": "2026-11-30T12:00:00+00:00", "run_id": None, "values": {"a": 1}, "read_ms": 8.37},
        {"machine_id": machine, "ts": "2026-11-30T12:00:01+00:00", "run_id": None, "values": {"a": 2}},
    ]
    with client_for(clean_db.url, clean_db.service_key) as c:
        c.table("parameter_history").upsert(rows, on_conflict="machine_id,ts", default_to_null=False).execute()
        got = c.table("parameter_history").select("ts,read_ms").order("ts").execute().data
        assert [r["read_ms"] for r in got] == [8.37, None]
        with pytest.raises(APIError) as err:
            c.table("parameter_history").insert(rows[1] | {"ts": "2026-11-30T12:00:02+00:00", "read_ms": -1}).execute()
        assert err.value.code == "23514" and "parameter_history_read_ms_check" in str(err.value.message)
