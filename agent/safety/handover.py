"""Blue/green hand-over of the machine between two agents, driven by the deploy scripts through admin routes.

Only one color may command the PLC, and a deploy must never cut a running recipe. So a hand-over is:
stop claiming commands → let the running recipe finish (or, with `force`, stop it into its safe state) →
release the lease and stay standby (`hold = False`). The standby, which keeps trying to acquire, takes over
at once. `activate` is the reverse switch (rollback): hold the lease again when it is free. `drain` stops
claiming without releasing (a maintenance pause).

    POST /admin/handover[?force=true][&wait=S]
                                        → 202 {"state": "draining"|"released", "run": …} (200 once released)

    POST /admin/drain                   → 202 {"state": "draining"|"drained", …}
    POST /admin/activate                → 200 {"state": "holding"}
    GET  /admin/handover                → 200 the current state
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from enum import StrEnum
from typing import Any, Protocol

from aiohttp import web
from loguru import logger

from agent.safety.lease import Lease
from agent.safety.runs import RunController

__all__ = ["Handover", "HandoverState"]

#: The longest a hand-over request may hold its HTTP connection (a recipe can run for hours: poll instead).
MAX_WAIT_S = 300.0


class Intake(Protocol):
    """What a hand-over needs of command intake (agent.commands.CommandIntake): stop and restart claiming."""

    paused: bool

    def poke(self) -> None: ...


class HandoverState(StrEnum):
    HOLDING = "holding"  # normal: claims commands, holds (or wants) the lease
    DRAINING = "draining"  # not claiming; waiting for the running recipe
    DRAINED = "drained"  # not claiming, no run, lease kept (drain)
    RELEASED = "released"  # lease given up; standby until activated


class Handover:
    def __init__(self, *, lease: Lease, intake: Intake, runs: RunController) -> None:
        self.lease, self.intake, self.runs = lease, intake, runs
        self.state = HandoverState.HOLDING
        self.started: float | None = None
        self._task: asyncio.Task[None] | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "role": self.lease.role.value,
            "run": self.runs.active.id if self.runs.active else None,
            "waiting_s": round(time.monotonic() - self.started, 3) if self.started and self._busy() else 0.0,
        }

    def begin(self, *, release: bool, force: bool) -> None:
        """Stop claiming now; finish (or force-stop) the run and release in the background."""
        if self._busy():
            return
        self.intake.paused = True
        self.state = HandoverState.DRAINING
        self.started = time.monotonic()
        if force and self.runs.active is not None:
            self.runs.stop("stopped for a forced hand-over")
        self._task = asyncio.create_task(self._finish(release=release), name="handover")

    async def _finish(self, *, release: bool) -> None:
        if self.runs.active is not None:
            logger.info("handover: waiting for run {} to finish", self.runs.active.id)
        await self.runs.finished.wait()
        if release:
            self.lease.hold = False
            await self.lease.release()
            self.state = HandoverState.RELEASED
        else:
            self.state = HandoverState.DRAINED
        logger.info("handover: {} after {:.1f}s", self.state.value, time.monotonic() - (self.started or 0))

    def activate(self) -> None:
        """Claim commands and hold the lease again (as soon as it is free)."""
        if self._task is not None:
            self._task.cancel()
        self.lease.hold = True
        self.intake.paused = False
        self.state = HandoverState.HOLDING
        self.lease.poke()
        self.intake.poke()

    def _busy(self) -> bool:
        return self._task is not None and not self._task.done()

    # --- admin routes (registered behind the admin token by the app) ------------------------------------

    async def post_handover(self, request: web.Request) -> web.Response:
        """`?force=true` stops a running recipe; `?wait=S` answers once released (200) or after S s (202)."""
        force = request.query.get("force", "").lower() in {"1", "true", "yes"}
        try:
            wait_s = min(float(request.query.get("wait", "0")), MAX_WAIT_S)
        except ValueError:
            return web.json_response({"error": "wait must be a number of seconds"}, status=400)
        self.begin(release=True, force=force)
        if self._task is not None and wait_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), wait_s)
        await asyncio.sleep(0)  # a handover with no run completes at once: report it
        done = self.state is HandoverState.RELEASED
        return web.json_response(self.describe(), status=200 if done else 202)

    async def post_drain(self, request: web.Request) -> web.Response:
        self.begin(release=False, force=False)
        await asyncio.sleep(0)
        return web.json_response(self.describe(), status=202)

    async def post_activate(self, request: web.Request) -> web.Response:
        self.activate()
        return web.json_response(self.describe())

    async def get_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.describe())
