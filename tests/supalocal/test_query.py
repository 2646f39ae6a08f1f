"""Table tests of the pure query-string, Prefer and realtime-filter parsers (no database)."""

from __future__ import annotations

from decimal import Decimal

import pytest

import supalocal.api
from supalocal.api.errors import ApiError, status_for_sqlstate
from supalocal.api.query import (
    Embed,
    Filter,
    JsonStep,
    LogicTree,
    OrderTerm,
    Preferences,
    SelectItem,
    parse_columns,
    parse_prefer,
    parse_query,
    parse_select,
)
from supalocal.api.rtfilter import FilterError, parse_row_filter


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("a", "eq.1", Filter("a", "eq", "1")),
        ("a", "not.eq.1", Filter("a", "eq", "1", negated=True)),
        ("ts", "gte.2024-01-01T00:00:00+00:00", Filter("ts", "gte", "2024-01-01T00:00:00+00:00")),
        ("a", "eq.x.y", Filter("a", "eq", "x.y")),
        ("a", 'eq."q,uo\\"ted"', Filter("a", "eq", 'q,uo"ted')),
        ("s", 'in.(a,"b,c",d)', Filter("s", "in", ("a", "b,c", "d"))),
        ("s", "in.()", Filter("s", "in", ())),
        ("c", "is.null", Filter("c", "is", "null")),
        ("c", "is.NOT_NULL", Filter("c", "is", "not_null")),
        ("c", "not.is.true", Filter("c", "is", "true", negated=True)),
        ("n", "like.*abc*", Filter("n", "like", "*abc*")),
        ("j", 'cs.{"a":1}', Filter("j", "cs", '{"a":1}')),
        ('"we,ird"', "eq.1", Filter("we,ird", "eq", "1")),
    ],
    ids=[
        "eq",
        "not",
        "timestamp",
        "dots-in-value",
        "quoted",
        "in",
        "in-empty",
        "is-null",
        "is-case",
        "not-is",
        "like",
        "contains",
        "quoted-column",
    ],
)
def test_filters(key: str, value: str, expected: Filter) -> None:
    assert parse_query([(key, value)]).filters == (expected,)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("a", "eq"),
        ("a", "nope.1"),
        ("a", "1"),
        ("s", "in.a,b"),
        ("c", "is.maybe"),
        ("limit", "-1"),
        ("offset", "x"),
        ("order", "a.sideways"),
        ("or", "a.eq.1"),
        ("or", "(a)"),
    ],
    ids=[
        "no-value",
        "unknown-op",
        "no-op",
        "in-no-parens",
        "is-bad",
        "limit-negative",
        "offset-nan",
        "order-bad",
        "or-no-parens",
        "or-no-op",
    ],
)
def test_malformed_is_pgrst100(key: str, value: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_query([(key, value)])
    assert (err.value.status, err.value.code) == (400, "PGRST100")


def test_logic_trees_nest() -> None:
    (tree,) = parse_query([("or", "(a.eq.1,and(b.gt.2,c.not.is.null),d.in.(x,y))")]).filters
    assert tree == LogicTree(
        "or",
        (
            Filter("a", "eq", "1"),
            LogicTree("and", (Filter("b", "gt", "2"), Filter("c", "is", "null", negated=True))),
            Filter("d", "in", ("x", "y")),
        ),
    )
    (negated,) = parse_query([("not.and", "(a.eq.1,b.eq.2)")]).filters
    assert isinstance(negated, LogicTree) and negated.negated


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("*", (SelectItem("*"),)),
        ("id,value", (SelectItem("id"), SelectItem("value"))),
        ("v:value,id::text", (SelectItem("value", alias="v"), SelectItem("id", cast="text"))),
        ('"a,b"', (SelectItem("a,b"),)),
    ],
    ids=["star", "list", "alias-cast", "quoted"],
)
def test_select(value: str, expected: tuple[SelectItem, ...]) -> None:
    assert parse_select(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("*,recipe_steps(*)", (SelectItem("*"), Embed("recipe_steps", (SelectItem("*"),)))),
        (
            "id,steps:recipe_steps!inner(id,name)",
            (SelectItem("id"), Embed("recipe_steps", (SelectItem("id"), SelectItem("name")), "steps", None, True)),
        ),
        (
            "recipe_steps!recipe_steps_recipe_id_fkey()",
            (Embed("recipe_steps", (), None, "recipe_steps_recipe_id_fkey"),),
        ),
        ("machine:machine_id(name)", (Embed("machine_id", (SelectItem("name"),), "machine"),)),
        (
            "recipes(recipe_steps(id))",
            (Embed("recipes", (Embed("recipe_steps", (SelectItem("id"),)),)),),
        ),
        ("payload->>recipe_id", (SelectItem("payload", path=(JsonStep("recipe_id", True),)),)),
        (
            "r:meta->a->0::int",
            (SelectItem("meta", "r", "int", (JsonStep("a", False), JsonStep("0", False, index=True))),),
        ),
    ],
    ids=["embed", "alias-inner", "hint-empty", "by-column", "nested", "json-text", "json-alias-index-cast"],
)
def test_select_embeddings_and_json_paths(value: str, expected: tuple[object, ...]) -> None:
    assert parse_select(value) == expected


@pytest.mark.parametrize(
    ("value", "code"),
    [("count()", "PGRST123"), ("value.sum()", "PGRST123"), ("...machines(name)", "PGRST100"), ("a,,b", "PGRST100")],
    ids=["count", "sum", "spread", "empty-item"],
)
def test_select_refusals(value: str, code: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_select(value)
    assert err.value.code == code


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("r", "sr.[1,5)", Filter("r", "sr", "[1,5)")),
        ("r", "nxl.[1,5)", Filter("r", "nxl", "[1,5)")),
        ("r", "adj.(1,5]", Filter("r", "adj", "(1,5]")),
        ("t", "fts.cat & dog", Filter("t", "fts", "cat & dog")),
        ("t", "wfts(english).cat -dog", Filter("t", "wfts", "cat -dog", language="english")),
        ("n", "like(all).{a*,*b}", Filter("n", "like", "{a*,*b}", quantifier="all")),
        ("n", "not.ilike(any).{a*}", Filter("n", "ilike", "{a*}", negated=True, quantifier="any")),
        ("payload->>recipe_id", "eq.x", Filter("payload", "eq", "x", path=(JsonStep("recipe_id", True),))),
    ],
    ids=["sr", "nxl", "adj", "fts", "wfts-lang", "like-all", "not-ilike-any", "json-path"],
)
def test_more_operators(key: str, value: str, expected: Filter) -> None:
    assert parse_query([(key, value)]).filters == (expected,)


@pytest.mark.parametrize("value", ["eq(any).1", "like(some).{a}", "fts().x"], ids=["no-braces-ok", "bad", "empty"])
def test_bad_modifiers(value: str) -> None:
    if value == "eq(any).1":  # PostgreSQL refuses the array literal (22P02), as with PostgREST
        assert parse_query([("a", value)]).filters == (Filter("a", "eq", "1", quantifier="any"),)
        return
    with pytest.raises(ApiError) as err:
        parse_query([("a", value)])
    assert err.value.code == "PGRST100"


def test_braces_do_not_split_logic_members() -> None:  # regression: or=(tags.cs.{a,b},…) had 3 members
    (tree,) = parse_query([("or", "(tags.cs.{a,b},name.eq.x)")]).filters
    assert tree == LogicTree("or", (Filter("tags", "cs", "{a,b}"), Filter("name", "eq", "x")))


def test_embedded_scopes() -> None:
    q = parse_query(
        [
            ("select", "*,recipe_steps(*)"),
            ("recipe_steps.type", "eq.valve"),
            ("recipe_steps.order", "sequence.desc"),
            ("recipe_steps.limit", "2"),
            ("recipe_steps.offset", "1"),
            ("recipe_steps.not.or", "(a.eq.1,b.eq.2)"),
            ("name", "eq.x"),
        ]
    )
    assert q.filters == (Filter("name", "eq", "x"),)
    scope = q.scope(("recipe_steps",))
    assert scope.filters[0] == Filter("type", "eq", "valve")
    assert isinstance(scope.filters[1], LogicTree) and scope.filters[1].negated
    assert (scope.order, scope.limit, scope.offset) == ((OrderTerm("sequence", True),), 2, 1)


def test_order_limit_offset_columns() -> None:
    q = parse_query(
        [
            ("order", "a.desc.nullslast,b,c.asc.nullsfirst"),
            ("limit", "10"),
            ("offset", "5"),
            ("columns", '"value","machine_id"'),
            ("on_conflict", "id"),
        ]
    )
    assert q.order == (OrderTerm("a", True, "last"), OrderTerm("b"), OrderTerm("c", False, "first"))
    assert (q.limit, q.offset, q.columns, q.on_conflict) == (10, 5, ("value", "machine_id"), ("id",))
    assert parse_columns('"a\\"b",c') == ('a"b', "c")


def test_rpc_args_are_not_filters() -> None:
    q = parse_query([("a", "1"), ("b", "eq.2")], rpc_arg_names=frozenset({"a"}))
    assert q.rpc_args == (("a", "1"),) and q.filters == (Filter("b", "eq", "2"),)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], Preferences()),
        (["return=representation"], Preferences(return_="representation")),
        (["return=minimal,resolution=merge-duplicates"], Preferences("minimal", None, "merge-duplicates")),
        (
            ["return=minimal, resolution=ignore-duplicates,count=exact"],
            Preferences("minimal", "exact", "ignore-duplicates"),
        ),
        (["missing=default", "count=planned tx=rollback"], Preferences(None, "planned", None, True)),
        (["return=bogus,handling=lenient"], Preferences()),
    ],
    ids=["none", "representation", "comma", "comma-space", "several-headers", "unknown-ignored"],
)
def test_prefer(headers: list[str], expected: Preferences) -> None:
    assert parse_prefer(headers) == expected


@pytest.mark.parametrize(
    ("sqlstate", "message", "role", "status"),
    [
        ("23505", "", "service_role", 409),
        ("23503", "", "anon", 409),
        ("23502", "", "anon", 400),
        ("42501", "", "anon", 401),
        ("42501", "", "authenticated", 403),
        ("42P01", "", "anon", 404),
        ("42883", "", "anon", 404),
        ("P0001", "", "anon", 400),
        ("P0002", "", "anon", 500),
        ("21000", "UPDATE requires a WHERE clause", "anon", 400),
        ("21000", "other", "anon", 500),
        ("PT418", "", "anon", 418),
        ("08006", "", "anon", 503),
        ("25006", "", "anon", 405),
        ("22023", 'role "x" does not exist', "x", 401),
        ("22P02", "", "anon", 400),
        ("XX000", "", "anon", 500),
    ],
)
def test_sqlstate_to_http(sqlstate: str, message: str, role: str, status: int) -> None:
    assert status_for_sqlstate(sqlstate, message=message, role=role) == status


COLUMNS = {"machine_id": "uuid", "seq": "int4", "value": "numeric", "name": "text", "ts": "timestamptz", "flag": "bool"}


@pytest.mark.parametrize(
    ("text", "row", "matches"),
    [
        (
            "machine_id=eq.00000000-0000-4000-8000-0000000000AA",
            {"machine_id": "00000000-0000-4000-8000-0000000000aa"},
            True,
        ),
        (
            "machine_id=eq.00000000-0000-4000-8000-0000000000aa",
            {"machine_id": "00000000-0000-4000-8000-0000000000bb"},
            False,
        ),
        ("seq=gt.9", {"seq": Decimal(10)}, True),
        ("seq=gt.9", {"seq": Decimal(9)}, False),
        ("value=lte.1.5", {"value": Decimal("1.50")}, True),
        ("seq=in.(1,2)", {"seq": Decimal(2)}, True),
        ("seq=not.in.(1,2)", {"seq": Decimal(2)}, False),
        ("name=like.ab%", {"name": "abc"}, True),
        ("name=ilike.AB%", {"name": "abc"}, True),
        ("name=match.^a.c$", {"name": "abc"}, True),
        ("name=eq.x", {"name": None}, False),
        ("name=neq.x", {"name": None}, False),
        ("name=is.null", {"name": None}, True),
        ("name=isdistinct.x", {"name": None}, True),
        ("flag=is.true", {"flag": True}, True),
        ("ts=gte.2026-01-01T00:00:00Z", {"ts": "2026-01-01T01:00:00+01:00"}, True),
        ("ts=gt.2026-01-01T00:00:00Z", {"ts": "2026-01-01T01:00:00+01:00"}, False),
        ("seq=gt.1,name=eq.a", {"seq": Decimal(2), "name": "a"}, True),
        ("seq=gt.1,name=eq.a", {"seq": Decimal(2), "name": "b"}, False),
        ("", {"seq": 1}, True),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_realtime_filter(text: str, row: dict[str, object], matches: bool) -> None:
    assert parse_row_filter(text, columns=COLUMNS).matches(row, COLUMNS) is matches


@pytest.mark.parametrize("text", ["nope=eq.1", "seq=eq", "seq=between.1", "seq=in.1,2", "seq"])
def test_realtime_filter_rejects(text: str) -> None:
    with pytest.raises(FilterError):
        parse_row_filter(text, columns=COLUMNS)


def test_public_surface() -> None:
    assert set(supalocal.api.__all__) == {
        "CAPTURE_KEY",
        "POOL_KEY",
        "REALTIME_KEY",
        "REST_KEY",
        "ApiError",
        "AuthError",
        "SchemaCacheMiss",
        "create_app",
    }
    assert callable(supalocal.api.create_app)
