"""Commands as the dashboard inserts them: parsed, or refused with the reason written back to the row."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.commands import CommandType, parse_command
from agent.errors import CommandError
from agent.limits import MAX_ERROR_CHARS

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
        (
            {"id": 7, "type": "ack_alarm", "payload": {"alarm_id": RECIPE.upper()}},
            CommandType.ACK_ALARM,
            {"alarm_id": RECIPE},  # canonical form: the book's ids are lower case
        ),
        ({"id": 8, "type": "ack_alarm", "payload": {"alarm_id": "all"}}, CommandType.ACK_ALARM, {"alarm_id": "all"}),
    ],
    ids=[
        "start",
        "stop",
        "pause-no-payload",
        "resume-with-reason",
        "set-number",
        "set-bool-stays-bool",
        "ack-one",
        "ack-all",
    ],
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
        ({"id": 1, "type": "ack_alarm", "payload": {}}, "ack_alarm: invalid payload: alarm_id: Field required"),
        ({"id": 1, "type": "ack_alarm", "payload": {"alarm_id": ["all"]}}, "alarm_id: must be an alarm id"),
        ({"id": 1, "type": "ack_alarm", "payload": {"alarm_id": "ALL"}}, "or \"all\", got 'ALL'"),
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
        "ack-without-id",
        "ack-id-not-a-string",
        "ack-all-is-lower-case",
    ],
)
def test_malformed_commands_are_refused_with_a_reason(row: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(CommandError) as caught:
        parse_command(row)
    assert message in str(caught.value)


# --- bounded: numbers a register can hold, and reasons that quote the input clipped -------------------------

LONG = "x" * 100_000


def _set(value: object, key: str = "mfc_1.flow_sp") -> dict:  # type: ignore[type-arg]
    return {"id": 1, "type": "set_parameter", "payload": {"key": key, "value": value}}


FITS = "value: must fit in 64 bits (-2**63 … 2**64-1) as every PLC register does, got "


def test_requested_by_is_carried_bounded() -> None:
    row = {"id": 1, "type": "ack_alarm", "payload": {"alarm_id": "all"}}
    assert parse_command(row).requested_by is None
    assert parse_command(row | {"requested_by": "eng@fab.example"}).requested_by == "eng@fab.example"
    assert len(parse_command(row | {"requested_by": "x" * 5000}).requested_by or "") <= 200


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(float("inf"), "value: must be a finite number, got inf", id="1e400-is-inf"),
        pytest.param(float("-inf"), "value: must be a finite number, got -inf", id="minus-inf"),
        pytest.param(float("nan"), "value: must be a finite number, got nan", id="nan"),
        pytest.param(10**400, FITS + "an integer of about 401 digits", id="1e400-from-jsonb"),
        pytest.param(10**5000, FITS + "an integer of about 5,001 digits", id="5001-digits"),
        pytest.param(2**64, FITS + "18446744073709551616", id="uint64-max-plus-1"),
        pytest.param(-(2**63) - 1, FITS + "-9223372036854775809", id="int64-min-minus-1"),
    ],
)
def test_a_number_no_register_can_hold_is_refused_when_parsed(value: object, message: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse_command(_set(value))
    assert str(caught.value) == f"set_parameter: invalid payload: {message}"


@pytest.mark.parametrize("value", [2**64 - 1, -(2**63), 1e308, -1e308], ids=["uint64-max", "int64-min", "big", "-big"])
def test_the_64_bit_bounds_and_large_finite_floats_parse(value: float) -> None:
    assert parse_command(_set(value)).payload.value == value  # range per parameter is the write path's rule


STOP = {"id": 1, "type": "stop_recipe"}


@pytest.mark.parametrize(
    ("row", "starts"),
    [
        pytest.param(_set(1, key=LONG), "set_parameter: invalid payload: key: String should have at most", id="key"),
        pytest.param({"id": 1, "type": LONG}, "unknown command type 'xxxx", id="type"),
        pytest.param(STOP | {"payload": {LONG: 1}}, "stop_recipe: invalid payload: xxxx", id="field-name"),
        pytest.param(
            STOP | {"payload": {"reason": LONG}},
            "stop_recipe: invalid payload: reason: String should have at most",
            id="reason",
        ),
        pytest.param(
            STOP | {"payload": {f"k{i}": 1 for i in range(10_000)}},
            "stop_recipe: invalid payload: k0: Extra",
            id="ten-thousand-fields",
        ),
        pytest.param(_set(LONG), "set_parameter: invalid payload: value: must be a number or a boolean", id="value"),
        pytest.param(
            {"id": 1, "type": "start_recipe", "payload": {"recipe_id": LONG}},
            "start_recipe: invalid payload: recipe_id: Input should be a valid UUID",
            id="recipe-id",
        ),
    ],
)
def test_a_100000_character_input_gives_a_bounded_reason(row: dict, starts: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(CommandError) as caught:
        parse_command(row)
    assert str(caught.value).startswith(starts)
    assert len(str(caught.value)) <= MAX_ERROR_CHARS


# --- property: any row parses or is refused with a bounded reason, never another exception -----------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(0, 3).map(lambda k: 10 ** (4999 + k)),  # built, not written: repr refuses 5,000 digits
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.just("x" * 100_000),
)
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=2)
)
KEYS = st.sampled_from(["key", "value", "recipe_id", "reason", "x" * 100_000]) | st.text(max_size=10)
TYPES = st.sampled_from(list(CommandType)) | st.text(max_size=20) | SCALARS


@settings(max_examples=300, deadline=None)
@given(TYPES, st.dictionaries(KEYS, VALUES, max_size=3) | VALUES)
def test_any_row_parses_or_is_refused_with_a_bounded_reason(kind: object, payload: object) -> None:
    try:
        command = parse_command({"id": 1, "type": kind, "payload": payload})
    except CommandError as exc:
        assert len(str(exc)) <= MAX_ERROR_CHARS
    else:
        if command.type is CommandType.SET_PARAMETER:  # what passes is a number a register could hold
            value = command.payload.value
            assert isinstance(value, bool) or (-(2**63) <= value <= 2**64 - 1 and value == value)
