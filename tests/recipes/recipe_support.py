"""Shared recipe data for the recipe tests: the two seeded recipes as `recipe_steps` rows (the same content
as supabase/seed.sql, without parsing SQL) and small builders for hand-written documents."""

from __future__ import annotations

import dataclasses
from typing import Any

from agent.plc import RegisterMap, load_default_map
from agent.recipes import Recipe

AL2O3_ID = "00000000-0000-4000-8000-000000000101"
LAMINATE_ID = "00000000-0000-4000-8000-000000000102"
N2 = {"gas": "N2", "flow_sccm": 20}


def _row(recipe: str, n: int, parent: int | None, seq: int, kind: str, name: str, config: dict[str, Any]) -> dict:
    def sid(k: int) -> str:
        return f"00000000-0000-4000-8000-00000000{k:04d}"

    return {
        "id": sid(n),
        "recipe_id": recipe,
        "parent_step_id": None if parent is None else sid(parent),
        "sequence": seq,
        "type": kind,
        "name": name,
        "config": config,
    }


AL2O3_RECIPE_ROW = {"id": AL2O3_ID, "name": "Al2O3 TMA/H2O 100 cycles", "version": 1, "description": "Thermal ALD"}
AL2O3_ROWS = [
    _row(AL2O3_ID, 1101, None, 0, "parameter", "Chamber to 200 °C",
         {"parameter": "chamber_heater.temperature_sp", "value": 200, "wait": {"tolerance": 2, "timeout_ms": 1800000}}),
    _row(AL2O3_ID, 1102, None, 1, "parameter", "N2 carrier flow 20 sccm",
         {"parameter": "mfc_1.flow_sp", "value": 20, "wait": {"tolerance": 1, "timeout_ms": 30000}}),
    _row(AL2O3_ID, 1103, None, 2, "purge", "Initial N2 purge", {"duration_ms": 10000, **N2}),
    _row(AL2O3_ID, 1104, None, 3, "loop", "ALD cycle", {"count": 100}),
    _row(AL2O3_ID, 1105, 1104, 0, "valve", "TMA pulse", {"valve": 1, "duration_ms": 20}),
    _row(AL2O3_ID, 1106, 1104, 1, "purge", "N2 purge after TMA", {"duration_ms": 3000, **N2}),
    _row(AL2O3_ID, 1107, 1104, 2, "valve", "H2O pulse", {"valve": 2, "duration_ms": 30}),
    _row(AL2O3_ID, 1108, 1104, 3, "purge", "N2 purge after H2O", {"duration_ms": 4000, **N2}),
    _row(AL2O3_ID, 1109, None, 4, "purge", "Final N2 purge", {"duration_ms": 15000, **N2}),
    _row(AL2O3_ID, 1110, None, 5, "wait", "Settle before unload", {"duration_ms": 1000}),
]  # fmt: skip

LAMINATE_RECIPE_ROW = {"id": LAMINATE_ID, "name": "Al2O3/ZnO nanolaminate 5x(10+10)", "version": 1}
LAMINATE_ROWS = [
    _row(LAMINATE_ID, 1201, None, 0, "parameter", "Chamber to 150 °C",
         {"parameter": "chamber_heater.temperature_sp", "value": 150, "wait": {"tolerance": 2, "timeout_ms": 1800000}}),
    _row(LAMINATE_ID, 1202, None, 1, "parameter", "N2 carrier flow 20 sccm",
         {"parameter": "mfc_1.flow_sp", "value": 20}),
    _row(LAMINATE_ID, 1203, None, 2, "purge", "Initial N2 purge", {"duration_ms": 10000, **N2}),
    _row(LAMINATE_ID, 1204, None, 3, "loop", "Bilayer", {"count": 5}),
    _row(LAMINATE_ID, 1205, 1204, 0, "loop", "Al2O3 sub-cycle", {"count": 10}),
    _row(LAMINATE_ID, 1206, 1205, 0, "valve", "TMA pulse", {"valve": 1, "duration_ms": 20}),
    _row(LAMINATE_ID, 1207, 1205, 1, "purge", "N2 purge after TMA", {"duration_ms": 3000, **N2}),
    _row(LAMINATE_ID, 1208, 1205, 2, "valve", "H2O pulse", {"valve": 2, "duration_ms": 30}),
    _row(LAMINATE_ID, 1209, 1205, 3, "purge", "N2 purge after H2O", {"duration_ms": 4000, **N2}),
    _row(LAMINATE_ID, 1210, 1204, 1, "loop", "ZnO sub-cycle", {"count": 10}),
    _row(LAMINATE_ID, 1211, 1210, 0, "valve", "DEZ pulse", {"valve": 3, "duration_ms": 25}),
    _row(LAMINATE_ID, 1212, 1210, 1, "purge", "N2 purge after DEZ", {"duration_ms": 4000, **N2}),
    _row(LAMINATE_ID, 1213, 1210, 2, "valve", "H2O pulse", {"valve": 2, "duration_ms": 30}),
    _row(LAMINATE_ID, 1214, 1210, 3, "purge", "N2 purge after H2O", {"duration_ms": 5000, **N2}),
    _row(LAMINATE_ID, 1215, None, 4, "purge", "Final N2 purge", {"duration_ms": 15000, **N2}),
]  # fmt: skip


# --- document builders ---------------------------------------------------------------------------------


def valve(n: int, ms: float, name: str = "") -> dict[str, Any]:
    return {"type": "valve", "name": name or f"V{n}", "config": {"valve": n, "duration_ms": ms}}


def purge(ms: float, name: str = "purge", **extra: Any) -> dict[str, Any]:
    return {"type": "purge", "name": name, "config": {"duration_ms": ms, **extra}}


def wait(ms: float, name: str = "wait") -> dict[str, Any]:
    return {"type": "wait", "name": name, "config": {"duration_ms": ms}}


def param(key: str, value: float | bool, name: str = "set", **wait_spec: float) -> dict[str, Any]:
    config: dict[str, Any] = {"parameter": key, "value": value}
    if wait_spec:
        config["wait"] = wait_spec
    return {"type": "parameter", "name": name, "config": config}


def loop(count: int, *steps: dict[str, Any], name: str = "loop") -> dict[str, Any]:
    return {"type": "loop", "name": name, "config": {"count": count}, "steps": list(steps)}


def step(kind: str, config: Any, name: str = "s", steps: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A raw step, for configs the typed builders cannot express."""
    out: dict[str, Any] = {"type": kind, "name": name, "config": config}
    if steps is not None:
        out["steps"] = steps
    return out


def recipe(*steps: dict[str, Any], name: str = "test recipe") -> Recipe:
    return Recipe.from_document({"name": name, "steps": list(steps)})


def map_without(*keys: str) -> RegisterMap:
    return RegisterMap.build(p for p in load_default_map() if p.key not in keys)


def agent_timed_map() -> RegisterMap:
    """The reference map without its PLC pulse timers: every valve step falls back to agent-timed pulses."""
    return RegisterMap.build(p for p in load_default_map() if ".pulse_" not in p.key)


def map_read_only(*keys: str) -> RegisterMap:
    return RegisterMap.build(
        dataclasses.replace(p, writable=False, write_address=None) if p.key in keys else p for p in load_default_map()
    )
