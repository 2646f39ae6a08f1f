"""Property: whatever a set_parameter command or a recipe's parameter step asks for, nothing outside the machine's
rules reaches the PLC. Random keys (mapped ones, pulse valves, the watchdog, and junk) and random values (bools,
integers up to thousands of digits, floats incl. NaN, ±inf and subnormals, text, None) go through a real
`WriteGate`, with the seeded interlocks, over Modbus TCP to the simulator. After every example, read from the
simulator's own memory: no pulse valve is open, the watchdog register never moved, every writable holding
register is within its min/max; and every refusal was a `ValidationError`.

CI runs it derandomized (the "ci" profile in tests/conftest.py); locally it explores new examples each run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from agent.errors import ValidationError
from agent.plc import DataType, Parameter, PlcDevice, RegisterKind, Value, load_default_map
from agent.plc.sim import Simulator
from agent.recipes import is_pulse_valve
from agent.safety import OWNER_KEY, WATCHDOG_KEY, WriteGate, WritePurpose, parse_interlocks
from tests.safety.safety_support import SEED_ROWS

MAP = load_default_map()
KEYS = [p.key for p in MAP]
PULSE_VALVES = [k for k in KEYS if is_pulse_valve(k)]
WRITABLE_HOLDING = [p for p in MAP if p.writable and p.register is RegisterKind.HOLDING]
WRITABLE = [p.key for p in MAP if p.writable]
WATCHDOG_MARK = 54321
OWNER_MARK = 424242  # likewise for the ownership register

keys = st.one_of(
    st.sampled_from(KEYS),
    st.sampled_from([*PULSE_VALVES, WATCHDOG_KEY, OWNER_KEY, "valve_7.state", "plc.watchdog ", "VALVE_1.STATE"]),
    st.text(max_size=40),
)
values = st.one_of(
    st.sampled_from([True, False, 0, 1, 0.0, 1.0, -0.0, -1, 2]),
    st.integers(),
    st.builds(lambda exponent, sign: sign * 10**exponent, st.integers(0, 5000), st.sampled_from([1, -1])),
    st.floats(),  # NaN and ±inf included
    st.floats(min_value=-1e-300, max_value=1e-300),
    st.sampled_from([math.nan, -math.nan, float("1e400"), float("-1e400"), 1e308, 5e-324, 1e15, 1e16, 10**5000]),
    st.floats(min_value=-1000, max_value=1000),
    st.text(max_size=10),
    st.none(),
)
#: What neither a command nor a recipe's parameter step may move, whatever the value: the pulse valves, the watchdog.
forbidden = st.sampled_from([WATCHDOG_KEY, OWNER_KEY, *PULSE_VALVES])
purposes = st.sampled_from([WritePurpose.OPERATOR, WritePurpose.RECIPE])


def near_range(param: Parameter) -> st.SearchStrategy[tuple[str, object]]:
    """A writable parameter with a value around its range (10 % either side): most writes that pass go here."""
    if param.data_type is DataType.BOOL:
        return st.tuples(st.just(param.key), st.sampled_from([True, False, 0, 1]))
    low, high = param.min_value or 0.0, param.max_value or 1000.0
    margin = (high - low) / 10
    numbers = st.floats(low - margin, high + margin) | st.integers(math.floor(low - margin), math.ceil(high + margin))
    return st.tuples(st.just(param.key), numbers)


plausible = st.sampled_from([p for p in MAP if p.writable]).flatmap(near_range)  # mostly accepted
writes = st.lists(
    st.one_of(
        st.tuples(keys, values, purposes),  # anything to anything
        st.tuples(st.sampled_from(WRITABLE), values, purposes),  # hostile values at the real outputs
        st.tuples(forbidden, st.sampled_from([True, 1, 1.0]) | st.integers(0, 65535), purposes),
        st.builds(lambda kv, purpose: (*kv, purpose), plausible, purposes),
    ),
    min_size=1,
    max_size=5,
)


def shown(value: Any) -> str:
    """repr() of a 5,001-digit integer raises ValueError (Python's digit limit): say what it is instead."""
    try:
        return repr(value)[:80]
    except ValueError:
        return f"<int of {value.bit_length()} bits>"


def at_plc(sim: Simulator, key: str) -> Value:
    return sim.image.get(sim.register_map[key])


def within(value: Value, low: float | None, high: float | None) -> bool:
    number = float(value)
    return math.isfinite(number) and (low is None or number >= low) and (high is None or number <= high)


@dataclass(frozen=True)
class Outputs:
    """The simulator's coils and holding registers as the test found them: each example starts from here, so a
    failing example does not leak into the next one (and hypothesis can shrink it reliably)."""

    coils: list[bool] = field(repr=False)
    holding: list[int] = field(repr=False)

    def restore(self, sim: Simulator) -> None:
        sim.image.bits[RegisterKind.COIL][:] = self.coils
        sim.image.words[RegisterKind.HOLDING][:] = self.holding


@pytest.fixture
def outputs(simulator: Simulator) -> Outputs:
    # a watchdog value no write is likely to repeat, so that any write to the register shows
    simulator.image.set(simulator.register_map[WATCHDOG_KEY], WATCHDOG_MARK)
    simulator.image.set(simulator.register_map[OWNER_KEY], OWNER_MARK)
    return Outputs(list(simulator.image.bits[RegisterKind.COIL]), list(simulator.image.words[RegisterKind.HOLDING]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests=writes)
async def test_no_input_writes_outside_the_rules(
    simulator: Simulator, device: PlcDevice, outputs: Outputs, requests: list[tuple[str, object, WritePurpose]]
) -> None:
    outputs.restore(simulator)
    seeded, problems = parse_interlocks(SEED_ROWS)
    assert problems == []
    gate = WriteGate(device, interlocks=seeded)
    for key, value, purpose in requests:
        try:
            await gate.write(key, value, purpose=purpose)
        except ValidationError as exc:  # refused before any write: the one acceptable way to say no
            event(f"refused: {type(exc).__name__}")  # --hypothesis-show-statistics shows the mix
        except Exception as exc:  # anything else escaping the gate is a bug (e.g. OverflowError)
            raise AssertionError(f"{key!r} ← {shown(value)} ({purpose}): {type(exc).__name__}: {exc}") from exc
        else:
            event("written")

    assert [k for k in PULSE_VALVES if at_plc(simulator, k)] == [], "a pulse valve was opened"
    assert at_plc(simulator, WATCHDOG_KEY) == WATCHDOG_MARK, "the watchdog register moved"
    assert at_plc(simulator, OWNER_KEY) == OWNER_MARK, "the ownership register moved"
    outside = [
        (p.key, at_plc(simulator, p.key))
        for p in WRITABLE_HOLDING
        if not within(at_plc(simulator, p.key), p.min_value, p.max_value)
    ]
    assert outside == [], f"holding registers outside their range: {outside}"
    assert gate.stats.writes + gate.stats.refused == len(requests)
