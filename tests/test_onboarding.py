"""Onboarding a machine (agent/onboarding.py): the map as `parameters` rows, registration against the real
local stack (idempotent by serial number and by key), the start-up existence check, and the machine key."""

from __future__ import annotations

import uuid
from dataclasses import replace

import asyncpg
import pytest

from agent.cloud import CloudClient
from agent.errors import ConfigError
from agent.onboarding import machine_key, parameter_rows, register_machine, require_machine
from agent.plc import RegisterMap, load_default_map
from supalocal.stack import BackgroundStack
from supalocal.testing import SEED_MACHINE_ID

MACHINE = "11111111-1111-4111-8111-111111111111"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("valve_1.state", {"data_type": "bool", "register": "coil", "address": 15, "write_address": 15,
                           "unit": None, "writable": True, "min_value": None}),
        ("pressure_gauge_1.pressure", {"data_type": "float32", "register": "input", "address": 2060,
                                       "write_address": None, "unit": "Pa", "writable": False, "max_value": 100000}),
    ],
    ids=["coil-without-unit-is-null", "input-float-with-unit-and-range"],
)  # fmt: skip
def test_a_parameter_becomes_a_row_without_an_id(key: str, expected: dict[str, object]) -> None:
    (row,) = [r for r in parameter_rows(load_default_map(), machine_id=MACHINE) if r["key"] == key]
    assert "id" not in row  # an upsert keeps the existing id: parameter_history points at it
    assert row["machine_id"] == MACHINE
    assert {k: row[k] for k in expected} == expected


def test_rows_are_in_key_order_and_leave_the_map_untouched() -> None:
    register_map = load_default_map()
    before = list(register_map)
    keys = [r["key"] for r in parameter_rows(register_map, machine_id=MACHINE)]
    assert keys == sorted(register_map.keys()) and list(register_map) == before


async def _counts(db_url: str, serial: str) -> tuple[int, int]:
    conn = await asyncpg.connect(db_url)
    try:
        machines = await conn.fetchval("select count(*) from machines where serial_number = $1", serial)
        params = await conn.fetchval(
            "select count(*) from parameters p join machines m on m.id = p.machine_id where m.serial_number = $1",
            serial,
        )
        return int(machines), int(params)
    finally:
        await conn.close()


async def test_register_is_idempotent_by_serial_and_by_key(clean_db: BackgroundStack) -> None:
    register_map = load_default_map()
    async with CloudClient(clean_db.url, clean_db.service_key) as cloud:
        first = await register_machine(cloud, name="ALD tool 2", serial="ALD-0002", register_map=register_map)
        ids = {r["key"]: r["id"] for r in await cloud.load_parameters(first.machine_id)}
        again = await register_machine(cloud, name="ALD tool 2 (bay 3)", serial="ALD-0002", register_map=register_map)
        (machine,) = await cloud.select("machines", eq={"id": first.machine_id})
        ids_again = {r["key"]: r["id"] for r in await cloud.load_parameters(first.machine_id)}
    assert first.created and len(first.added) == len(register_map) and first.updated == ()
    assert (again.machine_id, again.created, again.added) == (first.machine_id, False, ())
    assert len(again.updated) == len(register_map) and again.unmapped == ()
    assert machine["name"] == "ALD tool 2 (bay 3)"
    assert ids_again == ids  # rows updated in place, never replaced
    assert await _counts(clean_db.db_url, "ALD-0002") == (1, len(register_map))


async def test_an_edited_map_updates_rows_and_reports_keys_it_no_longer_has(clean_db: BackgroundStack) -> None:
    full = load_default_map()
    dropped = "valve_6.state"
    edited = RegisterMap.build(
        replace(p, scale=0.5) if p.key == "pressure_gauge_1.pressure" else p for p in full if p.key != dropped
    )
    async with CloudClient(clean_db.url, clean_db.service_key) as cloud:
        await register_machine(cloud, name="tool 3", serial="ALD-0003", register_map=full)
        result = await register_machine(cloud, name="tool 3", serial="ALD-0003", register_map=edited)
        rows = {r["key"]: r for r in await cloud.load_parameters(result.machine_id)}
    assert result.unmapped == (dropped,) and dropped in rows  # reported, not deleted (its history stays)
    assert rows["pressure_gauge_1.pressure"]["scale"] == 0.5


async def test_require_machine_names_the_machine(clean_db: BackgroundStack) -> None:
    unknown = str(uuid.uuid4())
    async with CloudClient(clean_db.url, clean_db.service_key) as cloud:
        assert await require_machine(cloud, SEED_MACHINE_ID) == "ALD reference reactor"
        with pytest.raises(ConfigError) as refused:
            await require_machine(cloud, unknown)
    assert str(refused.value).startswith(f"MACHINE_ID: machine {unknown} does not exist in Supabase; register it")
    assert "\n" not in str(refused.value)


async def test_an_unreachable_supabase_does_not_refuse_the_start(unused_tcp_port: int) -> None:
    async with CloudClient(f"http://127.0.0.1:{unused_tcp_port}", "key", timeout_s=1) as cloud:
        assert await require_machine(cloud, SEED_MACHINE_ID) is None


async def test_the_machine_key_acts_for_that_machine_only(clean_db: BackgroundStack) -> None:
    async with CloudClient(clean_db.url, clean_db.service_key) as cloud:
        result = await register_machine(cloud, name="tool 4", serial="ALD-0004", register_map=load_default_map())
    key = machine_key(result.machine_id, secret=clean_db.jwt_secret)
    async with CloudClient(clean_db.url, key) as scoped:
        seen = [row["id"] for row in await scoped.select("machines", columns="id")]
        assert await require_machine(scoped, result.machine_id) == "tool 4"
        with pytest.raises(ConfigError):
            await require_machine(scoped, SEED_MACHINE_ID)  # another machine's row is invisible to this key
    assert seen == [result.machine_id]
