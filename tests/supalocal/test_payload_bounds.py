"""Numbers in a command payload or a recipe step's config must fit 64 bits: refused at insert (migration
20261201160000), so a 5,001-digit number can never reach the agent — which cannot even decode it from JSON and
used to leave such a command `claimed` forever. Against the local stack's PostgreSQL, with raw SQL text so the
number arrives exactly as a dashboard would send it."""

from __future__ import annotations

import asyncpg
import pytest

from supalocal.testing import SEED_MACHINE_ID


@pytest.mark.parametrize(
    "number",
    ["1e400", "1" + "0" * 5000, "18446744073709551616", "-9223372036854775809", "-1e300"],
    ids=["1e400", "5001-digits", "uint64-max-plus-1", "int64-min-minus-1", "minus-1e300"],
)
async def test_a_command_with_a_number_beyond_64_bits_is_refused_at_insert(db: asyncpg.Connection, number: str) -> None:
    with pytest.raises(asyncpg.CheckViolationError, match="machine_commands_payload_numbers_fit"):
        await db.execute(
            "insert into machine_commands (machine_id, type, payload) "
            f'values ($1, \'set_parameter\', \'{{"key": "mfc_1.flow_sp", "value": {number}}}\'::jsonb)',
            SEED_MACHINE_ID,
        )


@pytest.mark.parametrize(
    "number",
    ["12.5", "0", "18446744073709551615", "-9223372036854775808", "1e-300"],
    ids=["decimal", "zero", "uint64-max", "int64-min", "tiny"],
)
async def test_a_command_with_ordinary_numbers_is_accepted(db: asyncpg.Connection, number: str) -> None:
    await db.execute(
        "insert into machine_commands (machine_id, type, payload) "
        f'values ($1, \'set_parameter\', \'{{"key": "mfc_1.flow_sp", "value": {number}}}\'::jsonb)',
        SEED_MACHINE_ID,
    )


async def test_a_recipe_step_with_a_huge_number_anywhere_in_its_config_is_refused(db: asyncpg.Connection) -> None:
    recipe_id = await db.fetchval("insert into recipes (name, version) values ('huge', 1) returning id")
    with pytest.raises(asyncpg.CheckViolationError, match="recipe_steps_config_numbers_fit"):
        await db.execute(
            "insert into recipe_steps (recipe_id, sequence, type, name, config) "
            "values ($1, 0, 'parameter', 'deep', "
            '\'{"parameter": "mfc_1.flow_sp", "value": 1, "wait": {"tolerance": 1e400, "timeout_ms": 1}}\'::jsonb)',
            recipe_id,
        )
