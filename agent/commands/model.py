"""Commands as the dashboard inserts them, parsed and checked before anything acts on them. Pure.

A row of `machine_commands` becomes a `Command` with a typed payload, or a `CommandError` whose message is
the exact reason written back to the row (status `rejected`): the dashboard shows it to the engineer. The
reason quotes the input clipped and is at most `MAX_ERROR_CHARS` long; keys, reasons and numbers are bounded
(`agent.limits`): a `1e400` or a 5,000-digit value is refused here, not left to overflow at the PLC.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import pydantic

from agent.errors import CommandError
from agent.limits import MAX_ERROR_CHARS, MAX_KEY_CHARS, MAX_REASON_CHARS
from agent.numbers import check_number
from agent.quoting import clip, quote

__all__ = [
    "AckAlarmPayload",
    "Command",
    "CommandType",
    "NoPayload",
    "SetParameterPayload",
    "StartRecipePayload",
    "parse_command",
]


class CommandType(StrEnum):
    START_RECIPE = "start_recipe"
    STOP_RECIPE = "stop_recipe"
    PAUSE_RECIPE = "pause_recipe"
    RESUME_RECIPE = "resume_recipe"
    SET_PARAMETER = "set_parameter"
    ACK_ALARM = "ack_alarm"


class _Payload(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


class StartRecipePayload(_Payload):
    recipe_id: uuid.UUID


class SetParameterPayload(_Payload):
    key: str = pydantic.Field(min_length=1, max_length=MAX_KEY_CHARS)
    value: bool | int | float  # bool first: JSON true must not become 1

    @pydantic.field_validator("value", mode="before")
    @classmethod
    def _json_scalar(cls, value: object) -> object:
        if not isinstance(value, bool | int | float):  # no "12" strings: the dashboard sends numbers
            raise ValueError(f"must be a number or a boolean, got {type(value).__name__}")
        return check_number(value)


class AckAlarmPayload(_Payload):
    """One alarm by id, or every unacknowledged one with "all"."""

    alarm_id: str

    @pydantic.field_validator("alarm_id", mode="before")
    @classmethod
    def _id_or_all(cls, value: object) -> object:
        if value == "all":
            return value
        if not isinstance(value, str):
            raise ValueError(f'must be an alarm id (a UUID) or "all", got {type(value).__name__}')
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise ValueError(f'must be an alarm id (a UUID) or "all", got {quote(value)}') from None


class NoPayload(_Payload):
    """stop/pause/resume take nothing but an optional free-text reason for the run log."""

    reason: str | None = pydantic.Field(default=None, max_length=MAX_REASON_CHARS)


_TYPES = frozenset(CommandType)
_PAYLOADS: dict[CommandType, type[_Payload]] = {
    CommandType.START_RECIPE: StartRecipePayload,
    CommandType.SET_PARAMETER: SetParameterPayload,
    CommandType.STOP_RECIPE: NoPayload,
    CommandType.PAUSE_RECIPE: NoPayload,
    CommandType.RESUME_RECIPE: NoPayload,
    CommandType.ACK_ALARM: AckAlarmPayload,
}


@dataclass(frozen=True, slots=True)
class Command:
    id: int
    type: CommandType
    payload: Any
    created_at: datetime | None = None
    #: Who inserted it (`machine_commands.requested_by`, from the inserter's token), None if not known.
    requested_by: str | None = None


def parse_command(row: Mapping[str, Any]) -> Command:
    """A `machine_commands` row → `Command`. Raises `CommandError` naming what is wrong, all at once."""
    raw_type = row.get("type")
    if not isinstance(raw_type, str) or raw_type not in _TYPES:
        raise CommandError(f"unknown command type {quote(raw_type)}")
    kind = CommandType(raw_type)
    payload = row.get("payload")
    payload = {} if payload is None else payload
    if not isinstance(payload, Mapping):
        raise CommandError(f"{kind}: payload must be a JSON object, got {type(payload).__name__}")
    try:
        parsed = _PAYLOADS[kind].model_validate(dict(payload))
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{clip('.'.join(str(p) for p in e['loc'])) or 'payload'}: {clip(e['msg'].removeprefix('Value error, '))}"
            for e in exc.errors()
        )
        raise CommandError(clip(f"{kind}: invalid payload: {problems}", MAX_ERROR_CHARS)) from None
    created = row.get("created_at")
    return Command(
        id=int(row["id"]),
        type=kind,
        payload=parsed,
        created_at=datetime.fromisoformat(created) if isinstance(created, str) else created,
        requested_by=clip(str(row["requested_by"]), 200) if row.get("requested_by") else None,
    )
