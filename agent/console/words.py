"""How the console says things: a plan step in words, a value with its unit, a duration. Pure.

    step_text(step, {"4": "ALD cycle"})  →  "ALD cycle 37/100 · H2O pulse 60 ms"

An operator reads words, not `{'path': '4/4', 'type': 'purge', …}`: the enclosing loops with their iteration,
then the step's name and what it does (a valve's pulse, a purge's time and flow, a setpoint and its wait).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from agent.recipes import ParameterConfig, PlanStep, PurgeConfig, ValveConfig

__all__ = ["component_title", "duration_text", "loops_text", "number_text", "step_text"]

_ACRONYMS = {"mfc": "MFC", "plc": "PLC", "n2": "N2", "pid": "PID", "pg1": "PG1", "pg2": "PG2", "sp": "SP"}


def component_title(component: str) -> str:
    """`chamber_heater` → "Chamber heater", `mfc_1` → "MFC 1"."""
    words = [_ACRONYMS.get(w, w) for w in component.split("_") if w]
    if not words:
        return component
    first = words[0]
    return " ".join([first if first.isupper() else first.capitalize(), *words[1:]])


def number_text(value: float) -> str:
    """A reading as a person writes it: no float noise, precision by magnitude (1234 → "1,234", 0.5 → "0.5")."""
    if not math.isfinite(value):
        return "—"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def duration_text(ms: float) -> str:
    """60 → "60 ms", 62.66 → "62.7 ms", 3000 → "3 s", 90000 → "1 min 30 s", 5400000 → "1 h 30 min"."""
    if ms < 1000:
        return f"{ms:.0f} ms" if float(ms).is_integer() else f"{ms:.1f} ms"
    s = ms / 1000
    if s < 60:
        return f"{number_text(round(s, 1))} s"
    minutes, seconds = divmod(round(s), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def loops_text(loops: tuple[tuple[str, int, int], ...]) -> str:
    """(("ALD cycle", 37, 100),) → "ALD cycle 37/100"; nested loops joined by " · "."""
    return " · ".join(f"{name or 'Loop'} {i}/{n}" for name, i, n in loops)


def _action_text(step: PlanStep, unit_of: Callable[[str], str]) -> str:
    config = step.config
    name = step.name or str(step.type).capitalize()
    if isinstance(config, ValveConfig):
        return f"{name} {duration_text(config.duration_ms)}"
    if isinstance(config, PurgeConfig):
        flow = f" at {number_text(config.flow_sccm)} sccm" if config.flow_sccm is not None else ""
        gas = f" {config.gas}" if config.gas and config.gas not in name else ""
        return f"{name}{gas} {duration_text(config.duration_ms)}{flow}"
    if isinstance(config, ParameterConfig):
        unit = unit_of(config.parameter)
        value = number_text(float(config.value)) if isinstance(config.value, int | float) else str(config.value)
        target = f"{value} {unit}".rstrip()
        wait = f", waiting for ±{number_text(config.wait.tolerance)}" if config.wait is not None else ""
        return f"{name} → {target}{wait}"
    return f"{name} {duration_text(config.duration_ms)}"  # WaitConfig: the union's last member


def step_text(step: PlanStep, loop_names: Mapping[str, str], *, unit_of: Callable[[str], str] = lambda _key: "") -> str:
    """The step in words, with its enclosing loops (named from `loop_names`, loop path → name)."""
    loops = tuple((loop_names.get(lp.path, "Loop"), lp.iteration, lp.count) for lp in step.loops)
    action = _action_text(step, unit_of)
    return f"{loops_text(loops)} · {action}" if loops else action
