"""seed.sql: the register map agrees with the PLC layer's default map; the recipes are sound."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import asyncpg
import pytest

from supalocal.stack import BackgroundStack
from supalocal.testing import SEED_MACHINE_ID

ROOT = Path(__file__).resolve().parents[2]
AL2O3_RECIPE = "00000000-0000-4000-8000-000000000101"
LAMINATE_RECIPE = "00000000-0000-4000-8000-000000000102"
VALVE_COUNT = 6


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_seed", ROOT / "scripts" / "gen_seed.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_seed", module)
    spec.loader.exec_module(module)
    return module


gen_seed = _load_generator()


@pytest.fixture
async def db(clean_db: BackgroundStack) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(clean_db.db_url)
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    try:
        yield conn
    finally:
        await conn.close()


def test_seed_parameters_are_generated_from_the_default_map() -> None:
    seed = gen_seed.DEFAULT_SEED.read_text(encoding="utf-8")
    assert gen_seed.generate_seed(seed, gen_seed.read_map()) == seed, "run scripts/gen_seed.py"


def test_check_mode_flags_a_stale_seed(tmp_path: Path) -> None:
    stale = tmp_path / "seed.sql"
    shutil.copy(gen_seed.DEFAULT_SEED, stale)
    assert gen_seed.main(["--check", "--seed", str(stale)]) == 0
    stale.write_text(stale.read_text().replace("'valve_1.state'", "'valve_1.stale'"))
    assert gen_seed.main(["--check", "--seed", str(stale)]) == gen_seed.EXIT_OUT_OF_DATE
    assert gen_seed.main(["--seed", str(stale)]) == 0
    assert gen_seed.main(["--check", "--seed", str(stale)]) == 0


@pytest.mark.parametrize(
    ("column", "raw", "sql"),
    [
        ("unit", "", "null"),
        ("unit", "°C", "'°C'"),
        ("name", "Operator's valve", "'Operator''s valve'"),
        ("address", "2400", "2400"),
        ("write_address", "", "null"),
        ("scale", "0.1", "0.1"),
        ("scale", "1.0", "1"),
        ("offset", "-273.15", "-273.15"),
        ("writable", "TRUE", "true"),
        ("logged", "false", "false"),
    ],
    ids=lambda v: repr(v),
)
def test_values_render_as_sql(column: str, raw: str, sql: str) -> None:
    assert gen_seed._sql_value(column, raw, line=1) == sql


@pytest.mark.parametrize(
    ("column", "raw"),
    [("name", ""), ("address", "-1"), ("address", "0x10"), ("scale", "nan"), ("deadband", "inf"), ("logged", "yes")],
    ids=["required", "negative-address", "hex-address", "nan", "inf", "bad-bool"],
)
def test_bad_map_values_are_rejected(column: str, raw: str) -> None:
    with pytest.raises(gen_seed.MapError, match=f"line 7: {column}"):
        gen_seed._sql_value(column, raw, line=7)


def test_a_wrong_header_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "map.csv"
    bad.write_text("key,name\nvalve_1.state,Valve\n")
    with pytest.raises(gen_seed.MapError, match="header"):
        gen_seed.read_map(bad)


async def test_database_parameters_equal_the_map(db: asyncpg.Connection) -> None:
    rows = {
        r["key"]: r for r in await db.fetch("select * from public.parameters where machine_id = $1", SEED_MACHINE_ID)
    }
    csv_rows = gen_seed.read_map()
    assert set(rows) == {r["key"] for r in csv_rows}
    for expected in csv_rows:
        row = rows[expected["key"]]
        assert row["id"].hex == gen_seed.parameter_id(expected["key"]).replace("-", "")
        assert (row["data_type"], row["register"], row["address"]) == (
            expected["data_type"],
            expected["register"],
            int(expected["address"]),
        )
        assert row["write_address"] == (int(expected["write_address"]) if expected["write_address"] else None)
        assert row["scale"] == float(expected["scale"]) and row["offset"] == float(expected["offset"])
        assert (row["writable"], row["logged"]) == (expected["writable"] == "true", expected["logged"] == "true")


def _expanded_steps(steps: list[asyncpg.Record], parent: object = None) -> int:
    """How many leaf steps a recipe runs: loops multiply their children (the compiler's job)."""
    total = 0
    for step in sorted((s for s in steps if s["parent_step_id"] == parent), key=lambda s: s["sequence"]):
        if step["type"] == "loop":
            total += step["config"]["count"] * _expanded_steps(steps, step["id"])
        else:
            total += 1
    return total


def _depth(steps: list[asyncpg.Record], step: asyncpg.Record) -> int:
    by_id = {s["id"]: s for s in steps}
    depth = 0
    while step["parent_step_id"] is not None:
        step = by_id[step["parent_step_id"]]
        depth += 1
    return depth


async def test_recipes_are_realistic_and_refer_to_real_parameters(db: asyncpg.Connection) -> None:
    keys = {
        r["key"] for r in await db.fetch("select key from public.parameters where machine_id = $1", SEED_MACHINE_ID)
    }
    recipes = {str(r["id"]): r["name"] for r in await db.fetch("select id, name from public.recipes")}
    assert set(recipes) == {AL2O3_RECIPE, LAMINATE_RECIPE}
    steps = {rid: await db.fetch("select * from public.recipe_steps where recipe_id = $1", rid) for rid in recipes}

    al2o3 = steps[AL2O3_RECIPE]
    loops = [s for s in al2o3 if s["type"] == "loop"]
    assert [s["config"]["count"] for s in loops] == [100]
    assert _expanded_steps(al2o3) == 3 + 100 * 4 + 2

    laminate = steps[LAMINATE_RECIPE]
    assert max(_depth(laminate, s) for s in laminate if s["type"] == "loop") == 1, "a loop nested in a loop"
    assert _expanded_steps(laminate) == 3 + 5 * (10 * 4 + 10 * 4) + 1

    for step in [*al2o3, *laminate]:
        if step["type"] == "parameter":
            assert step["config"]["parameter"] in keys
        if step["type"] == "valve":
            assert 1 <= step["config"]["valve"] <= VALVE_COUNT
            assert f"valve_{step['config']['valve']}.state" in keys


SEED_INTERLOCKS = {
    "pulse-needs-vacuum": ("permit", ["valve_*.state"], 0),
    "pulse-needs-heaters-in-window": ("permit", ["valve_*.state"], 0),
    "flow-needs-n2": ("permit", ["mfc_1.flow_sp"], 0),
    "chamber-overpressure": ("trip", [], 2000),
    "chamber-overtemperature": ("trip", [], 0),
}


async def test_the_reference_reactor_has_its_interlocks(db: asyncpg.Connection) -> None:
    rows = await db.fetch("select * from public.interlocks where machine_id = $1", SEED_MACHINE_ID)
    assert {r["name"]: (r["kind"], r["targets"], r["hold_ms"]) for r in rows} == SEED_INTERLOCKS
    assert all(r["enabled"] and r["action"] == "abort" and r["description"] for r in rows)
    conditions = {r["name"]: r["conditions"] for r in rows}
    assert conditions["pulse-needs-vacuum"] == [
        {"key": "pressure_gauge_1.pressure", "op": "lt", "value": 1000},
        {"key": "vacuum_pump.running", "op": "eq", "value": True},
    ]
    assert conditions["chamber-overpressure"] == [{"key": "pressure_gauge_1.pressure", "op": "le", "value": 5000}]


async def test_seed_interlocks_name_real_parameters(db: asyncpg.Connection) -> None:
    """Every condition reads a parameter of the map; every permit guards at least one writable parameter."""
    parameters = await db.fetch("select key, writable from public.parameters where machine_id = $1", SEED_MACHINE_ID)
    keys = {p["key"] for p in parameters}
    writable = [p["key"] for p in parameters if p["writable"]]
    for rule in await db.fetch("select * from public.interlocks where machine_id = $1", SEED_MACHINE_ID):
        assert {c["key"] for c in rule["conditions"]} <= keys, rule["name"]
        for pattern in rule["targets"]:
            assert fnmatch.filter(writable, pattern), f"{rule['name']}: {pattern} guards nothing"
    assert sorted(fnmatch.filter(writable, "valve_*.state")) == [f"valve_{n}.state" for n in range(1, VALVE_COUNT + 1)]


async def test_seed_alarm_limits_are_usable_and_name_real_parameters(db: asyncpg.Connection) -> None:
    """The agent accepts the seed's limits as they are, each on a parameter of the map, below the trips."""
    from agent.alarms import AlarmKind, parse_alarm_limits

    rows = [dict(r) for r in await db.fetch("select * from public.alarm_limits where machine_id = $1", SEED_MACHINE_ID)]
    limits, problems = parse_alarm_limits(rows)
    assert problems == []
    parameters = await db.fetch("select key from public.parameters where machine_id = $1", SEED_MACHINE_ID)
    keys = {r["key"] for r in parameters}
    assert set(limits.keys()) <= keys
    assert {"chamber_heater.temperature", "pressure_gauge_1.pressure", "precursor_1_heater.temperature"} <= keys
    chamber = limits.get("chamber_heater.temperature", AlarmKind.HIGH_HIGH)
    pressure = limits.get("pressure_gauge_1.pressure", AlarmKind.HIGH_HIGH)
    assert chamber is not None and chamber.threshold < 380  # warned before the overtemperature trip
    assert pressure is not None and pressure.threshold < 5000  # and before the overpressure trip
