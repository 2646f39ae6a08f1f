"""Loading recipes from DB rows and JSON documents; snapshots round-trip; broken row graphs are reported."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recipe_support import (
    AL2O3_RECIPE_ROW,
    AL2O3_ROWS,
    LAMINATE_RECIPE_ROW,
    LAMINATE_ROWS,
    loop,
    recipe,
    valve,
    wait,
)

from agent.errors import RecipeError
from agent.plc import load_default_map
from agent.recipes import DOCUMENT_FORMAT, Recipe, validate
from agent.recipes.model import MAX_LOAD_DEPTH


def _paths(steps, parent=""):  # type: ignore[no-untyped-def]
    for n, s in enumerate(steps, start=1):
        path = f"{parent}/{n}" if parent else str(n)
        yield path, s.name
        yield from _paths(s.steps, path)


def test_al2o3_rows_build_the_tree_in_sequence_order() -> None:
    r = Recipe.from_rows(AL2O3_RECIPE_ROW, AL2O3_ROWS)
    assert r.load_problems == ()
    assert (r.id, r.name, r.version) == (AL2O3_RECIPE_ROW["id"], AL2O3_RECIPE_ROW["name"], 1)
    assert list(_paths(r.steps)) == [
        ("1", "Chamber to 200 °C"),
        ("2", "N2 carrier flow 20 sccm"),
        ("3", "Initial N2 purge"),
        ("4", "ALD cycle"),
        ("4/1", "TMA pulse"),
        ("4/2", "N2 purge after TMA"),
        ("4/3", "H2O pulse"),
        ("4/4", "N2 purge after H2O"),
        ("5", "Final N2 purge"),
        ("6", "Settle before unload"),
    ]
    assert r.steps[3].config == {"count": 100} and r.steps[3].id == AL2O3_ROWS[3]["id"]


def test_row_order_does_not_matter() -> None:
    shuffled = list(LAMINATE_ROWS)
    random.Random(7).shuffle(shuffled)
    assert Recipe.from_rows(LAMINATE_RECIPE_ROW, shuffled) == Recipe.from_rows(LAMINATE_RECIPE_ROW, LAMINATE_ROWS)


def test_sequence_gaps_do_not_show_in_paths() -> None:
    rows = [dict(r, sequence=r["sequence"] * 10) for r in AL2O3_ROWS]
    assert list(_paths(Recipe.from_rows(AL2O3_RECIPE_ROW, rows).steps))[4] == ("4/1", "TMA pulse")


def test_loading_copies_its_input() -> None:
    rows = copy.deepcopy(AL2O3_ROWS)
    r = Recipe.from_rows(AL2O3_RECIPE_ROW, rows)
    rows[3]["config"]["count"] = 1
    assert r.steps[3].config == {"count": 100}
    assert rows == [*AL2O3_ROWS[:3], dict(AL2O3_ROWS[3], config={"count": 1}), *AL2O3_ROWS[4:]]


def test_config_as_json_text_is_accepted() -> None:
    rows = [dict(r, config=json.dumps(r["config"])) for r in AL2O3_ROWS]
    assert Recipe.from_rows(AL2O3_RECIPE_ROW, rows) == Recipe.from_rows(AL2O3_RECIPE_ROW, AL2O3_ROWS)


@pytest.mark.parametrize(
    ("rows", "row_recipe"),
    [(AL2O3_ROWS, AL2O3_RECIPE_ROW), (LAMINATE_ROWS, LAMINATE_RECIPE_ROW)],
    ids=["al2o3", "laminate"],
)
def test_snapshot_round_trips_through_json(rows: list[dict], row_recipe: dict) -> None:
    r = Recipe.from_rows(row_recipe, rows)
    snapshot = json.loads(json.dumps(r.to_snapshot()))
    assert snapshot["format"] == DOCUMENT_FORMAT
    assert Recipe.from_document(snapshot) == r
    assert Recipe.from_document(json.dumps(snapshot)) == r


def test_document_format_matches_the_docstring_example() -> None:
    r = recipe(loop(2, valve(1, 20, "TMA pulse"), wait(5)), name="hand written")
    assert r.load_problems == ()
    assert r.steps[0].steps[0].config == {"valve": 1, "duration_ms": 20}
    assert r.to_snapshot()["steps"][0]["steps"][0] == {
        "type": "valve",
        "name": "TMA pulse",
        "config": {"valve": 1, "duration_ms": 20},
    }


def _row(rid: str, parent: str | None, seq: int = 0, name: str = "") -> dict:
    return {"id": rid, "parent_step_id": parent, "sequence": seq, "type": "wait", "name": name or rid, "config": {}}


ROW_GRAPHS = [
    pytest.param([_row("a", None), _row("b", "zz")], ["step row b 'b': parent zz is not a step of this recipe"],
                 id="dangling-parent"),
    pytest.param([_row("a", None), _row("b", "c"), _row("c", "b")], ["parent links form a cycle: b → c → b"],
                 id="two-cycle"),
    pytest.param([_row("a", None), _row("s", "s")], ["parent links form a cycle: s → s"], id="own-parent"),
    pytest.param(
        [_row("a", None), _row("b", "c"), _row("c", "b"), _row("d", "b")],
        ["parent links form a cycle: b → c → b", "step row d 'd' hangs below a broken parent link"],
        id="below-a-cycle",
    ),
    pytest.param([_row("a", None), _row("b", "zz"), _row("c", "b")],
                 ["step row b 'b': parent zz is not a step of this recipe",
                  "step row c 'c' hangs below a broken parent link"], id="below-a-dangling-row"),
    pytest.param([_row("a", None), _row("a", None, 1)], ["step row a appears twice"], id="duplicate-id"),
    pytest.param([_row("a", None, 0), _row("b", None, 0)], ["2 'b': sequence 0 is used twice among its siblings"],
                 id="duplicate-sequence"),
]  # fmt: skip


@pytest.mark.parametrize(("rows", "expected"), ROW_GRAPHS)
def test_broken_row_graphs_are_reported_not_followed(rows: list[dict], expected: list[str]) -> None:
    r = Recipe.from_rows({"id": "r", "name": "broken"}, rows)
    assert [str(p).removeprefix("recipe: ") for p in r.load_problems] == expected
    assert r.steps[0].name == "a"


def test_a_very_deep_chain_terminates() -> None:
    rows = [_row("0", None)] + [_row(str(n), str(n - 1)) for n in range(1, 1000)]  # 1,000 levels
    r = Recipe.from_rows({"id": "r", "name": "deep"}, rows)
    assert any(f"nested deeper than {MAX_LOAD_DEPTH} levels" in p.message for p in r.load_problems)


def test_rows_of_another_recipe_are_reported() -> None:
    rows = [dict(AL2O3_ROWS[0], recipe_id="someone-else"), *AL2O3_ROWS[1:]]
    r = Recipe.from_rows(AL2O3_RECIPE_ROW, rows)
    assert [p.message for p in r.load_problems] == [f"step row {AL2O3_ROWS[0]['id']} belongs to recipe someone-else"]


DOCUMENTS = [
    pytest.param({"name": "x", "steps": [], "colour": 1}, "unknown fields 'colour'", id="unknown-top-field"),
    pytest.param({"name": "x", "format": "other/2"}, "format 'other/2' is not 'ald-recipe/1'", id="wrong-format"),
    pytest.param({"steps": []}, "name is missing", id="no-name"),
    pytest.param({"name": "x", "version": 0}, "version must be an integer from 1 to 2**64-1, got 0", id="bad-version"),
    pytest.param({"name": "x", "steps": {"type": "wait"}}, "steps must be a list, got dict", id="steps-not-list"),
    pytest.param({"name": "x", "steps": ["wait"]}, "1: a step must be a JSON object, got str", id="step-not-object"),
    pytest.param({"name": "x", "steps": [{"type": "wait", "config": {}, "cfg": {}}]},
                 "1: unknown fields 'cfg'", id="unknown-step-field"),
]  # fmt: skip


@pytest.mark.parametrize(("doc", "expected"), DOCUMENTS)
def test_document_problems_are_collected(doc: dict, expected: str) -> None:
    problems = [str(p).removeprefix("recipe: ") for p in Recipe.from_document(doc).load_problems]
    assert expected in problems


@pytest.mark.parametrize("obj", ["[1, 2]", "{not json", 42], ids=["json-list", "bad-json", "number"])
def test_a_non_document_raises_recipe_error(obj: object) -> None:
    with pytest.raises(RecipeError, match="recipe document"):
        Recipe.from_document(obj)  # type: ignore[arg-type]


# --- property: any JSON document loads (or is refused as a whole) and validates without another exception ----

ANY_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(0, 3).map(lambda k: 10 ** (4999 + k)),  # built, not written: repr refuses 5,000 digits
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
ANY_JSON = st.recursive(
    ANY_SCALAR, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
)
ANY_STEP = st.dictionaries(st.sampled_from(["type", "name", "config", "steps", "id", "x"]), ANY_JSON, max_size=5)
ANY_DOCUMENT = st.dictionaries(
    st.sampled_from(["format", "id", "name", "version", "description", "steps", "x"]),
    ANY_JSON | st.lists(ANY_STEP, max_size=3),
    max_size=6,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANY_DOCUMENT)
def test_any_document_loads_and_validates_without_another_exception(doc: dict[str, Any]) -> None:
    loaded = Recipe.from_document(doc)
    problems = validate(loaded, load_default_map())
    assert all(len(str(p)) <= 1_200 for p in problems)
