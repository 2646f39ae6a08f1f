"""The only module that talks to Supabase: PostgREST calls and Realtime subscriptions via supabase-py (async).

Of supabase-py the agent uses its two official sub-clients, postgrest-py and realtime-py, built here the way
supabase-py's `AsyncClient` builds them (`SupabaseClients`): importing supabase-py itself also loads its
auth, storage and functions clients, PyJWT and `cryptography`, ~20 MB of resident memory the agent never
uses (bench/RESULTS.md, issue 14).

Everything the agent writes is idempotent by key (upsert on the primary key, update by id), so the spool can
replay freely. Calls carry a short timeout (the library default is 120 s) and postgrest's own retry is off:
the shipper owns retries and backoff. Realtime is an accelerator: a `Watch` reports readiness only after the
server's "Subscribed to PostgreSQL" (changes before it are not captured), and a supervisor reconnects the
socket itself, because realtime-py gives up for good after five failed attempts.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from types import TracebackType
from typing import Any

import httpx
from loguru import logger
from postgrest import AsyncPostgrestClient, AsyncRequestBuilder, AsyncRPCFilterRequestBuilder
from postgrest.constants import DEFAULT_POSTGREST_CLIENT_HEADERS
from postgrest.types import ReturnMethod
from realtime import AsyncRealtimeChannel, AsyncRealtimeClient
from realtime.types import RealtimePostgresChangesListenEvent

from agent.cloud.errors import realtime_refusal, translate
from agent.cloud.key import KeyClaims, KeyStatus, read_claims
from agent.cloud.trust import tls_context
from agent.errors import CloudAuthError, CloudError
from agent.tasks import cancel_and_wait

__all__ = ["CloudClient", "CloudState", "KeyStatus", "Watch"]

REQUEST_TIMEOUT_S = 10.0
Row = Mapping[str, Any]


class CloudState(Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


@dataclass
class Watch:
    """A realtime subscription to row changes of one table, filtered on the server."""

    table: str
    filter: str | None
    on_change: Callable[[dict[str, Any]], Awaitable[None] | None]
    on_ready: Callable[[], Awaitable[None] | None] | None = None
    events: str = "*"
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    channel: Any = None


class SupabaseClients:
    """What the agent uses of supabase-py's `AsyncClient` (`table`, `rpc`, `channel`, `realtime`,
    `remove_all_channels`), built from the same official sub-clients with the same URLs and headers:
    `<url>/rest/v1` with `apiKey` + `Authorization: Bearer`, and `<url>/realtime/v1` (ws/wss) with the key."""

    def __init__(
        self, url: str, key: str, *, http_client: httpx.AsyncClient, authorization: str, realtime: Mapping[str, Any]
    ) -> None:
        base = url.rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise ValueError(f"invalid Supabase URL {url!r}: it must start with http:// or https://")
        headers = {**DEFAULT_POSTGREST_CLIENT_HEADERS, "apiKey": key, "Authorization": authorization}
        self.postgrest = AsyncPostgrestClient(
            f"{base}/rest/v1", headers=headers, schema="public", http_client=http_client, retry_enabled=False
        )
        self.realtime = AsyncRealtimeClient(f"{base}/realtime/v1", token=key, **realtime)

    def table(self, table: str) -> AsyncRequestBuilder:
        return self.postgrest.from_(table)

    def rpc(self, name: str, params: dict[str, Any]) -> AsyncRPCFilterRequestBuilder:
        return self.postgrest.rpc(name, params)

    def channel(self, topic: str) -> AsyncRealtimeChannel:
        return self.realtime.channel(topic, {})

    async def remove_all_channels(self) -> None:
        await self.realtime.remove_all_channels()


class CloudClient:
    """``async with CloudClient(url, key) as cloud:`` — typed, idempotent operations on our tables."""

    def __init__(self, url: str, key: str, *, api_key: str | None = None, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        """`key` authorises every request (service-role or machine-scoped JWT). `api_key`: the project's own
        API key for the gateway's `apikey` header, when `key` is a JWT the gateway does not know (a hosted
        project accepts only its anon/publishable or service/secret keys there; the JWT then travels as
        `Authorization: Bearer` and as Realtime's access token)."""
        self.url, self._key, self._api_key, self.timeout_s = url, key, api_key, timeout_s
        self.state = CloudState.NEW
        self.reachable = False  # the last REST call reached PostgREST (any HTTP answer counts)
        #: Whether Supabase accepts `key`, from every REST and Realtime answer (/health, metrics).
        self.key = KeyStatus()
        #: What `key` says about itself (role, machine, expiry), read once: for the expiry in /health and metrics.
        self.key_claims: KeyClaims = read_claims(key)
        self._client: SupabaseClients | None = None
        self._watches: list[Watch] = []
        self._supervisor: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None
        #: Called after every REST call with (operation, seconds, answered): the metrics' response times.
        self.request_observers: list[Callable[[str, float, bool], None]] = []
        #: Realtime failures since start: a subscribe that failed, a lost socket, a failed reconnect attempt.
        self.realtime_errors = 0
        #: Awaited before every REST call (the agent sets the sampler's quiet gate): the lease, the intake's
        #: polls and every write build and send their request between two PLC reads, not inside one.
        self.quiet: Callable[[], Awaitable[None]] | None = None

    async def __aenter__(self) -> CloudClient:
        if self.state is not CloudState.NEW:
            raise RuntimeError(f"CloudClient cannot be entered when {self.state.value}")
        # Our own httpx client carries the timeout (postgrest deprecates its timeout argument) and the system's
        # trust store, the one Realtime's websockets uses (agent/cloud/trust.py).
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout_s), follow_redirects=True, verify=tls_context()
        )
        try:
            self._client = SupabaseClients(
                self.url,
                self._api_key or self._key,
                http_client=self._http,
                authorization=f"Bearer {self._key}",
                realtime={"auto_reconnect": True, "max_retries": 5, "initial_backoff": 0.5},
            )
            if self._api_key:
                await self._client.realtime.set_auth(self._key)
        except Exception as exc:
            raise CloudError(f"cannot create the Supabase client for {self.url}: {exc}") from exc
        self.state = CloudState.OPEN
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self.state is not CloudState.OPEN:
            self.state = CloudState.CLOSED
            return
        self.state = CloudState.CLOSED
        if self._supervisor is not None:
            await cancel_and_wait([self._supervisor])
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.remove_all_channels()
        if self._http is not None:
            await self._http.aclose()

    @property
    def client(self) -> SupabaseClients:
        if self.state is not CloudState.OPEN or self._client is None:
            raise RuntimeError("CloudClient is not open")
        return self._client

    @property
    def realtime_connected(self) -> bool:
        return bool(self._watches) and all(w.ready.is_set() for w in self._watches)

    # --- REST ---------------------------------------------------------------------------------------

    async def _call(self, what: str, request: Any) -> Any:
        if self.quiet is not None:
            await self.quiet()
        started = time.perf_counter()
        try:
            response = await request.execute()
        except Exception as exc:  # the seam: every foreign error becomes a classified CloudError
            error = translate(exc, what=what)
            self.reachable = error.code is not None
            if isinstance(error, CloudAuthError):
                self.key.refuse("rest", error)
            self._observe(what, started, answered=self.reachable)
            raise error from exc
        self.reachable = True
        self.key.accept("rest")
        self._observe(what, started, answered=True)
        return response

    def _observe(self, what: str, started: float, *, answered: bool) -> None:
        seconds = time.perf_counter() - started
        operation = what.split(" ", 1)[0]  # "select machines" → "select": a handful of label values
        for observe in self.request_observers:
            observe(operation, seconds, answered)

    async def upsert(self, table: str, rows: Sequence[Row], *, on_conflict: str) -> None:
        """Insert or update `rows` (one bulk request) keyed by `on_conflict`; returns nothing."""
        if rows:
            request = self.client.table(table).upsert(
                list(rows), on_conflict=on_conflict, returning=ReturnMethod.minimal, default_to_null=False
            )
            await self._call(f"upsert {table}", request)

    async def insert(self, table: str, row: Row) -> dict[str, Any]:
        """Insert one row and return it as stored (ids and defaults filled in)."""
        response = await self._call(f"insert {table}", self.client.table(table).insert(dict(row)))
        return dict(response.data[0])

    async def update(self, table: str, values: Row, *, match: Mapping[str, Any]) -> None:
        request = self.client.table(table).update(dict(values), returning=ReturnMethod.minimal)
        for column, value in match.items():
            request = request.eq(column, value)
        await self._call(f"update {table}", request)

    async def select(
        self,
        table: str,
        *,
        columns: str = "*",
        eq: Mapping[str, Any] | None = None,
        order: str | None = None,
        descending: bool = False,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[dict[str, Any]]:
        """Rows of `table`. PostgREST returns at most its `max_rows` (1,000 on Supabase) whatever `limit`
        says: page with `offset` over a unique `order` to read more."""
        request = self.client.table(table).select(columns)
        for column, value in (eq or {}).items():
            request = request.eq(column, value)
        if order:
            request = request.order(order, desc=descending)
        if limit is not None:
            request = request.limit(limit)
        if offset:
            request = request.offset(offset)
        return list((await self._call(f"select {table}", request)).data)

    async def rpc(self, name: str, params: Mapping[str, Any]) -> Any:
        return (await self._call(f"rpc {name}", self.client.rpc(name, dict(params)))).data

    async def load_parameters(self, machine_id: str) -> list[dict[str, Any]]:
        """The machine's register map rows (docs/CONTRACT.md §2 `parameters`), by key."""
        return await self.select("parameters", eq={"machine_id": machine_id}, order="key")

    # --- Realtime -----------------------------------------------------------------------------------

    async def watch(self, watch: Watch) -> Watch:
        """Subscribe to `watch.table` changes; `on_ready` runs after every (re)subscription so the caller can
        catch up on what happened while it was not listening."""
        channel = self.client.channel(f"{watch.table}-{watch.filter or 'all'}")
        channel.on_postgres_changes(
            RealtimePostgresChangesListenEvent(watch.events),
            lambda payload: _spawn(watch.on_change(payload["data"])),  # type: ignore[arg-type]  # realtime's TypedDict is the dict on_change takes
            table=watch.table,
            schema="public",
            filter=watch.filter,
        )

        def on_system(payload: Any) -> None:  # realtime's SuccessSystemPayload model
            if getattr(payload, "extension", None) == "postgres_changes" and getattr(payload, "status", "") == "ok":
                logger.info("realtime: listening to {} ({})", watch.table, watch.filter or "all rows")
                self.key.accept("realtime")
                watch.ready.set()
                if watch.on_ready is not None:
                    _spawn(watch.on_ready())

        def on_state(state: Any, error: Exception | None) -> None:
            if str(getattr(state, "value", state)) != "SUBSCRIBED":
                if watch.ready.is_set():  # a subscription that worked was lost (channel error, timeout, close)
                    self.realtime_errors += 1
                watch.ready.clear()
            refusal = realtime_refusal(error, what=f"realtime {watch.table}")
            if refusal is not None:
                self.key.refuse("realtime", refusal)

        channel.on_system(on_system)
        watch.channel = channel
        self._watches.append(watch)
        try:
            await channel.subscribe(on_state)
        except Exception as exc:  # the socket may be down: the supervisor keeps trying
            self._note_realtime_failure(exc, what=f"realtime {watch.table}")
            logger.warning("realtime: subscribe to {} failed: {}", watch.table, exc)
        if self._supervisor is None:
            self._supervisor = asyncio.create_task(self._supervise_realtime(), name="realtime-supervisor")
        return watch

    async def _supervise_realtime(self) -> None:
        delay = 0.5
        while True:
            await asyncio.sleep(delay)
            realtime = self.client.realtime
            if realtime.is_connected:
                delay = 0.5
                continue
            for w in self._watches:
                if w.ready.is_set():
                    self.realtime_errors += 1
                w.ready.clear()
            try:
                await realtime.connect()  # rejoins the errored channels
                delay = 0.5
            except Exception as exc:
                self._note_realtime_failure(exc, what="realtime connect")
                logger.debug("realtime reconnect failed: {}", exc)
                delay = min(delay * 2, 10.0) * random.uniform(0.8, 1.2)

    def _note_realtime_failure(self, exc: Exception, *, what: str) -> None:
        """A refused handshake (HTTP 401/403) is the key; anything else is the network, for the supervisor."""
        self.realtime_errors += 1
        error = translate(exc, what=what)
        if isinstance(error, CloudAuthError):
            self.key.refuse("realtime", error)


_background: set[asyncio.Task[Any]] = set()


def _spawn(result: Awaitable[None] | None) -> None:
    """Run a callback's coroutine without blocking the realtime reader, keeping a reference until done."""
    if result is None:
        return
    task = asyncio.ensure_future(result)
    _background.add(task)
    task.add_done_callback(_background.discard)
