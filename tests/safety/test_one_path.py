"""Nothing in the agent writes to the PLC except through the safety gate (docs/DESIGN.md §5 "One guarded path to
the PLC"): a static check over every module, so a new write path fails here before it reaches a tool."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

AGENT = Path(__file__).resolve().parents[2] / "agent"
#: The gate itself, and the PLC package below it (the device's own write and the connection hub's requests).
ALLOWED = {AGENT / "safety" / "gate.py"}
ALLOWED_UNDER = (AGENT / "plc",)
RAW_WRITES = {"write_bit", "write_registers", "write_coil", "write_coils", "write_register"}


def _writes(path: Path, root: Path = AGENT.parent) -> list[str]:
    """Calls that write to a PLC: `<…device…>.write(…)` or any raw Modbus write method."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = ast.unparse(node.func.value)
            if node.func.attr in RAW_WRITES or (node.func.attr == "write" and "device" in receiver.lower()):
                found.append(f"{path.relative_to(root)}:{node.lineno} {ast.unparse(node.func)}")
    return found


def _modules() -> list[Path]:
    return sorted(
        p for p in AGENT.rglob("*.py") if p not in ALLOWED and not any(p.is_relative_to(d) for d in ALLOWED_UNDER)
    )


def test_only_the_gate_writes_to_the_plc() -> None:
    assert [hit for path in _modules() for hit in _writes(path)] == []


@pytest.mark.parametrize(
    "source",
    ["await self.device.write('valve_1.state', True)", "await ctx.device.write(k, v)", "await c.write_bit(16, True)"],
    ids=["device-attribute", "step-context-device", "raw-coil-write"],
)
def test_the_check_sees_a_write_around_the_gate(tmp_path: Path, source: str) -> None:
    path = tmp_path / "probe.py"
    path.write_text(f"async def f(self, ctx, c, k, v):\n    {source}\n")
    assert _writes(path, tmp_path) == [f"probe.py:2 {source.removeprefix('await ').split('(')[0]}"]
