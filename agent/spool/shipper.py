"""The shipper: drains the spool to Supabase in order, in batches, with backoff, isolating poison records.

One pass walks the kinds in `SHIP_ORDER`; each kind is strictly FIFO, and the kinds of a run's story wait for
older records of the kinds before them (`routes.waits_for`: no step before its run row). A transient
failure (Supabase down, timeout, 5xx) ends the pass
 and the shipper backs off exponentially with jitter, keeping every record. A
permanent failure (4xx) of a batch is bisected until the refused records are alone; those move to the
quarantine with their error, the rest ships. Records are removed from the spool only after Supabase
accepted them, so a crash in between means a replay, which the idempotent routes absorb.

Telemetry is paced (`Route.paced`, `telemetry_gap_s`): once a paced kind is caught up, its next request waits
until the gap has passed since the last one, so at 10 Hz two or three frames share a request instead of one
each (the HTTP request is most of what shipping costs: the whole agent at 10 Hz went from 8.9 to 6.4–7.1 % of
a core with 0.25 s, bench/RESULTS.md). A backlog (a replay after an outage) ships back-to-back; at rates slower
than one frame per gap nothing changes; a shutdown flush never waits.

A refused key (`CloudAuthError`: expired, revoked, wrong secret) is no record's fault: the shipper holds every
record, never bisects or quarantines, and probes with one record at a slower pace (up to `AUTH_BACKOFF_MAX_S`),
so shipping resumes by itself within that time once the key is accepted again (a restored secret), and at once
after a restart with a new key. The client's `KeyStatus` reports the refusal to /health and the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from loguru import logger

from agent.cloud import CloudClient
from agent.errors import CloudAuthError, CloudPermanentError, CloudTransientError
from agent.spool.routes import ROUTES, SHIP_ORDER, Route, collapse, column_groups, waits_for
from agent.spool.store import Record, Spool

__all__ = ["Shipper", "ShipperStats"]

#: Retry at least every 5 s during an outage: one small request, and shipping resumes quickly after it.
BACKOFF_INITIAL_S, BACKOFF_MAX_S = 0.5, 5.0
#: While the key is refused: no point hammering Supabase every 5 s, but a restored key is noticed within 30 s.
AUTH_BACKOFF_MAX_S = 30.0
#: Payload bytes per request. A 500-parameter frame is ~15 kB of JSON; 500 of them in one request meant a
#: 7.6 MB body, ~37 MB of Python objects during a replay and 413s from request-size limits (bench/RESULTS.md);
#: 256 kB keeps the agent under 100 MB through a replay and still ships several hundred frames per second.

MAX_BATCH_BYTES = 256 * 1024
IDLE_WAKE_S = 1.0
#: A pass skips the kinds the spool counts as empty (each peek is a round trip to the spool's thread), except
#: at least this often, when every kind is asked: a safety net under the counts (another process's changes are
#: picked up by any peek, and a pass with nothing known pending makes one).
FULL_PASS_S = 5.0
#: A paced kind with at most this many records left after a request is caught up (what is left arrived while
#: the request was in flight) and waits for the gap; more is a backlog, which ships on at once.
PACED_CAUGHT_UP = 1


@dataclass(slots=True)
class ShipperStats:
    connected: bool = False  # the last attempt reached Supabase and was accepted
    requests: int = 0
    errors: int = 0
    transient_errors: int = 0
    auth_errors: int = 0  # attempts refused for the key (every record held)
    last_error: str | None = None
    last_ship_latency_s: float = 0.0  # append → accepted, for the newest record of the last batch


class Shipper:
    """Ships `spool` to `cloud`. `quiet`, when given, is awaited before each batch: the agent passes the
    sampler's "no PLC read in flight" wait, so a batch's CPU work (decoding, encoding, HTTP) never lands
    between the Modbus round trips of a read on the shared event loop (docs/DESIGN.md §5 "Sampling")."""

    def __init__(
        self,
        spool: Spool,
        cloud: CloudClient,
        *,
        quiet: Callable[[], Awaitable[None]] | None = None,
        telemetry_gap_s: float = 0.0,
    ) -> None:
        self.spool, self.cloud, self._quiet = spool, cloud, quiet
        self.telemetry_gap_s = telemetry_gap_s
        #: Paced kind → monotonic time before which it is not shipped (set when a request caught it up).
        self._not_before: dict[str, float] = {}
        self.stats = ShipperStats()
        #: Called with each batch Supabase accepted (the metrics' read → row cycle time).
        self.shipped_observers: list[Callable[[list[Record]], None]] = []
        self._in_outage = False
        self._refused = False
        self._last_full_pass = float("-inf")

    async def run(self) -> None:
        """Ship until cancelled."""
        delay = BACKOFF_INITIAL_S
        while True:
            self.spool.changed.clear()
            try:
                shipped = await self.ship_once()
            except CloudTransientError as exc:
                self._note_outage(exc)
                await asyncio.sleep(random.uniform(delay / 2, delay))
                delay = min(delay * 2, BACKOFF_MAX_S)
                continue
            except CloudAuthError as exc:
                self._note_refused(exc)
                await asyncio.sleep(random.uniform(delay / 2, delay))
                delay = min(delay * 2, AUTH_BACKOFF_MAX_S)
                continue
            delay = BACKOFF_INITIAL_S
            # Nothing shipped, or the spool is empty now: wait for the next append (a pass over an empty spool
            # is 7 peeks on the spool's thread; at 10 Hz that second pass per frame was pure overhead).
            if shipped == 0 or self.spool.stats.depth == 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._idle_wait_s()):
                        await self.spool.changed.wait()

    def _idle_wait_s(self) -> float:
        """How long an idle shipper may sleep: until the next append, or until a held-back paced kind is due."""
        due = [t for kind, t in self._not_before.items() if self.spool.pending(kind)]
        return min(IDLE_WAKE_S, max(0.0, min(due) - time.monotonic())) if due else IDLE_WAKE_S

    async def flush(self, timeout_s: float) -> bool:
        """Ship until the spool is empty or `timeout_s` passed; True if empty. Used at shutdown."""
        deadline = time.monotonic() + timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                while self.spool.stats.depth > 0 and time.monotonic() < deadline:
                    try:
                        if await self.ship_once(paced=False) == 0:
                            break
                    except CloudTransientError as exc:
                        self._note_outage(exc)
                        await asyncio.sleep(0.2)
                    except CloudAuthError as exc:  # no retry can succeed before a new key: keep it all
                        self._note_refused(exc)
                        break
        except TimeoutError:
            pass
        return self.spool.stats.depth == 0

    async def ship_once(self, *, paced: bool = True) -> int:
        """One pass over the kinds with records (every kind each `FULL_PASS_S`); returns how many records were
        shipped or quarantined. A paced kind inside its gap waits for a later pass, unless `paced` is False.

        While Supabase is unreachable or refuses the key, each retry sends a single record: a probe that costs
        nothing to build, instead of decoding and encoding a full batch every few seconds for hours. Full batches
        resume with the first success.
        """
        done = 0
        now = time.monotonic()
        full = now - self._last_full_pass >= FULL_PASS_S
        if full:
            self._last_full_pass = now
        refreshed = False  # a peek re-reads the counts when another process changed the file
        for kind in SHIP_ORDER:
            # Nothing known pending: ask once anyway, so a replay by the quarantine CLI is seen now.
            if not full and not self.spool.pending(kind) and (refreshed or self.spool.stats.depth):
                continue
            route = ROUTES[kind]
            if paced and route.paced and now < self._not_before.get(kind, now):
                continue
            limit = 1 if self._in_outage or self._refused else route.batch
            if self._quiet is not None:
                await self._quiet()
            records = await self.spool.peek(kind, limit, max_bytes=MAX_BATCH_BYTES, behind=waits_for(kind))
            refreshed = True

            if records:
                done += await self._ship(route, records)
                if route.paced and self.telemetry_gap_s > 0 and self.spool.pending(kind) <= PACED_CAUGHT_UP:
                    self._not_before[kind] = time.monotonic() + self.telemetry_gap_s
        return done

    async def _ship(self, route: Route, records: list[Record]) -> int:
        try:
            await self._send(route, records)
        except CloudPermanentError as exc:
            if len(records) == 1:
                logger.error("spool: {} record {} refused, quarantined: {}", records[0].kind, records[0].id, exc)
                await self.spool.quarantine(records[0], error=str(exc), code=exc.code)
                self.stats.errors += 1
                return 1
            half = len(records) // 2
            return await self._ship(route, records[:half]) + await self._ship(route, records[half:])
        await self.spool.remove([r.id for r in records])
        self.stats.last_ship_latency_s = max(0.0, time.time() - records[-1].created)
        for observe in self.shipped_observers:
            observe(records)
        if self._in_outage:
            logger.info("spool: Supabase reachable again, shipping ({} waiting)", self.spool.stats.depth)
            self._in_outage = False
        if self._refused:
            logger.info("spool: Supabase accepts the key again, shipping ({} waiting)", self.spool.stats.depth)
            self._refused = False
        self.stats.connected = True
        return len(records)

    async def _send(self, route: Route, records: list[Record]) -> None:
        requests = collapse(route, [r.payload for r in records])
        self.stats.requests += 1
        if route.on_conflict is not None:
            for rows in column_groups(requests):
                await self.cloud.upsert(route.table, rows, on_conflict=route.on_conflict)
            return
        for update in requests:
            await self.cloud.update(route.table, update["values"], match={"id": update["id"]})

    def _note_outage(self, exc: CloudTransientError) -> None:
        self.stats.connected = False
        self.stats.transient_errors += 1
        self.stats.errors += 1
        self.stats.last_error = str(exc)
        if not self._in_outage:  # one line per outage, not one per retry
            logger.warning("spool: Supabase unreachable, buffering locally: {}", exc)
            self._in_outage = True

    def _note_refused(self, exc: CloudAuthError) -> None:
        self.stats.connected = False
        self.stats.auth_errors += 1
        self.stats.errors += 1
        self.stats.last_error = str(exc)
        if not self._refused:  # one line per refusal episode, not one per probe
            logger.error("spool: Supabase refused the key, holding {} records: {}", self.spool.stats.depth, exc)
            self._refused = True
