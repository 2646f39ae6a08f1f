"""The single-writer lease: only the holder claims commands and writes to the PLC (blue/green fencing).

The lease lives in Supabase (`machine_leases`, RPCs acquire/renew/release with a fencing token that only
grows). The holder renews every `renew_s`; it trusts the lease only until `ttl − margin` after the last
*successful* renewal was sent, so when Supabase becomes unreachable it stops acting before the server
could hand the lease to someone else. A standby keeps trying to acquire and takes over when the lease is
released (handover) or expires (the holder died). `hold = False` makes the holder release and stay
standby until told otherwise (handover, issue #6).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from enum import Enum

from loguru import logger

from agent.cloud import CloudClient
from agent.errors import CloudError

__all__ = ["Lease", "LeaseRole"]

DEFAULT_TTL_S = 15.0
DEFAULT_RENEW_S = 3.0
#: Stop acting this long before the lease could expire on the server (clock and latency slack).
SAFETY_MARGIN_S = 3.0


class LeaseRole(Enum):
    STANDBY = "standby"
    ACTIVE = "active"


class Lease:
    """``asyncio.create_task(lease.run())``; ask `lease.valid()` before acting for the machine."""

    def __init__(
        self,
        cloud: CloudClient,
        *,
        machine_id: str,
        holder: str,
        ttl_s: float = DEFAULT_TTL_S,
        renew_s: float = DEFAULT_RENEW_S,
        on_change: Callable[[LeaseRole], None] | None = None,
    ) -> None:
        if renew_s >= ttl_s - SAFETY_MARGIN_S:
            raise ValueError("renew_s must leave room for a retry before ttl − margin")
        self.cloud, self.machine_id, self.holder = cloud, machine_id, holder
        self.ttl_s, self.renew_s = ttl_s, renew_s
        self.on_change = on_change
        self.token: int | None = None
        self.hold = True
        #: The server says another holder has the lease (a refused renewal, a refused acquire): cleared when we
        #: acquire it. Unreachable Supabase says nothing, so it does not set this.
        self.held_elsewhere = False
        self.active = asyncio.Event()
        self._valid_until = 0.0
        self._wake = asyncio.Event()

    @property
    def role(self) -> LeaseRole:
        return LeaseRole.ACTIVE if self.valid() else LeaseRole.STANDBY

    def valid(self) -> bool:
        """True while we hold the lease and it cannot have expired on the server."""
        if self.token is not None and time.monotonic() >= self._valid_until:
            self._lose("renewal overdue")
        return self.token is not None

    async def run(self) -> None:
        """Acquire (standby) or renew (active) until cancelled."""
        while True:
            if not self.hold:
                if self.token is not None:
                    await self.release()
            elif self.token is None:
                await self._try(self._acquire)
            else:
                await self._try(self._renew)
            self._wake.clear()
            try:
                async with asyncio.timeout(self.renew_s if self.token is not None else self.renew_s / 2):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def poke(self) -> None:
        """Run the next acquire/renew/release now (e.g. after `hold` changed)."""
        self._wake.set()

    async def release(self) -> bool:
        """Give the lease up now (handover, shutdown). True if the server confirmed."""
        token, self.token = self.token, None
        self.active.clear()
        if token is None:
            return False
        self._notify()
        try:
            released = bool(
                await self.cloud.rpc(
                    "release_lease",
                    {
                        "p_machine_id": self.machine_id,
                        "p_holder": self.holder,
                        "p_token": token,
                    },
                )
            )
        except CloudError as exc:
            logger.warning("lease: release failed ({}); it expires by itself within {}s", exc, self.ttl_s)
            return False
        logger.info("lease: released (token {})", token)
        return released

    async def _try(self, step: Callable[[], Awaitable[object]]) -> None:
        try:
            await step()
        except CloudError as exc:
            logger.debug("lease: {} failed: {}", getattr(step, "__name__", "step"), exc)
            self.valid()  # drops the lease once renewal is overdue

    async def _acquire(self) -> None:
        sent = time.monotonic()
        token = await self.cloud.rpc(
            "acquire_lease",
            {
                "p_machine_id": self.machine_id,
                "p_holder": self.holder,
                "p_ttl_s": self.ttl_s,
            },
        )
        if token is None:
            self.held_elsewhere = True
            return  # held by someone else: stay standby
        self.token, self.held_elsewhere = int(token), False
        self._valid_until = sent + self.ttl_s - SAFETY_MARGIN_S
        self.active.set()
        logger.info("lease: {} acquired machine {} (token {})", self.holder, self.machine_id, self.token)
        self._notify()

    async def _renew(self) -> None:
        sent = time.monotonic()
        ok = await self.cloud.rpc(
            "renew_lease",
            {
                "p_machine_id": self.machine_id,
                "p_holder": self.holder,
                "p_token": self.token,
                "p_ttl_s": self.ttl_s,
            },
        )
        if ok:
            self._valid_until = sent + self.ttl_s - SAFETY_MARGIN_S
        else:
            self.held_elsewhere = True
            self._lose("the server refused the renewal (expired or taken over)")

    def _lose(self, why: str) -> None:
        if self.token is None:
            return
        logger.warning("lease: lost (token {}): {}; standing by", self.token, why)
        self.token = None
        self.active.clear()
        self._notify()

    def _notify(self) -> None:
        if self.on_change is not None:
            self.on_change(self.role)
