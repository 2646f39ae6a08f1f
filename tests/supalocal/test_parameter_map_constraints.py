"""public.parameters refuses every register map the agent would refuse (issue 11), with the rule named.

Against the session stack's PostgreSQL with our migrations (``clean_db``). Each bad row is refused by the
constraint that states its rule; the rows an engineer needs (the last addresses of a table, neighbours, the
same address in two tables or on two machines) are accepted; and a property test compares the database
with the agent's own map validation (agent/plc/registers.py) on generated maps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.errors import MapError
from agent.plc.registers import map_from_rows
from supalocal.stack import BackgroundStack
from supalocal.testing import SEED_MACHINE_ID

MACHINE = "00000000-0000-4000-8000-0000000000aa"
OTHER = "00000000-0000-4000-8000-0000000000bb"
COLUMNS = (
    "key",
    "data_type",
    "register",
    "address",
    "write_address",
    "writable",
    "scale",
    "offset",
    "min_value",
    "max_value",
    "deadband",
)
INSERT = (
    "insert into public.parameters (machine_id, component, name, key, data_type, register, address, "
    'write_address, writable, scale, "offset", min_value, max_value, deadband) '
    "values ($1, 'c', 'n', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
)
Row = Mapping[str, Any]


def row(key: str, data_type: str, register: str, address: int, write_address: int | None = None, **extra: Any) -> Row:
    """A parameter row; writable follows write_address unless given."""
    values: dict[str, Any] = {
        "key": key,
        "data_type": data_type,
        "register": register,
        "address": address,
        "write_address": write_address,
        "writable": write_address is not None,
        "scale": 1.0,
        "offset": 0.0,
        "min_value": None,
        "max_value": None,
        "deadband": 0.0,
    }
    return values | extra


async def insert(db: asyncpg.Connection, *rows: Row, machine_id: str = MACHINE) -> None:
    for r in rows:
        await db.execute(INSERT, machine_id, *(r[c] for c in COLUMNS))


@pytest.fixture
async def db(clean_db: BackgroundStack) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(clean_db.db_url)
    await conn.execute("insert into public.machines (id, name) values ($1, 'map test'), ($2, 'other')", MACHINE, OTHER)
    try:
        yield conn
    finally:
        await conn.close()


# -- each rule refuses its bad row ----------------------------------------------------------------

NEIGHBOURS = (
    row("gauge.pressure", "float32", "input", 100),  # input 100..101
    row("mfc.flow_sp", "float32", "holding", 200, 200),  # holding 200..201, written at 200..201
    row("valve.state", "bool", "coil", 10, 10),
    row("pump.running", "bool", "discrete_input", 10),
    row("heater.readback", "uint16", "holding", 300),  # read-only holding register
    row("mfc.flow", "float32", "input", 102, 400),  # reads input 102..103, written at holding 400..401
)


def bad(id: str, parameter: Row, constraint: str) -> Any:
    """A case: a parameter next to NEIGHBOURS, and the constraint that refuses it."""
    error = asyncpg.ExclusionViolationError if constraint.endswith("_overlap") else asyncpg.CheckViolationError
    return pytest.param(parameter, constraint, error, id=id)


BAD_ROWS = [
    # the incidents of issue 11
    bad("float32-at-65535", row("x.v", "float32", "input", 65535), "parameters_address_in_range"),
    bad("overlapping-addresses", row("x.v", "float32", "input", 101), "parameters_address_overlap"),
    bad(
        "write-address-on-read-only",
        row("x.v", "uint16", "input", 100, write_address=400, writable=False),
        "parameters_write_address_only_when_writable",
    ),
    # bounds, width-aware, for reads and writes
    bad("int32-at-65535", row("x.v", "int32", "holding", 65535), "parameters_address_in_range"),
    bad("uint32-at-65535", row("x.v", "uint32", "input", 65535), "parameters_address_in_range"),
    bad("coil-past-65535", row("x.v", "bool", "coil", 65536), "parameters_address_in_range"),
    bad("negative-address", row("x.v", "uint16", "input", -1), "parameters_address_in_range"),
    bad("float32-write-at-65535", row("x.v", "float32", "holding", 500, 65535), "parameters_write_address_in_range"),
    bad(
        "input-float32-write-at-65535", row("x.v", "float32", "input", 500, 65535), "parameters_write_address_in_range"
    ),
    bad("negative-write-address", row("x.v", "bool", "coil", 500, -1), "parameters_write_address_in_range"),
    bad(
        "writable-without-write-address",
        row("x.v", "float32", "holding", 500, writable=True),
        "parameters_writable_has_write_address",
    ),
    # numbers the agent cannot use
    bad("nan-scale", row("x.v", "uint16", "input", 500, scale=float("nan")), "parameters_numbers_are_finite"),
    bad("infinite-scale", row("x.v", "uint16", "input", 500, scale=float("inf")), "parameters_numbers_are_finite"),
    bad("infinite-offset", row("x.v", "uint16", "input", 500, offset=float("-inf")), "parameters_numbers_are_finite"),
    bad("nan-max-value", row("x.v", "uint16", "input", 500, max_value=float("nan")), "parameters_numbers_are_finite"),
    bad(
        "infinite-min-value",
        row("x.v", "uint16", "input", 500, min_value=float("-inf")),
        "parameters_numbers_are_finite",
    ),
    bad(
        "infinite-deadband", row("x.v", "uint16", "input", 500, deadband=float("inf")), "parameters_numbers_are_finite"
    ),
    # readings overlap in one table
    bad("same-input-address", row("x.v", "uint16", "input", 100), "parameters_address_overlap"),
    bad("float32-overlapping-from-below", row("x.v", "float32", "input", 99), "parameters_address_overlap"),
    bad("same-coil", row("x.v", "bool", "coil", 10), "parameters_address_overlap"),
    bad("same-discrete-input", row("x.v", "bool", "discrete_input", 10), "parameters_address_overlap"),
    bad("holding-read-over-another-write", row("x.v", "uint16", "holding", 401), "parameters_write_range_overlap"),
    # writes into another parameter's writes or readings, in the write table
    bad("write-over-another-write", row("x.v", "float32", "input", 500, 201), "parameters_write_range_overlap"),
    bad("write-over-read-only-holding", row("x.v", "uint16", "input", 500, 300), "parameters_write_range_overlap"),
    bad("bit-write-over-another-coil", row("x.v", "bool", "discrete_input", 20, 10), "parameters_write_range_overlap"),
    bad("write-over-readings-from-below", row("x.v", "float32", "holding", 600, 299), "parameters_write_range_overlap"),
]


@pytest.mark.parametrize(("bad", "constraint", "error"), BAD_ROWS)
async def test_a_bad_row_is_refused_by_the_rule_it_breaks(
    db: asyncpg.Connection, bad: Row, constraint: str, error: type[asyncpg.PostgresError]
) -> None:
    await insert(db, *NEIGHBOURS)
    with pytest.raises(error) as caught:
        await insert(db, bad)
    assert caught.value.constraint_name == constraint
    assert constraint in str(caught.value)
    assert await db.fetchval("select count(*) from public.parameters where machine_id = $1", MACHINE) == len(NEIGHBOURS)


async def test_a_change_that_widens_a_row_into_its_neighbour_is_refused(db: asyncpg.Connection) -> None:
    await insert(db, row("a.v", "uint16", "input", 0), row("b.v", "uint16", "input", 1))
    with pytest.raises(asyncpg.ExclusionViolationError, match="parameters_address_overlap"):
        await db.execute("update public.parameters set data_type = 'float32' where key = 'a.v'")
    with pytest.raises(asyncpg.CheckViolationError, match="parameters_write_address_only_when_writable"):
        await db.execute("update public.parameters set write_address = 900 where key = 'b.v'")


# -- what an engineer needs is accepted -----------------------------------------------------------

GOOD_MAPS = {
    "last-addresses-of-each-table": [
        row("a.v", "float32", "input", 65534),
        row("b.v", "uint32", "holding", 65534, 65534),
        row("c.v", "bool", "coil", 65535, 65535),
        row("d.v", "bool", "discrete_input", 65535),
        row("e.v", "uint16", "input", 65533),
        row("f.v", "bool", "holding", 65533, 65533),
    ],
    "neighbours-touching-not-overlapping": [
        row("a.v", "float32", "input", 0),
        row("b.v", "int32", "input", 2),
        row("c.v", "int16", "input", 4),
        row("d.v", "float32", "holding", 0, 0),
        row("e.v", "float32", "holding", 2, 2),
    ],
    "same-address-in-four-tables": [
        row("a.v", "uint16", "input", 7),
        row("b.v", "uint16", "holding", 7, 7),
        row("c.v", "bool", "coil", 7, 7),
        row("d.v", "bool", "discrete_input", 7),
    ],
    "written-elsewhere-than-read": [
        row("a.v", "float32", "input", 10, 20),  # reads input 10, writes holding 20
        row("b.v", "float32", "holding", 10),  # read-only holding 10: input 10 is another table
        row("c.v", "bool", "discrete_input", 5, 6),  # reads DI 5, writes coil 6
        row("d.v", "bool", "coil", 5, 5),
    ],
}


@pytest.mark.parametrize("rows", GOOD_MAPS.values(), ids=list(GOOD_MAPS))
async def test_a_sound_map_is_accepted(db: asyncpg.Connection, rows: list[Row]) -> None:
    map_from_rows(rows)  # the agent agrees
    await insert(db, *rows)
    assert await db.fetchval("select count(*) from public.parameters where machine_id = $1", MACHINE) == len(rows)


async def test_two_machines_may_use_the_same_addresses(db: asyncpg.Connection) -> None:
    await insert(db, *NEIGHBOURS)
    await insert(db, *NEIGHBOURS, machine_id=OTHER)


async def test_the_seed_map_satisfies_every_rule(db: asyncpg.Connection) -> None:
    rows = await db.fetch("select * from public.parameters where machine_id = $1", SEED_MACHINE_ID)
    assert len(map_from_rows([dict(r) for r in rows])) == len(rows) > 0
    constraints = {
        r["conname"]
        for r in await db.fetch(
            "select conname from pg_constraint where conrelid = 'public.parameters'::regclass and convalidated"
        )
    }
    assert {
        "parameters_address_in_range",
        "parameters_write_address_in_range",
        "parameters_write_address_only_when_writable",
        "parameters_numbers_are_finite",
        "parameters_address_overlap",
        "parameters_write_range_overlap",
    } <= constraints


# -- the database and the agent refuse the same maps ----------------------------------------------

ADDRESSES = st.sampled_from([-1, 0, 1, 2, 3, 65533, 65534, 65535, 65536])
TYPES = st.sampled_from(["bool", "int16", "uint16", "int32", "uint32", "float32"])
REGISTERS = st.sampled_from(["coil", "discrete_input", "holding", "input"])


@st.composite
def maps(draw: st.DrawFn) -> list[Row]:
    """Two to four parameters crowded onto a few addresses at both ends of the tables."""
    count = draw(st.integers(2, 4))
    rows = []
    for n in range(count):
        register = draw(REGISTERS)
        data_type = "bool" if register in ("coil", "discrete_input") and draw(st.booleans()) else draw(TYPES)
        write_address = draw(st.none() | ADDRESSES)
        writable = draw(st.booleans()) if draw(st.integers(0, 9)) == 0 else write_address is not None
        rows.append(row(f"p{n}.v", data_type, register, draw(ADDRESSES), write_address, writable=writable))
    return rows


def agent_refuses(rows: list[Row]) -> bool:
    try:
        map_from_rows(rows)
    except MapError:
        return True
    return False


async def database_refuses(db: asyncpg.Connection, rows: list[Row]) -> bool:
    transaction = db.transaction()
    await transaction.start()
    try:
        await insert(db, *rows)
    except asyncpg.IntegrityConstraintViolationError:
        return True
    finally:
        await transaction.rollback()
    return False


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=maps())
async def test_the_database_refuses_exactly_the_maps_the_agent_refuses(db: asyncpg.Connection, rows: list[Row]) -> None:
    assert await database_refuses(db, rows) == agent_refuses(rows), rows
