"""Shared data for the safety tests: the seeded interlocks of the reference reactor, written literally as the rows
PostgREST returns for supabase/seed.sql (`targets` text[] → a list, `conditions` jsonb → a list of objects), so
no test parses SQL."""

from __future__ import annotations

from typing import Any

MACHINE = "00000000-0000-4000-8000-000000000001"


def seed_row(
    n: int, name: str, kind: str, targets: list[str], conditions: list[dict[str, Any]], **rest: Any
) -> dict[str, Any]:
    return {
        "id": f"00000000-0000-4000-8000-00000000020{n}",
        "machine_id": MACHINE,
        "name": name,
        "kind": kind,
        "enabled": True,
        "targets": targets,
        "conditions": conditions,
        "hold_ms": rest.get("hold_ms", 0),
        "action": rest.get("action", "abort"),
        "description": None,
    }


SEED_ROWS = [
    seed_row(1, "pulse-needs-vacuum", "permit", ["valve_*.state"],
             [{"key": "pressure_gauge_1.pressure", "op": "lt", "value": 1000},
              {"key": "vacuum_pump.running", "op": "eq", "value": True}]),
    seed_row(2, "pulse-needs-heaters-in-window", "permit", ["valve_*.state"],
             [{"key": "chamber_heater.temperature", "op": "between", "low": 0, "high": 350},
              {"key": "precursor_1_heater.temperature", "op": "between", "low": 0, "high": 200}]),
    seed_row(3, "flow-needs-n2", "permit", ["mfc_1.flow_sp"],
             [{"key": "n2_generator.fault", "op": "eq", "value": False}]),
    seed_row(4, "chamber-overpressure", "trip", [],
             [{"key": "pressure_gauge_1.pressure", "op": "le", "value": 5000}], hold_ms=2000),
    seed_row(5, "chamber-overtemperature", "trip", [],
             [{"key": "chamber_heater.temperature", "op": "le", "value": 380}]),
]  # fmt: skip
