"""The agent's one exception tree.

Every error the agent raises on purpose derives from `AgentError`, so callers can catch by *meaning*
(what to do next) instead of by the library that happened to fail. Foreign exceptions (pymodbus,
httpx, postgrest, pydantic) are translated at the one seam that talks to them, with `raise … from exc`.

    AgentError
    ├── ConfigError                 bad settings or a bad register map (fix the file, restart)
    │   └── MapError                register map rejected; `key` names the offending parameter
    ├── PlcError                    anything on the PLC side; `where` says unit/address
    │   ├── PlcConnectionError      socket down or refused → reconnect
    │   ├── PlcTimeout              no reply in PLC_TIMEOUT_S (also a TimeoutError) → retry/reconnect
    │   ├── PlcExceptionResponse    the PLC answered with a Modbus exception `code` → isolate the block
    │   └── WriteVerifyError        the read-back after a write did not match within tolerance
    ├── ValidationError             a value or request refused before any I/O → reject, never retry
    │   ├── UnknownParameter        the key is not in the map
    │   └── InterlockError          the safety gate refused a write: a permit failed, or not the machine's owner
    ├── CloudError                  Supabase side; `code` = PostgREST/SQLSTATE code when there is one
    │   ├── CloudTransientError     unreachable, timeout, 5xx, lock/serialization → retry with backoff
    │   ├── CloudPermanentError     4xx: the request itself is wrong → quarantine, never retry as is
    │   └── CloudAuthError          Supabase refused the key (401/403, PGRST3xx, realtime token refused): no
    │                               request can succeed until the key is fixed → hold everything, back off
    ├── RecipeError                 invalid recipe (issue #5)
    ├── CommandError                invalid command (issue #5)
    └── TransitionError             illegal state-machine move (issue #5)

`asyncio.CancelledError` is never wrapped: code catches it only to clean up, then re-raises.
"""

from __future__ import annotations

__all__ = [
    "AgentError",
    "CloudAuthError",
    "CloudError",
    "CloudPermanentError",
    "CloudTransientError",
    "CommandError",
    "ConfigError",
    "InterlockError",
    "MapError",
    "PlcConnectionError",
    "PlcError",
    "PlcExceptionResponse",
    "PlcTimeout",
    "RecipeError",
    "TransitionError",
    "UnknownParameter",
    "ValidationError",
    "WriteVerifyError",
]


class AgentError(Exception):
    """Root of every error the agent raises deliberately."""


class ConfigError(AgentError):
    """Settings that cannot be used; the message names every problem."""


class MapError(ConfigError):
    """A register map was rejected. `key` is the first offending parameter (None for file-level errors)."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key


class PlcError(AgentError):
    """A PLC operation failed. `where` carries the context (e.g. 'holding 2000+4 unit 1')."""

    def __init__(self, message: str, *, where: str = "") -> None:
        super().__init__(f"{message} [{where}]" if where else message)
        self.where = where


class PlcConnectionError(PlcError):
    """No usable connection to the PLC; the hub reconnects with backoff."""


class PlcTimeout(PlcError, TimeoutError):
    """The PLC did not answer within the configured timeout."""


class PlcExceptionResponse(PlcError):
    """The PLC answered with a Modbus exception; `code` is the Modbus exception code (2 = illegal address…)."""

    def __init__(self, message: str, *, code: int, where: str = "") -> None:
        super().__init__(f"{message} (modbus exception {code})", where=where)
        self.code = code


class WriteVerifyError(PlcError):
    """The value read back after a write differs from the value written beyond the tolerance."""


class ValidationError(AgentError):
    """A request refused before any I/O: not writable, out of range, wrong type. Never retried."""


class UnknownParameter(ValidationError, KeyError):
    """The parameter key is not in the register map."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "unknown parameter"


class InterlockError(ValidationError):
    """The safety gate refused a write: a permit interlock's conditions did not hold (`interlock` names it), or
    this agent does not own the machine. Like any `ValidationError`, nothing was written."""

    def __init__(self, message: str, *, interlock: str | None = None) -> None:
        super().__init__(message)
        self.interlock = interlock


class CloudError(AgentError):
    """A Supabase call failed. `code` is the PostgREST (PGRSTxxx) or SQLSTATE code, when known."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(f"{message} ({code})" if code else message)
        self.code = code


class CloudTransientError(CloudError):
    """Worth retrying later: Supabase unreachable, timed out, overloaded, or a transient database condition."""


class CloudPermanentError(CloudError):
    """The request is wrong (constraint, permission, unknown table…): retrying it unchanged cannot succeed."""


class CloudAuthError(CloudError):
    """Supabase refused the key itself: expired, revoked, signed with another secret, or no key at all.

    Not a property of the request, so never a reason to quarantine a record: every call with this key fails
    alike until an operator configures a valid one (or the project's secret is restored). A refusal of one
    row by row-level security (SQLSTATE 42501) is a `CloudPermanentError`, not this (agent/cloud/errors.py)."""


class RecipeError(AgentError):
    """A recipe is invalid or cannot run."""


class CommandError(AgentError):
    """A command is malformed or not allowed now."""


class TransitionError(AgentError):
    """An illegal state-machine transition was requested."""
