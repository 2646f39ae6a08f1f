"""public.interlocks (issue 11): the schema refuses a malformed rule with an error naming what is wrong, the
dashboard edits rules, a machine's agent reads its own machine's rules only, anon sees nothing, and every
change reaches the agent over Realtime.

Constraints are exercised as the superuser (RLS aside, nothing bypasses a CHECK); roles and Realtime through
the agent's CloudClient (the official supabase client) against the session stack.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from agent.cloud import CloudClient, Watch
from agent.errors import CloudPermanentError
from supalocal.auth import make_api_key, make_machine_key
from supalocal.stack import BackgroundStack
from supalocal.testing import SEED_MACHINE_ID
from tests.support.poll import eventually

OTHER = "00000000-0000-4000-8000-000000000002"
SEED_INTERLOCK = "00000000-0000-4000-8000-000000000201"  # pulse-needs-vacuum
PERMIT: dict[str, Any] = {
    "name": "pulse-needs-chiller",
    "kind": "permit",
    "targets": ["valve_[12].state"],
    "conditions": [{"key": "chiller.flow", "op": "ge", "value": 2.5}],
    "hold_ms": 0,
    "action": "abort",
}
TRIP: dict[str, Any] = {
    "name": "exhaust-must-stay-open",
    "kind": "trip",
    "targets": [],
    "conditions": [{"key": "exhaust_valve.state", "op": "eq", "value": True}],
    "hold_ms": 500,
    "action": "hold",
}
INSERT = (
    "insert into public.interlocks (machine_id, name, kind, targets, conditions, hold_ms, action) "
    "values ($1, $2, $3, $4, $5, $6, $7) returning *"
)


def condition(op: str = "lt", **fields: Any) -> dict[str, Any]:
    """A valid condition on the chamber pressure, with `fields` changed."""
    base = {"key": "pressure_gauge_1.pressure", "op": op}
    return base | ({"low": 0, "high": 1000} if op in ("between", "outside") else {"value": 1000}) | fields


async def insert(db: asyncpg.Connection, rule: dict[str, Any], *, machine_id: str = SEED_MACHINE_ID) -> asyncpg.Record:
    return await db.fetchrow(
        INSERT,
        machine_id,
        rule["name"],
        rule["kind"],
        rule["targets"],
        rule["conditions"],
        rule["hold_ms"],
        rule["action"],
    )


@pytest.fixture
async def db(clean_db: BackgroundStack) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(clean_db.db_url)
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.execute("insert into public.machines (id, name) values ($1, 'other reactor')", OTHER)
    try:
        yield conn
    finally:
        await conn.close()


# -- a malformed rule is refused, saying why --------------------------------------------------------

CHECK = asyncpg.CheckViolationError


def bad(
    id: str, changes: dict[str, Any], constraint: str, message: str = "", error: type[asyncpg.PostgresError] = CHECK
) -> Any:
    """A case: `changes` to a valid permit, the constraint that refuses it, a pattern of its message."""
    return pytest.param(changes, error, constraint, message, id=id)


TRIP_HOLD = {"kind": "trip", "targets": []}
CONDITIONS = "interlocks_conditions_check"
BAD_RULES = [
    bad("empty-name", {"name": ""}, "interlocks_name_check"),
    bad("name-of-81-characters", {"name": "x" * 81}, "interlocks_name_check"),
    bad("name-with-surrounding-blanks", {"name": " vac "}, "interlocks_name_check"),
    bad(
        "name-taken-on-this-machine",
        {"name": "pulse-needs-vacuum"},
        "interlocks_machine_name_key",
        error=asyncpg.UniqueViolationError,
    ),
    bad("unknown-kind", {"kind": "alarm"}, "interlocks_kind_check"),
    bad("unknown-action", {"action": "stop"}, "interlocks_action_check"),
    bad("negative-hold", TRIP_HOLD | {"hold_ms": -1}, "interlocks_hold_ms_check"),
    bad("hold-over-an-hour", TRIP_HOLD | {"hold_ms": 3_600_001}, "interlocks_hold_ms_check"),
    bad("permit-without-targets", {"targets": []}, "interlocks_permit_has_targets"),
    bad("trip-with-targets", {"kind": "trip"}, "interlocks_trip_has_no_targets"),
    bad("permit-with-hold", {"hold_ms": 100}, "interlocks_permit_has_no_hold"),
    bad(
        "target-in-capitals",
        {"targets": ["Valve_1.state"]},
        "interlocks_targets_check",
        r"targets\[1\]: 'Valve_1.state' is not a parameter key",
    ),
    bad("empty-target", {"targets": ["valve_1.state", ""]}, "interlocks_targets_check", r"targets\[2\]: '' is not"),
    bad("null-target", {"targets": [None]}, "interlocks_targets_check", r"targets\[1\]: null is not"),
    bad(
        "conditions-an-object",
        {"conditions": condition()},
        CONDITIONS,
        "must be a JSON array of conditions, got a JSON object",
    ),
    bad("no-conditions", {"conditions": []}, CONDITIONS, "1..32 conditions, got 0"),
    bad("33-conditions", {"conditions": [condition()] * 33}, CONDITIONS, "1..32 conditions, got 33"),
    bad(
        "condition-a-string",
        {"conditions": ["pressure < 1000"]},
        CONDITIONS,
        r"conditions\[0\]: a condition is an object",
    ),
    bad(
        "key-missing",
        {"conditions": [{"op": "lt", "value": 1}]},
        CONDITIONS,
        r"conditions\[0\]: key must be a parameter key.*got nothing",
    ),
    bad(
        "key-not-a-key",
        {"conditions": [condition(key="Pressure 1")]},
        CONDITIONS,
        r"key must be a parameter key.*got \"Pressure 1\"",
    ),
    bad(
        "key-a-pattern",
        {"conditions": [condition(key="pressure_gauge_*.pressure")]},
        CONDITIONS,
        "key must be a parameter key",
    ),
    bad(
        "op-missing",
        {"conditions": [{"key": "a.b", "value": 1}]},
        CONDITIONS,
        "op must be one of lt, le, gt, ge, eq, ne, between, outside, got nothing",
    ),
    bad("op-unknown", {"conditions": [condition(op="lte")]}, CONDITIONS, r"op must be one of .*got \"lte\""),
    bad(
        "value-missing",
        {"conditions": [{"key": "a.b", "op": "gt"}]},
        CONDITIONS,
        "value must be a number for op gt, got nothing",
    ),
    bad(
        "value-a-string",
        {"conditions": [condition(value="1000")]},
        CONDITIONS,
        r"value must be a number for op lt, got \"1000\"",
    ),
    bad(
        "value-null",
        {"conditions": [condition(op="eq", value=None)]},
        CONDITIONS,
        "value must be a number or a boolean for op eq, got null",
    ),
    bad(
        "ordering-a-boolean",
        {"conditions": [condition(op="ge", value=True)]},
        CONDITIONS,
        "value must be a number for op ge, got true",
    ),
    bad("value-beyond-float64", {"conditions": [condition(value=10**400)]}, CONDITIONS, "value is out of range"),
    bad(
        "between-without-high",
        {"conditions": [{"key": "a.b", "op": "between", "low": 0}]},
        CONDITIONS,
        "high must be a number for op between, got nothing",
    ),
    bad(
        "between-low-above-high",
        {"conditions": [condition(op="between", low=350, high=0)]},
        CONDITIONS,
        "low 350 is greater than high 0",
    ),
    bad(
        "outside-a-boolean",
        {"conditions": [condition(op="outside", low=False, high=True)]},
        CONDITIONS,
        "low must be a number for op outside, got false",
    ),
    bad(
        "between-with-a-value",
        {"conditions": [condition(op="between", value=1)]},
        CONDITIONS,
        "unknown field.* value for op between; allowed: key, op, low, high",
    ),
    bad("misspelt-field", {"conditions": [condition(vlaue=1)]}, CONDITIONS, "unknown field.* vlaue for op lt"),
    bad(
        "second-condition-bad",
        {"conditions": [condition(), condition(op="eq", value=[1])]},
        CONDITIONS,
        r"conditions\[1\]: value must be a number or a boolean for op eq, got \[1\]",
    ),
    bad(
        "no-such-machine",
        {"machine_id": "00000000-0000-4000-8000-00000000dead"},
        "interlocks_machine_id_fkey",
        error=asyncpg.ForeignKeyViolationError,
    ),
    bad("conditions-null", {"conditions": None}, "", error=asyncpg.NotNullViolationError),
]


@pytest.mark.parametrize(("changes", "error", "constraint", "message"), BAD_RULES)
async def test_a_malformed_rule_is_refused_naming_the_rule_it_breaks(
    db: asyncpg.Connection, changes: dict[str, Any], error: type[asyncpg.PostgresError], constraint: str, message: str
) -> None:
    rule = PERMIT | changes
    before = await db.fetchval("select count(*) from public.interlocks")
    with pytest.raises(error) as caught:
        await insert(db, rule, machine_id=rule.get("machine_id", SEED_MACHINE_ID))
    if constraint:
        assert caught.value.constraint_name == constraint
    assert re.search(message, str(caught.value)), str(caught.value)
    assert await db.fetchval("select count(*) from public.interlocks") == before


GOOD_RULES: dict[str, dict[str, Any]] = {
    "permit": PERMIT,
    "trip": TRIP,
    "every-op": TRIP
    | {
        "conditions": [
            condition(op="lt", value=-1.5),
            condition(op="le", value=0),
            condition(op="gt", value=1e-3),
            condition(op="ge", value=10**308),
            condition(op="eq", value=False),
            condition(op="ne", value=3),
            condition(op="between", low=-50, high=450),
            condition(op="outside", low=1, high=1),
        ]
    },
    "patterns": PERMIT | {"targets": ["valve_*.state", "mfc_?.flow_sp", "valve_[!3].state", "precursor_[1-6]_x"]},
    "longest-name-and-hold": TRIP | {"name": "x" * 80, "hold_ms": 3_600_000, "conditions": [condition()] * 32},
    "disabled": PERMIT | {"enabled": False},
}


@pytest.mark.parametrize("rule", GOOD_RULES.values(), ids=list(GOOD_RULES))
async def test_a_sound_rule_is_stored_as_given(db: asyncpg.Connection, rule: dict[str, Any]) -> None:
    stored = await insert(db, rule)
    if "enabled" in rule:
        await db.execute("update public.interlocks set enabled = $2 where id = $1", stored["id"], rule["enabled"])
    row = await db.fetchrow("select * from public.interlocks where id = $1", stored["id"])
    assert {k: row[k] for k in rule} == rule


async def test_defaults_and_updated_at(db: asyncpg.Connection) -> None:
    row = await db.fetchrow(
        "insert into public.interlocks (machine_id, name, kind, conditions) "
        'values ($1, \'minimal\', \'trip\', \'[{"key": "a.b", "op": "le", "value": 1}]\') returning *',
        SEED_MACHINE_ID,
    )
    assert (row["enabled"], row["targets"], row["hold_ms"], row["action"]) == (True, [], 0, "abort")
    assert row["created_at"] == row["updated_at"]
    await asyncio.sleep(0.01)
    updated = await db.fetchval(
        "update public.interlocks set hold_ms = 10 where id = $1 returning updated_at", row["id"]
    )
    assert updated > row["updated_at"]


async def test_a_rule_stays_with_its_machine_and_goes_with_it(db: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.CheckViolationError, match="machine_id is immutable"):
        await db.execute("update public.interlocks set machine_id = $2 where id = $1", SEED_INTERLOCK, OTHER)
    await insert(db, TRIP, machine_id=OTHER)
    await db.execute("delete from public.machines where id = $1", OTHER)
    assert await db.fetchval("select count(*) from public.interlocks where machine_id = $1", OTHER) == 0


async def test_the_same_name_on_two_machines_is_fine(db: asyncpg.Connection) -> None:
    await insert(db, PERMIT | {"name": "pulse-needs-vacuum"}, machine_id=OTHER)


# -- who may do what ------------------------------------------------------------------------------

GRANTS = {
    "anon": set(),
    "authenticated": {"SELECT", "INSERT", "UPDATE", "DELETE"},
    "ald_agent": {"SELECT"},
    "service_role": {"SELECT", "INSERT", "UPDATE", "DELETE"},
}


@pytest.mark.parametrize(("role", "privileges"), GRANTS.items(), ids=list(GRANTS))
async def test_table_privileges_are_exactly_these(db: asyncpg.Connection, role: str, privileges: set[str]) -> None:
    granted = {
        p
        for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
        if await db.fetchval("select has_table_privilege($1, 'public.interlocks', $2)", role, p)
    }
    assert granted == privileges
    assert await db.fetchval("select relrowsecurity from pg_class where oid = 'public.interlocks'::regclass")


@pytest.fixture
async def dashboard(clean_db: BackgroundStack, db: asyncpg.Connection) -> AsyncIterator[CloudClient]:
    key = make_api_key("authenticated", secret=clean_db.jwt_secret, claims={"sub": "engineer-1"})
    async with CloudClient(clean_db.url, key) as cloud:
        yield cloud


@pytest.fixture
async def agent(clean_db: BackgroundStack, db: asyncpg.Connection) -> AsyncIterator[CloudClient]:
    async with CloudClient(clean_db.url, make_machine_key(SEED_MACHINE_ID, secret=clean_db.jwt_secret)) as cloud:
        yield cloud


async def refused(call: object) -> CloudPermanentError:
    with pytest.raises(CloudPermanentError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def test_the_dashboard_reads_adds_edits_and_deletes_rules(dashboard: CloudClient, db: asyncpg.Connection) -> None:
    assert len(await dashboard.select("interlocks", eq={"machine_id": SEED_MACHINE_ID})) == 5
    added = await dashboard.insert("interlocks", PERMIT | {"machine_id": OTHER})
    assert added["kind"] == "permit" and added["conditions"] == PERMIT["conditions"]
    await dashboard.update("interlocks", {"enabled": False, "description": "chiller out"}, match={"id": added["id"]})
    assert await db.fetchval("select enabled from public.interlocks where id = $1", added["id"]) is False
    await dashboard.client.table("interlocks").delete().eq("id", added["id"]).execute()
    assert await db.fetchval("select count(*) from public.interlocks where id = $1", added["id"]) == 0


async def test_the_dashboard_is_told_why_a_rule_is_refused(dashboard: CloudClient) -> None:
    bad = PERMIT | {"machine_id": SEED_MACHINE_ID, "conditions": [condition(op="between", low=9, high=1)]}
    error = await refused(dashboard.insert("interlocks", bad))
    assert error.code == "23514"
    assert "conditions[0]: low 9 is greater than high 1" in str(error)


async def test_the_dashboard_can_validate_a_rule_before_saving_it(dashboard: CloudClient) -> None:
    assert await dashboard.rpc("check_interlock_conditions", {"p_conditions": TRIP["conditions"]}) is True
    assert await dashboard.rpc("check_interlock_targets", {"p_targets": PERMIT["targets"]}) is True
    error = await refused(dashboard.rpc("check_interlock_conditions", {"p_conditions": [condition(op="lte")]}))
    assert error.code == "23514" and "op must be one of" in str(error)


async def test_the_agent_reads_its_machines_rules_only_and_cannot_change_any(
    agent: CloudClient, db: asyncpg.Connection
) -> None:
    foreign = await insert(db, TRIP, machine_id=OTHER)
    rules = await agent.select("interlocks")
    assert {r["machine_id"] for r in rules} == {SEED_MACHINE_ID} and len(rules) == 5
    assert await agent.select("interlocks", eq={"id": str(foreign["id"])}) == []

    error = await refused(agent.insert("interlocks", PERMIT | {"machine_id": SEED_MACHINE_ID}))
    assert error.code == "42501"
    error = await refused(agent.update("interlocks", {"enabled": False}, match={"id": SEED_INTERLOCK}))
    assert error.code == "42501"
    with pytest.raises(Exception, match=r"42501|permission denied"):
        await agent.client.table("interlocks").delete().eq("id", SEED_INTERLOCK).execute()
    assert await db.fetchval("select enabled from public.interlocks where id = $1", SEED_INTERLOCK) is True


async def test_anon_sees_no_rule(clean_db: BackgroundStack) -> None:
    async with CloudClient(clean_db.url, clean_db.anon_key) as anon:
        error = await refused(anon.select("interlocks"))
    assert error.code == "42501"


# -- realtime -------------------------------------------------------------------------------------


async def test_rules_are_published_with_their_old_rows(db: asyncpg.Connection) -> None:
    assert await db.fetchval(
        "select count(*) from pg_publication_tables where pubname = 'supabase_realtime' and tablename = 'interlocks'"
    )
    assert await db.fetchval("select relreplident::text from pg_class where oid = 'public.interlocks'::regclass") == "f"


async def test_the_agent_hears_every_change_to_its_machines_rules_and_no_other(
    agent: CloudClient, db: asyncpg.Connection
) -> None:
    """Insert, update and delete of its machine's rules arrive (a DELETE carries only the id on an RLS table:
    the agent reloads its rules on any event); another machine's new rule does not."""
    events: list[dict[str, Any]] = []
    watch = await agent.watch(Watch("interlocks", f"machine_id=eq.{SEED_MACHINE_ID}", events.append))
    await asyncio.wait_for(watch.ready.wait(), 10)
    await insert(db, TRIP, machine_id=OTHER)
    own = await insert(db, TRIP)
    await eventually(lambda: len(events) >= 1, within=10)
    await db.execute("update public.interlocks set hold_ms = 900 where id = $1", own["id"])
    await eventually(lambda: len(events) >= 2, within=10)
    await db.execute("delete from public.interlocks where id = $1", own["id"])
    await eventually(lambda: len(events) >= 3, within=10)
    await asyncio.sleep(0.3)  # anything else had its chance to arrive too
    assert [e["type"] for e in events] == ["INSERT", "UPDATE", "DELETE"]
    assert events[0]["record"]["machine_id"] == SEED_MACHINE_ID and events[1]["record"]["hold_ms"] == 900
    assert events[2]["old_record"]["id"] == str(own["id"])
