"""The cloud client's REST calls against the real local stack: each waits for the agent's quiet gate first."""

from __future__ import annotations

import asyncio

from agent.cloud import CloudClient
from supalocal.stack import BackgroundStack
from supalocal.testing import SEED_MACHINE_ID


async def test_every_rest_call_waits_for_the_quiet_gate_before_it_is_sent(clean_db: BackgroundStack) -> None:
    """The lease, the intake's polls and the writes must not build and send a request inside a PLC read: the
    agent hands the sampler's `wait_idle` to the client, which awaits it before each call."""
    gate = asyncio.Event()
    waits: list[str] = []

    async def quiet() -> None:
        waits.append("wait")
        await gate.wait()

    async with CloudClient(clean_db.url, clean_db.service_key) as cloud:
        cloud.quiet = quiet
        call = asyncio.create_task(cloud.select("machines", columns="id", eq={"id": SEED_MACHINE_ID}))
        await asyncio.sleep(0.2)
        assert waits == ["wait"] and not call.done()  # held at the gate: nothing sent yet
        gate.set()
        rows = await call
        assert [r["id"] for r in rows] == [SEED_MACHINE_ID]
        await cloud.update("machines", {"name": "renamed"}, match={"id": SEED_MACHINE_ID})
        assert waits == ["wait", "wait"]
