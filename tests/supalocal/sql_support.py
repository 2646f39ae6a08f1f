"""SQL run straight on the local stack's PostgreSQL from a synchronous test (the official sync client's tests)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg


def run_sql(stack: Any, sql: str) -> None:
    """Run `sql` (one or more statements) as the superuser, in a fresh connection."""

    async def execute() -> None:
        conn = await asyncpg.connect(stack.db_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(execute())
