"""parameter_history maintenance on the real local stack (migrations applied, no pg_cron there): partitions
are prepared ahead, retention drops only whole monthly partitions older than the horizon, and the calls the
runbook's monthly job makes work as the service role only."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from supalocal.testing import SEED_MACHINE_ID


def month(offset: int) -> datetime:
    now = datetime.now(UTC)
    index = now.year * 12 + now.month - 1 + offset
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def name(when: datetime) -> str:
    return f"parameter_history_y{when:%Y}m{when:%m}"


async def partitions(db: asyncpg.Connection) -> set[str]:
    rows = await db.fetch(
        "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid "
        "where i.inhparent = 'public.parameter_history'::regclass"
    )
    return {r["relname"] for r in rows}


async def test_retention_drops_only_partitions_older_than_the_horizon(db: asyncpg.Connection) -> None:
    old, kept = month(-30), month(-23)
    for when in (old, kept):
        await db.execute("select public.create_parameter_history_partition($1::date)", when.date())
        await db.execute(
            "insert into parameter_history (machine_id, ts, values) values ($1, $2, '{}')", SEED_MACHINE_ID, when
        )
    dropped = [r[0] for r in await db.fetch("select public.drop_parameter_history_partitions(24)")]
    assert dropped == [name(old)]
    left = await partitions(db)
    assert name(kept) in left and name(old) not in left and "parameter_history_default" in left
    assert await db.fetchval("select count(*) from parameter_history where ts = $1", kept) == 1
    assert [r[0] for r in await db.fetch("select public.drop_parameter_history_partitions(24)")] == []  # idempotent
    await db.execute("select public.drop_parameter_history_partitions(23)")  # keeps this month and 23 before
    assert name(kept) in await partitions(db)
    await db.execute("select public.drop_parameter_history_partitions(22)")
    assert name(kept) not in await partitions(db)


async def test_the_monthly_job_prepares_the_next_months(db: asyncpg.Connection) -> None:
    made = [r[0] for r in await db.fetch("select public.ensure_parameter_history_partitions(2)")]
    assert made == [name(month(0)), name(month(1)), name(month(2))]
    assert {name(month(i)) for i in range(3)} <= await partitions(db)


@pytest.mark.parametrize("horizon", [0, -1, None], ids=["zero", "negative", "null"])
async def test_a_horizon_below_one_month_is_refused(db: asyncpg.Connection, horizon: int | None) -> None:
    with pytest.raises(asyncpg.RaiseError, match="p_keep_months must be at least 1"):
        await db.fetch("select public.drop_parameter_history_partitions($1)", horizon)


async def test_only_the_service_role_may_drop(db: asyncpg.Connection) -> None:
    for role in ("anon", "authenticated", "ald_agent"):
        allowed = await db.fetchval(
            "select has_function_privilege($1, 'public.drop_parameter_history_partitions(integer)', 'execute')", role
        )
        assert not allowed, role
    assert await db.fetchval(
        "select has_function_privilege('service_role', 'public.drop_parameter_history_partitions(integer)', 'execute')"
    )
