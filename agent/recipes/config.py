"""Typed step configs: exactly the `recipe_steps.config` contract (docs/CONTRACT.md §2, `recipe_step_config_is_valid`).

Pure pydantic models, strict (a string is not a number, true is not 1) and closed (an unknown field is a
typo to report, not to ignore: a misspelt `flow_sccm` would otherwise drop the carrier flow silently).
`parse_config` is the seam where pydantic's errors become one readable sentence each, quoting the input
clipped (`agent.quoting`). Durations, loop counts and numbers are bounded (`agent.limits`, which says how each
bound was chosen): a 10^12 ms pulse or a 5,000-digit setpoint is a config problem like any other.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from agent.limits import (
    MAX_KEY_CHARS,
    MAX_LOOP_COUNT,
    MAX_PURGE_MS,
    MAX_VALVE_NUMBER,
    MAX_VALVE_PULSE_MS,
    MAX_WAIT_MS,
    MAX_WAIT_TIMEOUT_MS,
)
from agent.numbers import check_number
from agent.quoting import quote

__all__ = [
    "CONFIG_MODELS",
    "LoopConfig",
    "ParameterConfig",
    "PurgeConfig",
    "StepConfig",
    "StepType",
    "ValveConfig",
    "WaitConfig",
    "WaitSpec",
    "parse_config",
]


class StepType(StrEnum):
    VALVE = "valve"
    PURGE = "purge"
    PARAMETER = "parameter"
    WAIT = "wait"
    LOOP = "loop"


def integral_number(value: object) -> object:
    """JSON has one number type: accept 3.0 where an integer is expected (PostgREST may send it), not 3.5."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


Integer = Annotated[int, BeforeValidator(integral_number)]
_STRICT = ConfigDict(strict=True, extra="forbid", frozen=True)


class ValveConfig(BaseModel):
    """Open pulse valve `valve` (→ `valve_N.state`) for `duration_ms` (at most `MAX_VALVE_PULSE_MS`), then
    close it."""

    model_config = _STRICT
    valve: Integer = Field(ge=1, le=MAX_VALVE_NUMBER)
    duration_ms: float = Field(gt=0, le=MAX_VALVE_PULSE_MS, allow_inf_nan=False)


class PurgeConfig(BaseModel):
    """Hold for `duration_ms`; with `flow_sccm`, set the carrier MFC first. `gas` is informational."""

    model_config = _STRICT
    duration_ms: float = Field(gt=0, le=MAX_PURGE_MS, allow_inf_nan=False)
    gas: str | None = Field(default=None, max_length=MAX_KEY_CHARS)
    flow_sccm: float | None = Field(default=None, ge=0, allow_inf_nan=False)


class WaitSpec(BaseModel):
    """After a setpoint write, wait until its process value is within `tolerance`, at most `timeout_ms`."""

    model_config = _STRICT
    tolerance: float = Field(ge=0, allow_inf_nan=False)
    timeout_ms: float = Field(gt=0, le=MAX_WAIT_TIMEOUT_MS, allow_inf_nan=False)


class ParameterConfig(BaseModel):
    """Write `value` to parameter `parameter` (a map key), optionally waiting for the process value."""

    model_config = _STRICT
    parameter: str = Field(min_length=1, max_length=MAX_KEY_CHARS)
    value: Any
    wait: WaitSpec | None = None

    @field_validator("value", mode="before")
    @classmethod
    def _number_or_bool(cls, value: object) -> object:
        if isinstance(value, bool | int | float):
            return check_number(value)
        raise ValueError(f"must be a finite number or true/false, got {quote(value)}")


class WaitConfig(BaseModel):
    """Hold for `duration_ms` (0 allowed: a named no-op marker)."""

    model_config = _STRICT
    duration_ms: float = Field(ge=0, le=MAX_WAIT_MS, allow_inf_nan=False)


class LoopConfig(BaseModel):
    """Run the children `count` times. There is no default: a missing count is an error, never 1."""

    model_config = _STRICT
    count: Integer = Field(ge=1, le=MAX_LOOP_COUNT)


StepConfig = ValveConfig | PurgeConfig | ParameterConfig | WaitConfig | LoopConfig
CONFIG_MODELS: dict[StepType, type[StepConfig]] = {
    StepType.VALVE: ValveConfig,
    StepType.PURGE: PurgeConfig,
    StepType.PARAMETER: ParameterConfig,
    StepType.WAIT: WaitConfig,
    StepType.LOOP: LoopConfig,
}


def parse_config(step_type: StepType, config: object) -> tuple[StepConfig | None, list[str]]:
    """Typed config for `step_type`, or None and one readable message per problem (never raises)."""
    model = CONFIG_MODELS[step_type]
    if not isinstance(config, Mapping):
        return None, [f"config must be a JSON object, got {type(config).__name__}"]
    try:
        return model.model_validate(dict(config)), []
    except PydanticValidationError as exc:
        return None, [_describe(err) for err in exc.errors()]


def _describe(err: Mapping[str, Any]) -> str:
    field = ".".join(str(part) for part in err["loc"]) or "config"
    kind, value = err["type"], err.get("input")
    if kind == "missing":
        return f"{field} is missing"
    if kind == "extra_forbidden":
        return f"unknown field {quote(field)}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if msg.startswith("Input should be"):
        return f"{field} must be{msg.removeprefix('Input should be')} (got {quote(value)})"
    return f"{field}: {msg}"
