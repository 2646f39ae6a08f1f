"""Operators a dashboard uses beyond eq/lt: ranges, full-text, like(any|all), array braces, char(n) columns."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from postgrest import APIError

from supabase import Client, create_client
from tests.supalocal.sql_support import run_sql

pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")

SCHEMA = """
drop table if exists public.api_ops;
create table public.api_ops (
    id int primary key,
    code char(2),
    slot int4range,
    body text,
    doc tsvector,
    tags text[]
);
insert into public.api_ops values
    (1, 'AB', '[1,5)', 'the quick brown fox jumps', to_tsvector('english', 'the quick brown fox jumps'), '{a,b}'),
    (2, 'C',  '[5,9)', 'lazy dogs sleep all day',   to_tsvector('english', 'lazy dogs sleep all day'),   '{b}'),
    (3, 'DE', '[10,20)', 'a fox and a dog',           to_tsvector('english', 'a fox and a dog'),           '{a}');
notify pgrst, 'reload schema';
"""


@pytest.fixture
def db(clean_db: Any) -> Iterator[Client]:
    run_sql(clean_db, SCHEMA)
    client = create_client(clean_db.url, clean_db.service_key)
    try:
        yield client
    finally:
        client.postgrest.aclose()
        run_sql(clean_db, "drop table if exists public.api_ops; notify pgrst, 'reload schema';")


def _ids(builder: Any) -> list[int]:
    return sorted(r["id"] for r in builder.execute().data)


@pytest.mark.parametrize(
    ("op", "value", "ids"),
    [
        ("sr", "[1,5)", [2, 3]),
        ("sl", "[5,9)", [1]),
        ("nxr", "[1,9)", [1, 2]),
        ("nxl", "[5,100)", [2, 3]),
        ("adj", "[5,10)", [1, 3]),
        ("ov", "[4,6)", [1, 2]),
    ],
    ids=["sr", "sl", "nxr", "nxl", "adj", "ov"],
)
def test_range_operators(db: Client, op: str, value: str, ids: list[int]) -> None:
    assert _ids(db.table("api_ops").select("id").filter("slot", op, value)) == ids


def test_range_helpers_of_the_client(db: Client) -> None:
    # the client writes (a,b): exclusive bounds, so (4,6) is [5,6) and (4,10) is [5,10)
    assert _ids(db.table("api_ops").select("id").range_gt("slot", (4, 6))) == [3]
    assert _ids(db.table("api_ops").select("id").range_adjacent("slot", (4, 10))) == [1, 3]


@pytest.mark.parametrize(
    ("column", "query", "options", "ids"),
    [
        ("doc", "fox & quick", None, [1]),
        ("doc", "fox dog", {"type": "plain"}, [3]),
        ("doc", "quick brown", {"type": "phrase", "config": "english"}, [1]),
        ("doc", "fox -quick", {"type": "web_search", "config": "english"}, [3]),
        ("body", "dogs", {"type": "plain", "config": "english"}, [2, 3]),
    ],
    ids=["fts", "plfts", "phfts-config", "wfts-config", "text-column"],
)
def test_full_text_search(db: Client, column: str, query: str, options: dict[str, str] | None, ids: list[int]) -> None:
    assert _ids(db.table("api_ops").select("id").text_search(column, query, options)) == ids


def test_like_any_all_and_ilike_any(db: Client) -> None:
    assert _ids(db.table("api_ops").select("id").like_any_of("body", "*fox*,*lazy*")) == [1, 2, 3]
    assert _ids(db.table("api_ops").select("id").like_all_of("body", "*fox*,*dog*")) == [3]
    assert _ids(db.table("api_ops").select("id").ilike_any_of("body", "THE*,LAZY*")) == [1, 2]
    assert _ids(db.table("api_ops").select("id").filter("id", "gt(any)", "{2,9}")) == [3]


def test_braces_inside_or_are_one_value(db: Client) -> None:
    assert _ids(db.table("api_ops").select("id").or_("tags.cs.{a,b},id.eq.2")) == [1, 2]


def test_char_n_keeps_its_length(db: Client) -> None:
    assert _ids(db.table("api_ops").select("id").eq("code", "AB")) == [1]
    assert _ids(db.table("api_ops").select("id").eq("code", "C")) == [2], "char(n) pads: 'C' = 'C '"
    row = db.table("api_ops").insert({"id": 4, "code": "XY"}).execute().data[0]
    assert row["code"] == "XY"
    with pytest.raises(APIError) as err:
        db.table("api_ops").insert({"id": 5, "code": "XYZ"}).execute()
    assert err.value.code == "22001"
    assert _ids(db.table("api_ops").select("id").eq("code", "XYZ")) == [], "a longer value is not cut to match"
    assert db.table("api_ops").update({"code": "QQ"}).eq("id", 4).execute().data[0]["code"] == "QQ"


def test_an_unknown_operator_is_refused(clean_db: Any, db: Client) -> None:
    key = clean_db.service_key
    response = httpx.get(
        f"{clean_db.url}/rest/v1/api_ops?id=near.1", headers={"apikey": key, "Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 400 and response.json()["code"] == "PGRST100"
