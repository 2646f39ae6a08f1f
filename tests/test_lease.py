"""The single-writer lease against the real stack: one holder, standby takeover, fencing, losing it in time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from agent.cloud import CloudClient
from agent.safety import Lease, LeaseRole
from supalocal.stack import BackgroundStack
from supalocal.testing import SEED_MACHINE_ID
from tests.support.poll import eventually
from tests.support.proxy import TcpProxy


@pytest.fixture
async def cloud(clean_db: BackgroundStack) -> AsyncIterator[CloudClient]:
    async with CloudClient(clean_db.url, clean_db.service_key) as client:
        yield client


@contextlib.asynccontextmanager
async def running(lease: Lease) -> AsyncIterator[Lease]:
    task = asyncio.create_task(lease.run())
    try:
        yield lease
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def lease_for(cloud: CloudClient, holder: str, **kw: float) -> Lease:
    return Lease(cloud, machine_id=SEED_MACHINE_ID, holder=holder, **{"ttl_s": 6.0, "renew_s": 1.0} | kw)


async def test_one_holder_and_a_standby_that_takes_over_on_release(cloud: CloudClient) -> None:
    roles: list[tuple[str, LeaseRole]] = []
    blue = lease_for(cloud, "blue", ttl_s=6.0)
    green = lease_for(cloud, "green", ttl_s=6.0)
    blue.on_change = lambda r: roles.append(("blue", r))
    green.on_change = lambda r: roles.append(("green", r))
    async with running(blue):
        await eventually(lambda: blue.valid())  # blue first; green then starts as the standby
        async with running(green):
            await asyncio.sleep(1.5)
            assert not green.valid()  # standby while blue renews
            first_token = blue.token
            blue.hold = False  # handover: blue releases and stays standby
            blue.poke()
            await eventually(lambda: green.valid(), within=5)
            assert not blue.valid()
            assert green.token is not None and first_token is not None and green.token > first_token  # fencing
    assert roles[:3] == [("blue", LeaseRole.ACTIVE), ("blue", LeaseRole.STANDBY), ("green", LeaseRole.ACTIVE)]


async def test_a_dead_holder_is_replaced_after_expiry(cloud: CloudClient) -> None:
    dead = lease_for(cloud, "dead", ttl_s=4.0, renew_s=0.5)
    async with running(dead):
        await eventually(lambda: dead.valid())
    # the holder vanished without releasing (its task is gone, like a kill -9)
    heir = lease_for(cloud, "heir", ttl_s=4.0, renew_s=0.5)
    async with running(heir):
        await asyncio.sleep(1.0)
        assert not heir.valid()
        await eventually(lambda: heir.valid(), within=8)


async def test_a_stale_token_cannot_claim(cloud: CloudClient) -> None:
    async with running(lease_for(cloud, "a")) as a:
        await eventually(lambda: a.valid())
        stale = a.token
        a.hold = False
        await a.release()
        async with running(lease_for(cloud, "b")) as b:
            await eventually(lambda: b.valid())
            assert not await cloud.rpc(
                "renew_lease", {"p_machine_id": SEED_MACHINE_ID, "p_holder": "a", "p_token": stale, "p_ttl_s": 5}
            )


async def test_the_holder_stops_acting_before_expiry_when_supabase_is_gone(clean_db: BackgroundStack) -> None:
    host, port = clean_db.url.removeprefix("http://").rsplit(":", 1)
    async with TcpProxy(host, int(port)) as proxy, CloudClient(proxy.url, clean_db.service_key, timeout_s=1) as cloud:
        lease = lease_for(cloud, "cut-off", ttl_s=5.0, renew_s=1.0)
        async with running(lease):
            await eventually(lambda: lease.valid())
            await proxy.cut()
            started = asyncio.get_running_loop().time()
            await eventually(lambda: not lease.valid(), within=10)
            lost_after = asyncio.get_running_loop().time() - started
    assert lost_after < 5.0  # gave up before the server could hand the lease to anyone else


def test_renewal_must_fit_in_the_ttl(clean_db: BackgroundStack) -> None:
    with pytest.raises(ValueError, match="renew_s"):
        Lease(None, machine_id=SEED_MACHINE_ID, holder="x", ttl_s=5, renew_s=3)  # type: ignore[arg-type]
