"""Settings: every environment variable of docs/CONTRACT.md §7, validated once at start-up.

The env var names are a contract with the deployment (compose files, production.env), so each field's
name *is* its variable name. `load_settings()` turns pydantic's errors into one line per problem and a
`ConfigError`; the CLI prints those lines and exits 2, never a traceback.
"""

from __future__ import annotations

import base64
import json
import uuid
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent.errors import ConfigError
from agent.plc.protocol import MAX_CONNECTIONS, MAX_READ_REGISTERS, WordOrder

__all__ = ["Color", "LogFormat", "PlcType", "Settings", "load_settings", "unverified_claims"]

#: ADMIN_TOKEN's minimum length: 32 characters of `openssl rand -hex 32` carry 128 bits.
MIN_ADMIN_TOKEN_CHARS = 32
Port = Annotated[int, Field(ge=1, le=65535)]
PositiveSeconds = Annotated[float, Field(gt=0)]


class PlcType(StrEnum):
    REAL = "real"
    SIMULATION = "simulation"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class Color(StrEnum):
    BLUE = "blue"
    GREEN = "green"


class Settings(BaseSettings):
    """Agent configuration. Field names are the environment variable names (docs/CONTRACT.md §7)."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True)

    SUPABASE_URL: str | None = None
    SUPABASE_KEY: SecretStr | None = None
    #: The project's API key for the gateway's `apikey` header when SUPABASE_KEY is a machine-scoped JWT on a
    #: hosted project (its gateway accepts only the project's own keys there); unset: SUPABASE_KEY is sent.
    SUPABASE_API_KEY: SecretStr | None = None
    MACHINE_ID: uuid.UUID | None = None

    #: `simulation`: the agent starts the built-in simulator and connects to it (agent/plc_setup.py).
    PLC_TYPE: PlcType = PlcType.REAL
    PLC_HOST: str = "127.0.0.1"
    PLC_PORT: Port = 502
    PLC_UNIT_ID: Annotated[int, Field(ge=0, le=247)] = 1
    PLC_WORD_ORDER: WordOrder = WordOrder.LITTLE
    PLC_TIMEOUT_S: PositiveSeconds = 1.0
    #: ≥ 2: a 32-bit value spans two registers and is never split across requests.
    PLC_BULK_READ_SIZE: Annotated[int, Field(ge=2, le=MAX_READ_REGISTERS)] = MAX_READ_REGISTERS

    PLC_MAX_GAP: Annotated[int, Field(ge=0, le=MAX_READ_REGISTERS)] = 16
    #: TCP connections to the PLC, a frame's read requests spread over them (pymodbus carries one request at a
    #: time per connection). More than 1 only where the PLC allows that many besides its other clients.
    PLC_CONNECTIONS: Annotated[int, Field(ge=1, le=MAX_CONNECTIONS)] = 1
    #: Optional register-map CSV; default is the packaged map of the reference reactor.
    PLC_MAP_FILE: Path | None = None

    PARAMETER_LOGGING_INTERVAL: PositiveSeconds = 1.0
    STATUS_LOG_INTERVAL: PositiveSeconds = 300.0
    LOG_LEVEL: str = "INFO"
    LOG_FORMAT: LogFormat = LogFormat.TEXT
    LOG_DIR: Path | None = None

    #: 0 = any free port (tests run several agents side by side); the bound port is logged and in /health.
    HTTP_PORT: Annotated[int, Field(ge=0, le=65535)] = 8000
    #: Where /health, /metrics and the admin routes listen; 127.0.0.1 behind a local HAProxy.
    HTTP_HOST: str = "0.0.0.0"
    #: The release reported by /health, metrics and heartbeats (deploy tag); default: the package version.
    AGENT_VERSION: str | None = None

    SPOOL_PATH: Path = Path("var/spool.sqlite")
    SPOOL_MAX_MB: Annotated[float, Field(gt=0)] = 512.0
    #: Least time between two telemetry requests once the spool is caught up (agent/spool/shipper.py): frames
    #: faster than this share a request. 0 = every frame on its own request, at once.
    TELEMETRY_SHIP_GAP: Annotated[float, Field(ge=0, le=5)] = 0.25
    AGENT_COLOR: Color = Color.BLUE
    ADMIN_TOKEN: SecretStr | None = None
    COMMAND_POLL_INTERVAL: PositiveSeconds = 5.0
    SHUTDOWN_TIMEOUT: PositiveSeconds = 10.0
    WATCHDOG_TIMEOUT: PositiveSeconds = 5.0

    @field_validator("LOG_LEVEL")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of TRACE, DEBUG, INFO, SUCCESS, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("ADMIN_TOKEN")
    @classmethod
    def _long_admin_token(cls, value: SecretStr | None) -> SecretStr | None:
        # The token guards hand-over, drain and activate (who commands the machine): a short one is guessable.
        if value is not None and len(value.get_secret_value()) < MIN_ADMIN_TOKEN_CHARS:
            raise ValueError(
                f"must be at least {MIN_ADMIN_TOKEN_CHARS} characters (e.g. `openssl rand -hex 32`), "
                f"got {len(value.get_secret_value())}"
            )
        return value

    @field_validator("PLC_MAP_FILE")
    @classmethod
    def _map_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    def require_cloud(self) -> None:
        """Raise `ConfigError` naming each cloud setting `run` needs but did not get."""
        missing = [
            f"{name}: required to run the agent"
            for name in ("SUPABASE_URL", "SUPABASE_KEY", "MACHINE_ID")
            if getattr(self, name) is None
        ]
        scope = self.key_machine_scope()
        if scope is not None and self.MACHINE_ID is not None and scope != str(self.MACHINE_ID):
            missing.append(f"SUPABASE_KEY: the key acts for machine {scope}, not MACHINE_ID {self.MACHINE_ID}")
        if missing:
            raise ConfigError("\n".join(missing))

    def key_machine_scope(self) -> str | None:
        """The `machine_id` claim of a machine-scoped key (supabase/migrations/*_machine_agent_role.sql), or
        None for a service-role or opaque key. Read without verifying: Supabase verifies it; this only lets a
        key copied onto the wrong machine fail at start with a clear line instead of as refused requests."""
        if self.SUPABASE_KEY is None:
            return None
        claims = unverified_claims(self.SUPABASE_KEY.get_secret_value())
        scope = claims.get("machine_id") if claims is not None else None
        return str(scope) if scope is not None else None


def unverified_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT (`header.payload.signature`, base64url JSON objects), read without verifying the
    signature (only Supabase can); None when `token` is not shaped like one.

    Why not PyJWT here: importing it loads `cryptography` (OpenSSL bindings, ~9 MB of resident memory) into an
    agent that never verifies a signature. Only `python -m agent machine key` signs one, and imports PyJWT then.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header, payload = (json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))) for part in parts[:2])
    except (ValueError, UnicodeDecodeError):  # binascii.Error and JSONDecodeError are ValueErrors
        return None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return None
    return payload


def _describe(error: ErrorDetails) -> str:
    field = ".".join(str(part) for part in error["loc"]) or "settings"
    message = error["msg"].removeprefix("Value error, ")
    given = error.get("input")
    shown = (
        ""
        if isinstance(given, dict) or field in {"SUPABASE_KEY", "SUPABASE_API_KEY", "ADMIN_TOKEN"}
        else f" (got {given!r})"
    )
    return f"{field}: {message}{shown}"


def load_settings(**overrides: Any) -> Settings:
    """Read the environment (plus `overrides`) into `Settings`.

    Raises `ConfigError` whose message has one line per invalid variable, e.g.
    ``PLC_PORT: Input should be less than or equal to 65535 (got '70000')``. Secrets are never echoed.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError("\n".join(_describe(e) for e in exc.errors())) from None
