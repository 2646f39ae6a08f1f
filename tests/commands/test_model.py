"""Commands as the dashboard inserts them: parsed, or refused with the reason written back to the row."""

from __future__ import annotations

import uuid

import pytest

from agent.commands import CommandType, parse_command
from agent.errors import CommandError

RECIPE = str(uuid.uuid4())


@pytest.mark.parametrize(
    ("row", "kind", "payload"),
    [
        (
            {"id": 1, "type": "start_recipe", "payload": {"recipe_id": RECIPE}},
            CommandType.START_RECIPE,
            {"recipe_id": uuid.UUID(RECIPE)},
        ),
        ({"id": 2, "type": "stop_recipe", "payload": {}}, CommandType.STOP_RECIPE, {"reason": None}),
        ({"id": 3, "type": "pause_recipe"}, CommandType.PAUSE_RECIPE, {"reason": None}),
        (
            {"id": 4, "type": "resume_recipe", "payload": {"reason": "door closed"}},
            CommandType.RESUME_RECIPE,
            {"reason": "door closed"},
        ),
        (
            {"id": 5, "type": "set_parameter", "payload": {"key": "mfc_1.flow_sp", "value": 20}},
            CommandType.SET_PARAMETER,
            {"key": "mfc_1.flow_sp", "value": 20},
        ),
        (
            {"id": 6, "type": "set_parameter", "payload": {"key": "valve_1.state", "value": True}},
            CommandType.SET_PARAMETER,
            {"key": "valve_1.state", "value": True},
        ),
    ],
    ids=["start", "stop", "pause-no-payload", "resume-with-reason", "set-number", "set-bool-stays-bool"],
)
def test_valid_commands(row: dict, kind: CommandType, payload: dict) -> None:  # type: ignore[type-arg]
    command = parse_command(row)
    assert command.type is kind
    assert command.payload.model_dump() == payload
    assert type(command.payload.model_dump().get("value", 0)) is type(payload.get("value", 0))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": 1, "type": "launch"}, "unknown command type 'launch'"),
        ({"id": 1, "type": "start_recipe", "payload": {}}, "start_recipe: invalid payload: recipe_id: Field required"),
        ({"id": 1, "type": "start_recipe", "payload": {"recipe_id": "abc"}}, "recipe_id: Input should be a valid UUID"),
        (
            {"id": 1, "type": "set_parameter", "payload": {"key": "a.b", "value": "12"}},
            "value: must be a number or a boolean, got str",
        ),
        ({"id": 1, "type": "set_parameter", "payload": {"key": "", "value": 1}}, "key: String should have at least 1"),
        ({"id": 1, "type": "set_parameter", "payload": {"key": "a.b"}}, "value: Field required"),
        ({"id": 1, "type": "stop_recipe", "payload": {"force": True}}, "force: Extra inputs are not permitted"),
        ({"id": 1, "type": "pause_recipe", "payload": [1]}, "payload must be a JSON object, got list"),
    ],
    ids=[
        "unknown-type",
        "missing-recipe",
        "bad-uuid",
        "string-value",
        "empty-key",
        "missing-value",
        "extra-field",
        "payload-not-object",
    ],
)
def test_malformed_commands_are_refused_with_a_reason(row: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(CommandError) as caught:
        parse_command(row)
    assert message in str(caught.value)
