"""Whether Supabase accepts our key: the state behind /health's "Supabase refused the key" and its metrics.

The key is one for every call, so its refusal is tracked once, here, by the client that makes the calls, not by
each caller. REST and Realtime judge the key separately (behind a project API key, Realtime gets the JWT as an
access token), so each channel is refused and accepted on its own answers: a successful REST call does not
clear a Realtime refusal. Each refusal episode is logged once, at its start and at its end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from loguru import logger

from agent.errors import CloudAuthError

__all__ = ["KeyChannel", "KeyStatus"]

KeyChannel = Literal["rest", "realtime"]


@dataclass(slots=True)
class KeyStatus:
    """`refused` is the latest refusal in force (None while the key is accepted); `refusals` counts every call
    refused since start (a counter: each lease, intake and shipper attempt adds one)."""

    rest: str | None = None
    realtime: str | None = None
    refusals: int = 0

    @property
    def refused(self) -> str | None:
        return self.rest or self.realtime

    def refuse(self, channel: KeyChannel, error: CloudAuthError) -> None:
        """A call on `channel` was refused for the key."""
        first = self.refused is None
        self.refusals += 1
        if channel == "rest":
            self.rest = str(error)
        else:
            self.realtime = str(error)
        if first:
            logger.error(
                "Supabase refused the key ({}): nothing is shipped and nothing is lost (records wait in the spool);"
                " configure a valid SUPABASE_KEY and restart the agent",
                error,
            )

    def accept(self, channel: KeyChannel) -> None:
        """A call on `channel` succeeded: the key works there."""
        if (self.rest if channel == "rest" else self.realtime) is None:
            return
        if channel == "rest":
            self.rest = None
        else:
            self.realtime = None
        if self.refused is None:
            logger.info("Supabase accepts the key again ({})", channel)
