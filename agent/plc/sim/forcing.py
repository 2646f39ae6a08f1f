"""Driving the simulator's values by hand: `--force KEY=VALUE` at start, and a force file while it runs.

A process engineer trying the alarms (or a browser test of the console) needs a chamber temperature out of range
on demand, in a simulator that runs as its own process (`python -m agent simulate`, the embedded default). The
force file is a JSON object `{key: value}`; the simulator re-reads it whenever it changes and pins each key
(`Simulator.force`), releasing keys that leave the file or whose value is null:

    echo '{"chamber_heater.temperature": 360}' > var/embedded/sim-force.json   # a heater runaway
    echo '{}' > var/embedded/sim-force.json                                     # physics again

A file that is not such an object, or names a key the map lacks, is refused with one log line and changes
nothing (the forces in effect stay).
"""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

from loguru import logger

from agent.plc.sim.server import Simulator

__all__ = ["follow_force_file", "parse_force", "parse_forces"]

Forced = float | bool
CHECK_EVERY_S = 0.2


def parse_force(text: str) -> tuple[str, Forced]:
    """`KEY=VALUE` (a JSON number or true/false) → (key, value). Raises ValueError naming the problem."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--force takes KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise ValueError(f"--force {key}: VALUE must be a JSON number or true/false, got {raw!r}") from None
    return key, _checked(key, value)


def _checked(key: str, value: object) -> Forced:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    raise ValueError(f"{key}: a forced value is a finite number or true/false, got {value!r}")


def parse_forces(text: str, keys: set[str]) -> dict[str, Forced | None]:
    """A force file's text → {key: value, or None to release}. Raises ValueError naming the problem."""
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"must be a JSON object {{key: value}}, got a JSON {type(data).__name__}")
    unknown = sorted(k for k in data if k not in keys)
    if unknown:
        raise ValueError(f"not in the simulator's register map: {', '.join(unknown)}")
    return {k: None if v is None else _checked(k, v) for k, v in data.items()}


async def follow_force_file(simulator: Simulator, path: Path, *, every_s: float = CHECK_EVERY_S) -> None:
    """Apply `path` now and after every change (checked every `every_s`). Runs until cancelled."""
    keys = {p.key for p in simulator.register_map}
    applied: set[str] = set()
    seen: tuple[float, int] | None = None
    while True:
        stamp = await asyncio.to_thread(_stamp, path)
        if stamp != seen:
            seen = stamp
            text = "" if stamp is None else await asyncio.to_thread(path.read_text)
            try:
                forces = parse_forces(text, keys)
            except ValueError as exc:
                logger.error("simulator: force file {} refused (forces unchanged): {}", path, exc)
            else:
                for key in applied - forces.keys():
                    simulator.force(key, None)
                for key, value in forces.items():
                    simulator.force(key, value)
                applied = {k for k, v in forces.items() if v is not None}
                logger.info("simulator: forced {}", {k: forces[k] for k in sorted(applied)} or "nothing")
        await asyncio.sleep(every_s)


def _stamp(path: Path) -> tuple[float, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_mtime, st.st_size
