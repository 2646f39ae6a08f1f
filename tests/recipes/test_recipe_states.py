"""The executor's transition table and the safe-state list: pure tables."""

from __future__ import annotations

import itertools

import pytest
from recipe_support import agent_timed_map, map_read_only, map_without

from agent.errors import TransitionError
from agent.plc import RegisterMap, load_default_map
from agent.recipes import TRANSITIONS, State, safe_state_writes
from agent.recipes.states import check_transition

LEGAL = {
    (State.IDLE, State.RUNNING),
    (State.IDLE, State.STOPPING),
    (State.RUNNING, State.PAUSED),
    (State.RUNNING, State.STOPPING),
    (State.RUNNING, State.FINISHED),
    (State.PAUSED, State.RUNNING),
    (State.PAUSED, State.STOPPING),
    (State.STOPPING, State.FINISHED),
}
PAIRS = list(itertools.product(State, State))


def test_the_table_is_exactly_the_documented_one() -> None:
    assert {(old, new) for old, targets in TRANSITIONS.items() for new in targets} == LEGAL
    assert TRANSITIONS[State.FINISHED] == frozenset()


@pytest.mark.parametrize(("old", "new"), PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_check_transition(old: State, new: State) -> None:
    if (old, new) in LEGAL:
        check_transition(old, new)
    else:
        with pytest.raises(TransitionError, match=f"cannot go {old} → {new}"):
            check_transition(old, new)


VALVES_CLOSED = [(f"valve_{n}.state", False) for n in range(1, 7)]
PULSES_CANCELLED = [(f"valve_{n}.pulse_trigger", 0) for n in range(1, 7)]
MFC_OFF = ("mfc_1.flow_sp", 0.0)


@pytest.mark.parametrize(
    ("register_map", "expected"),
    [
        (load_default_map(), [*PULSES_CANCELLED, *VALVES_CLOSED, MFC_OFF]),
        (map_without("mfc_1.flow_sp"), [*PULSES_CANCELLED, *VALVES_CLOSED]),
        (
            map_read_only("valve_3.state"),
            [*PULSES_CANCELLED, *VALVES_CLOSED[:2], *VALVES_CLOSED[3:], MFC_OFF],
        ),
        (agent_timed_map(), [*VALVES_CLOSED, MFC_OFF]),
        (map_without("valve_2.pulse_trigger"), [*PULSES_CANCELLED[:1], *PULSES_CANCELLED[2:], *VALVES_CLOSED, MFC_OFF]),
    ],
    ids=["default-map", "no-mfc", "read-only-valve-skipped", "agent-timed-map", "a-valve-without-trigger"],
)
def test_safe_state_writes(register_map: RegisterMap, expected: list[tuple[str, object]]) -> None:
    writes = safe_state_writes(register_map)
    assert list(writes) == expected
    assert not any("heater" in key for key, _ in writes)  # heaters untouched
