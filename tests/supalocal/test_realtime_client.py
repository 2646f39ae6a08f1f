"""Realtime conformance through the unmodified official async client (``acreate_client``).

Items 12–15 of the conformance checklist (docs/LOCAL_STACK.md §7): join + "Subscribed to PostgreSQL", postgres_changes
for INSERT/UPDATE/DELETE in commit order, server-side filters, old_record per replica identity,
access_token, leave, and rejoining after the server drops the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from realtime import RealtimeSubscribeStates

from supabase import AClientOptions, AsyncClient, acreate_client
from supalocal.api import REALTIME_KEY
from supalocal.auth import make_api_key

pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")

MACHINE_A = "00000000-0000-4000-8000-0000000000aa"
MACHINE_B = "00000000-0000-4000-8000-0000000000bb"
EVENT_TIMEOUT_S = 10.0
QUIET_S = 0.3  # how long "nothing else arrives" is watched for after a sentinel event


@contextlib.asynccontextmanager
async def async_client(stack: Any, key: str | None = None) -> AsyncIterator[AsyncClient]:
    options = AClientOptions(realtime={"initial_backoff": 0.1, "max_retries": 10})
    client = await acreate_client(stack.url, key or stack.service_key, options=options)
    try:
        yield client
    finally:
        await client.remove_all_channels()
        await client.realtime.close()
        await client.postgrest.aclose()


class Subscription:
    """A channel whose postgres_changes events and system messages land in queues."""

    def __init__(self, client: AsyncClient, name: str) -> None:
        self.channel = client.channel(name)
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.system: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.states: list[RealtimeSubscribeStates] = []
        self.errors: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.channel.on_system(lambda msg: self.system.put_nowait(msg.model_dump()))

    def on(self, event: str, table: str, filter: str | None = None) -> Subscription:
        self.channel.on_postgres_changes(event, self.events.put_nowait, table=table, schema="public", filter=filter)
        return self

    async def subscribe(self) -> Subscription:
        await self.channel.subscribe(self._on_state)
        await self.wait_system("ok")
        return self

    def _on_state(self, state: RealtimeSubscribeStates, error: Exception | None) -> None:
        self.states.append(state)
        if state == RealtimeSubscribeStates.CHANNEL_ERROR and error is not None and error.args:
            with contextlib.suppress(ValueError, TypeError):
                self.errors.put_nowait(json.loads(error.args[0]))

    async def wait_system(self, status: str) -> dict[str, Any]:
        while True:
            msg = await asyncio.wait_for(self.system.get(), EVENT_TIMEOUT_S)
            if msg.get("extension") == "postgres_changes" and msg.get("status") == status:
                return msg

    async def next(self) -> dict[str, Any]:
        return (await asyncio.wait_for(self.events.get(), EVENT_TIMEOUT_S))["data"]

    async def drain_quiet(self) -> list[dict[str, Any]]:
        await asyncio.sleep(QUIET_S)
        out = []
        while not self.events.empty():
            out.append(self.events.get_nowait()["data"])
        return out


async def test_insert_update_delete_filtered_by_machine(api_tables: Any) -> None:
    async with async_client(api_tables) as client:
        flt = f"machine_id=eq.{MACHINE_A}"
        sub = await Subscription(client, "items-a").on("*", "api_items", flt).subscribe()
        items = client.table("api_items")
        await items.insert({"machine_id": MACHINE_B, "name": "b0"}).execute()
        (row,) = (await items.insert({"machine_id": MACHINE_A, "name": "a0", "value": 1.25}).execute()).data
        await items.update({"note": "x"}).eq("machine_id", MACHINE_B).execute()
        await items.update({"note": "y"}).eq("id", row["id"]).execute()
        await items.delete().eq("id", row["id"]).execute()
        await items.delete().eq("machine_id", MACHINE_B).execute()

        ins, upd, dele = await sub.next(), await sub.next(), await sub.next()
        assert (ins["type"], ins["schema"], ins["table"], ins["errors"]) == ("INSERT", "public", "api_items", None)
        assert ins["record"] == row and "old_record" not in ins
        assert {"name": "value", "type": "numeric"} in ins["columns"]
        assert ins["commit_timestamp"].endswith("Z") and len(ins["commit_timestamp"]) == 24
        assert upd["type"] == "UPDATE" and upd["record"]["note"] == "y"
        assert upd["old_record"] == row  # REPLICA IDENTITY FULL: the whole old row
        assert dele["type"] == "DELETE" and dele["old_record"]["id"] == row["id"] and "record" not in dele
        assert await sub.drain_quiet() == []  # machine B's changes never reached this subscription


async def test_old_record_is_primary_key_only_by_default(api_tables: Any) -> None:
    async with async_client(api_tables) as client:
        sub = await Subscription(client, "plain").on("UPDATE", "api_plain").on("DELETE", "api_plain").subscribe()
        plain = client.table("api_plain")
        (row,) = (await plain.insert({"machine_id": MACHINE_A, "seq": 1}).execute()).data
        await plain.update({"seq": 2}).eq("id", row["id"]).execute()
        await plain.delete().eq("id", row["id"]).execute()
        upd, dele = await sub.next(), await sub.next()
        assert upd["old_record"] == {"id": row["id"]} and upd["record"]["seq"] == 2
        assert dele["old_record"] == {"id": row["id"]}


async def test_filter_operators_are_applied_server_side(api_tables: Any) -> None:
    async with async_client(api_tables) as client:
        sub = Subscription(client, "ops")
        sub.on("INSERT", "api_plain", "seq=gt.5").on("INSERT", "api_plain", "seq=in.(1,2)")
        await sub.subscribe()
        await client.table("api_plain").insert([{"seq": s} for s in (1, 3, 5, 6, 10, 2)]).execute()
        seen = [(await sub.next())["record"]["seq"] for _ in range(4)]
        assert seen == [1, 6, 10, 2]
        assert await sub.drain_quiet() == []


async def test_unpublished_table_gets_system_error(api_tables: Any) -> None:
    async with async_client(api_tables) as client:
        sub = Subscription(client, "secret").on("*", "api_secret")
        await sub.channel.subscribe(sub._on_state)
        msg = await asyncio.wait_for(sub.errors.get(), EVENT_TIMEOUT_S)  # system status:error → CHANNEL_ERROR
        assert (msg["extension"], msg["status"]) == ("postgres_changes", "error")
        assert msg["message"].startswith("Unable to subscribe to changes with given parameters")


async def test_events_resume_after_server_drops_socket(api_tables: Any) -> None:
    async with async_client(api_tables) as client:
        sub = await Subscription(client, "drop").on("INSERT", "api_plain", f"machine_id=eq.{MACHINE_A}").subscribe()
        api_tables.call(api_tables.app[REALTIME_KEY].disconnect_all())
        await sub.wait_system("ok")  # rejoined on a new socket
        await client.table("api_plain").insert({"machine_id": MACHINE_A, "seq": 7}).execute()
        assert (await sub.next())["record"]["seq"] == 7
        assert RealtimeSubscribeStates.CHANNEL_ERROR in sub.states
        assert sub.states[-1] == RealtimeSubscribeStates.SUBSCRIBED


async def test_access_token_refresh_and_leave(api_tables: Any) -> None:
    async with async_client(api_tables) as client:
        sub = await Subscription(client, "tok").on("INSERT", "api_plain").subscribe()
        await client.realtime.set_auth(make_api_key("service_role", secret=api_tables.jwt_secret))
        await client.table("api_plain").insert({"seq": 1}).execute()
        assert (await sub.next())["record"]["seq"] == 1
        await client.remove_channel(sub.channel)
        await client.table("api_plain").insert({"seq": 2}).execute()
        assert await sub.drain_quiet() == []


async def test_expired_access_token_stops_channel(api_tables: Any) -> None:
    async with async_client(api_tables) as client:
        sub = await Subscription(client, "exp").on("INSERT", "api_plain").subscribe()
        await client.realtime.set_auth(make_api_key("service_role", secret=api_tables.jwt_secret, lifetime_s=-5))
        msg = await asyncio.wait_for(sub.errors.get(), EVENT_TIMEOUT_S)
        assert (msg["extension"], msg["status"]) == ("system", "error")
        assert msg["message"].startswith("Token has expired")


async def test_thousand_inserts_arrive_in_commit_order(api_tables: Any) -> None:
    total, batch = 1000, 100
    async with async_client(api_tables) as client:
        sub = await Subscription(client, "bulk").on("INSERT", "api_plain", f"machine_id=eq.{MACHINE_A}").subscribe()
        plain = client.table("api_plain")
        for start in range(0, total, batch):
            rows = [{"machine_id": MACHINE_A, "seq": s} for s in range(start, start + batch)]
            await plain.insert(rows, returning="minimal").execute()
            await plain.insert({"machine_id": MACHINE_B, "seq": -1}, returning="minimal").execute()
        seqs = [(await sub.next())["record"]["seq"] for _ in range(total)]
        assert seqs == list(range(total))
        assert await sub.drain_quiet() == []
