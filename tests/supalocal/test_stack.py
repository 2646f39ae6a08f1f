"""The Stack as a whole: starts fast on free ports, serves the API, resets, and leaves nothing behind."""

from __future__ import annotations

import time

import asyncpg
import httpx
import pytest

from supalocal.errors import StackError
from supalocal.postgres import ServerState
from supalocal.stack import BackgroundStack, Stack, StackState

ACCEPTANCE_START_S = 10.0
SEED_MACHINE_ID = "00000000-0000-4000-8000-000000000001"


def _headers(key: str) -> dict[str, str]:
    return {"apikey": key, "Authorization": f"Bearer {key}"}


async def test_starts_fast_serves_the_api_and_resets() -> None:
    began = time.monotonic()
    async with Stack() as stack:
        assert time.monotonic() - began < ACCEPTANCE_START_S
        assert stack.url.startswith("http://127.0.0.1:") and stack.port != stack.db_port
        async with httpx.AsyncClient(base_url=stack.url) as client:
            machines = await client.get("/rest/v1/machines?select=id", headers=_headers(stack.service_key))
            assert machines.status_code == 200 and machines.json() == [{"id": SEED_MACHINE_ID}]
            denied = await client.get("/rest/v1/machines?select=id", headers=_headers(stack.anon_key))
            assert denied.status_code in (401, 403)

            conn = await asyncpg.connect(stack.db_url)
            try:
                await conn.execute("delete from public.recipes")
            finally:
                await conn.close()
            await stack.reset()
            recipes = await client.get("/rest/v1/recipes?select=id", headers=_headers(stack.service_key))
            assert recipes.status_code == 200 and len(recipes.json()) == 2
        postgres = stack.postgres
    assert stack.state is StackState.CLOSED
    assert postgres.state is ServerState.STOPPED
    with pytest.raises(StackError):
        _ = stack.url


async def test_a_failure_inside_the_block_still_tears_everything_down() -> None:
    stack = Stack()
    with pytest.raises(ZeroDivisionError):
        async with stack:
            root = stack.postgres.root
            _ = 1 / 0
    assert not root.exists()
    with pytest.raises(StackError, match="starts once"):
        await stack.start()


def test_background_stacks_side_by_side_from_sync_code() -> None:
    with BackgroundStack() as one, BackgroundStack() as two:
        assert one.url != two.url and one.db_url != two.db_url
        assert one.env()["SUPABASE_URL"] == one.url
        one.clean()
        response = httpx.get(f"{two.url}/rest/v1/recipes?select=name", headers=_headers(two.service_key))
        assert response.status_code == 200 and len(response.json()) == 2
        roots = [one.stack.postgres.root, two.stack.postgres.root]
    assert not any(root.exists() for root in roots)
