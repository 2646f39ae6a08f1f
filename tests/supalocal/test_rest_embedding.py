"""Resource embedding and JSON paths through the official client, on the seeded recipes and machines.

What a dashboard asks: a recipe with its steps, a step with its recipe, only the recipes having a given step,
the steps filtered, ordered and limited inside each recipe, JSON fields of ``config`` in select, filter, order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from postgrest import APIError

from supabase import Client, create_client

pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")

R101 = "00000000-0000-4000-8000-000000000101"  # Al2O3, 10 steps, one loop
R102 = "00000000-0000-4000-8000-000000000102"  # laminate, 15 steps, nested loops
TMA_PULSE = "00000000-0000-4000-8000-000000001105"
SEED_MACHINE_ID = "00000000-0000-4000-8000-000000000001"
VALVE_1_STATE = "c3d9cec2-7265-5578-823d-0dd0a53acd27"


@pytest.fixture
def db(clean_db: Any) -> Iterator[Client]:
    client = create_client(clean_db.url, clean_db.service_key)
    try:
        yield client
    finally:
        client.postgrest.aclose()  # the sync client's close is (oddly) named aclose


def _raw(stack: Any, path: str) -> httpx.Response:
    key = stack.service_key
    return httpx.get(f"{stack.url}/rest/v1/{path}", headers={"apikey": key, "Authorization": f"Bearer {key}"})


def test_one_to_many_nests_an_array(db: Client) -> None:
    rows = db.table("recipes").select("name, recipe_steps(sequence)").order("name").execute().data
    assert [len(r["recipe_steps"]) for r in rows] == [10, 15]
    assert set(rows[0]) == {"name", "recipe_steps"} and set(rows[0]["recipe_steps"][0]) == {"sequence"}


def test_many_to_one_nests_an_object(db: Client) -> None:
    row = db.table("recipe_steps").select("name, recipes(name, version)").eq("id", TMA_PULSE).single().execute().data
    assert row == {"name": "TMA pulse", "recipes": {"name": "Al2O3 TMA/H2O 100 cycles", "version": 1}}


def test_embedded_filter_order_and_limit_apply_inside_each_parent(db: Client) -> None:
    rows = (
        db.table("recipes")
        .select("id, recipe_steps(name, sequence)")
        .eq("recipe_steps.type", "valve")
        .order("sequence", desc=True, foreign_table="recipe_steps")
        .limit(2, foreign_table="recipe_steps")
        .order("name")
        .execute()
        .data
    )
    assert [r["id"] for r in rows] == [R101, R102], "a filter on the embedding does not filter the parents"
    assert rows[0]["recipe_steps"] == [{"name": "H2O pulse", "sequence": 2}, {"name": "TMA pulse", "sequence": 0}]
    assert len(rows[1]["recipe_steps"]) == 2


def test_inner_embedding_filters_the_parents(db: Client) -> None:
    rows = db.table("recipes").select("id, recipe_steps!inner(name)").eq("recipe_steps.name", "DEZ pulse").execute()
    assert [r["id"] for r in rows.data] == [R102]
    assert rows.data[0]["recipe_steps"] == [{"name": "DEZ pulse"}]
    counted = db.table("recipes").select("id, recipe_steps!inner()", count="exact")
    counted = counted.eq("recipe_steps.name", "DEZ pulse").execute()
    assert counted.count == 1 and counted.data == [{"id": R102}], "an empty embedding adds no key"


def test_without_inner_a_filtered_to_one_embedding_is_null(db: Client) -> None:
    rows = (
        db.table("recipe_steps")
        .select("id, recipes(name)")
        .eq("recipes.version", 99)
        .eq("id", TMA_PULSE)
        .execute()
        .data
    )
    assert rows == [{"id": TMA_PULSE, "recipes": None}]


def test_alias_and_embedding_by_key_column(db: Client) -> None:
    row = db.table("parameters").select("key, machine:machine_id(name)").eq("key", "valve_1.state").single().execute()
    assert row.data == {"key": "valve_1.state", "machine": {"name": "ALD reference reactor"}}


def test_nested_embeddings_and_one_to_one(db: Client) -> None:
    """parameter_latest's key (machine_id, parameter_id) is its primary key: one-to-one, an object or null."""
    db.table("parameter_latest").insert(
        {"machine_id": SEED_MACHINE_ID, "parameter_id": VALVE_1_STATE, "value": 1, "ts": "2026-12-01T00:00:00Z"}
    ).execute()
    rows = db.table("machines").select("id, parameters(key, parameter_latest(value))").execute().data
    assert rows[0]["id"] == SEED_MACHINE_ID
    latest = {p["key"]: p["parameter_latest"] for p in rows[0]["parameters"]}
    assert latest["valve_1.state"] == {"value": 1}
    assert latest["valve_2.state"] is None


def test_two_relationships_are_ambiguous_until_a_hint_picks_one(db: Client) -> None:
    with pytest.raises(APIError) as err:
        db.table("machines").select("id, process_runs(id)").execute()
    assert err.value.code == "PGRST201"
    assert err.value.message == (
        "Could not embed because more than one relationship was found for 'machines' and 'process_runs'"
    )
    assert sorted(err.value.details, key=lambda d: d["cardinality"]) == [  # type: ignore[arg-type]
        {
            "cardinality": "many-to-one",
            "embedding": "machines with process_runs",
            "relationship": "machines_current_run_id_fkey using machines(current_run_id) and process_runs(id)",
        },
        {
            "cardinality": "one-to-many",
            "embedding": "machines with process_runs",
            "relationship": "process_runs_machine_id_fkey using machines(id) and process_runs(machine_id)",
        },
    ]
    assert err.value.hint == (
        "Try changing 'process_runs' to one of the following: 'process_runs!machines_current_run_id_fkey', "
        "'process_runs!process_runs_machine_id_fkey'. Find the desired relationship in the 'details' key."
    )
    hinted = db.table("machines").select("id, process_runs!process_runs_machine_id_fkey(id)").execute()
    assert hinted.data == [{"id": SEED_MACHINE_ID, "process_runs": []}]
    by_column = db.table("machines").select("id, run:current_run_id(id)").execute()
    assert by_column.data == [{"id": SEED_MACHINE_ID, "run": None}]


def test_refusals_are_postgrests(clean_db: Any) -> None:
    unknown = _raw(clean_db, "recipes?select=*,nope(*)")
    assert unknown.status_code == 400 and unknown.json() == {
        "code": "PGRST200",
        "details": "Searched for a foreign key relationship between 'recipes' and 'nope' in the schema 'public', "
        "but no matches were found.",
        "hint": None,
        "message": "Could not find a relationship between 'recipes' and 'nope' in the schema cache",
    }
    typo = _raw(clean_db, "recipes?select=*,recipe_step(*)")
    assert typo.json()["hint"] == "Perhaps you meant 'recipe_steps' instead of 'recipe_step'."
    ambiguous = _raw(clean_db, "machines?select=*,process_runs(*)")
    assert ambiguous.status_code == 300 and ambiguous.json()["code"] == "PGRST201"
    not_embedded = _raw(clean_db, "recipes?select=id&recipe_steps.type=eq.valve")
    assert not_embedded.status_code == 400 and not_embedded.json() == {
        "code": "PGRST108",
        "details": None,
        "hint": "Verify that 'recipe_steps' is included in the 'select' query parameter.",
        "message": "'recipe_steps' is not an embedded resource in this request",
    }
    aggregate = _raw(clean_db, "recipes?select=count()")
    assert aggregate.status_code == 400 and aggregate.json()["code"] == "PGRST123"


def test_json_paths_in_select_filter_and_order(db: Client) -> None:
    rows = (
        db.table("recipe_steps")
        .select("name, valve:config->>valve, config->duration_ms")
        .eq("recipe_id", R101)
        .eq("type", "valve")
        .order("config->>valve", desc=True)
        .execute()
        .data
    )
    assert rows == [
        {"name": "H2O pulse", "valve": "2", "duration_ms": 30},
        {"name": "TMA pulse", "valve": "1", "duration_ms": 20},
    ]
    nested = db.table("recipe_steps").select("id, config->wait->>timeout_ms").eq("config->>parameter", "mfc_1.flow_sp")
    assert [r["timeout_ms"] for r in nested.eq("recipe_id", R101).execute().data] == ["30000"]


def test_json_path_cast_in_select(db: Client) -> None:
    rows = db.table("recipe_steps").select("config->>duration_ms::int").eq("id", TMA_PULSE).execute().data
    assert rows == [{"duration_ms": 20}]


def test_embedding_in_a_returned_representation(clean_db: Any) -> None:
    key = clean_db.service_key
    response = httpx.post(
        f"{clean_db.url}/rest/v1/recipe_steps?select=name,recipes(name)",
        json={"recipe_id": R101, "sequence": 9, "type": "wait", "name": "extra", "config": {"duration_ms": 5}},
        headers={"apikey": key, "Authorization": f"Bearer {key}", "Prefer": "return=representation"},
    )
    assert response.status_code == 201, response.text
    assert response.json() == [{"name": "extra", "recipes": {"name": "Al2O3 TMA/H2O 100 cycles"}}]


def test_a_self_reference_is_ambiguous_even_with_its_key_name(clean_db: Any) -> None:
    """recipe_steps.parent_step_id → recipe_steps: parent (many-to-one) and children (one-to-many) both match."""
    for select in ("id,recipe_steps(id)", "id,recipe_steps!recipe_steps_parent_fkey(id)"):
        response = _raw(clean_db, f"recipe_steps?select={select}")
        assert response.status_code == 300 and response.json()["code"] == "PGRST201", select


def test_a_column_hint_names_a_single_column_key_only(clean_db: Any) -> None:
    hinted = _raw(clean_db, "recipes?select=id,recipe_steps!recipe_id(id)&limit=1")
    assert hinted.status_code == 200 and len(hinted.json()[0]["recipe_steps"]) in (10, 15)
    wrong = _raw(clean_db, "recipes?select=id,recipe_steps!no_such_fkey(id)")
    assert wrong.status_code == 400 and wrong.json()["code"] == "PGRST200"
