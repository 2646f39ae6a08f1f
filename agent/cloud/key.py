"""Whether Supabase accepts our key: the state behind /health's "Supabase refused the key" and its metrics.

The key is one for every call, so its refusal is tracked once, here, by the client that makes the calls, not by
each caller. REST and Realtime judge the key separately (behind a project API key, Realtime gets the JWT as an
access token), so each channel is refused and accepted on its own answers: a successful REST call does not
clear a Realtime refusal. Each refusal episode is logged once, at its start and at its end. `read_claims` reads
what a key says about itself (role, machine, expiry) for the `python -m agent key` command of a rotation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from loguru import logger

from agent.config import unverified_claims
from agent.errors import CloudAuthError

__all__ = ["KeyChannel", "KeyClaims", "KeyStatus", "read_claims"]

KeyChannel = Literal["rest", "realtime"]
#: Supabase's opaque API keys (publishable/secret): nothing to read in them.
OPAQUE_KEY_PREFIXES = ("sb_publishable_", "sb_secret_")


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


@dataclass(frozen=True, slots=True)
class KeyClaims:
    """What a key says about itself, read without verifying (only Supabase can verify it): for operators
    planning a rotation, and for /health. `expires_at` is None for a key without `exp` or an opaque key."""

    kind: Literal["jwt", "opaque", "unreadable"]
    role: str | None = None
    machine_id: str | None = None
    issued_at: datetime | None = None
    expires_at: datetime | None = None

    def expires_in_s(self, now: datetime) -> float | None:
        return None if self.expires_at is None else (self.expires_at - now).total_seconds()


def read_claims(key: str) -> KeyClaims:
    """The claims of `key` (a JWT), or its kind alone for an opaque `sb_…` key or something unreadable."""
    if key.startswith(OPAQUE_KEY_PREFIXES):
        return KeyClaims(kind="opaque")
    claims = unverified_claims(key)
    if claims is None:
        return KeyClaims(kind="unreadable")
    return KeyClaims(
        kind="jwt",
        role=_text(claims.get("role")),
        machine_id=_text(claims.get("machine_id")),
        issued_at=_time(claims.get("iat")),
        expires_at=_time(claims.get("exp")),
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _time(value: object) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None
