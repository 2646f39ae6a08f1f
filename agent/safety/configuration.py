"""Which register map and which interlocks are in force, and when a change may take effect.

- **A run owns its map.** A new map (the dashboard edited `parameters`) takes effect at once when no recipe
  runs, and after the run otherwise — never under it: the run keeps opening and closing the coils it started
  with, and its safe state covers the valves of both maps (the gate remembers the replaced map until a safe
  state is confirmed).
- **A map or interlock set the agent cannot use is refused with a reason**, never a crash: the old one is kept,
  the reason shows in /health (degraded), /metrics and the heartbeat, until a usable one arrives.
- Interlocks apply at once, run or not (a tightened rule must not wait). With no usable set ever loaded, every
  guarded write is refused (fail-safe) until one loads.
"""

from __future__ import annotations

from loguru import logger

from agent.parameters import InterlockRows, MapSource
from agent.plc import PlcDevice
from agent.safety.gate import WriteGate
from agent.safety.interlocks import InterlockSet, parse_interlocks
from agent.safety.runs import RunController
from agent.sampling import TelemetryPublisher

__all__ = ["InterlockGuard", "MapGuard"]


class MapGuard:
    def __init__(
        self,
        *,
        device: PlcDevice,
        gate: WriteGate,
        publisher: TelemetryPublisher,
        runs: RunController,
        origin: str,
    ) -> None:
        self.device, self.gate, self.publisher, self.runs = device, gate, publisher, runs
        self.origin = origin
        self.problem: str | None = None
        self.refusals = 0
        self.pending: MapSource | None = None
        runs.on_finished.append(self._apply_pending)

    def offer(self, source: MapSource) -> None:
        """A freshly loaded map: refused (with its problem), held until the run ends, or applied now."""
        if source.problem:
            self.refuse(source.problem)
            return
        self.problem = None
        if self.runs.active is not None:
            self.pending = source
            logger.warning("parameters: map changed during run {}: it applies when the run ends", self.runs.active.id)
            return
        self._apply(source)

    def refuse(self, problem: str) -> None:
        self.problem = problem
        self.refusals += 1
        logger.error("parameters: {} (keeping the map in use: {} parameters)", problem, len(self.device.map))

    def _apply_pending(self) -> None:
        source, self.pending = self.pending, None
        if source is not None:
            self._apply(source)

    def _apply(self, source: MapSource) -> None:
        self.gate.remember_map(self.device.map)
        self.device.set_map(source.register_map)
        self.publisher.set_map(source.register_map, source.parameter_ids)
        self.origin = source.origin
        logger.info("parameters: map in use ({} parameters, {})", len(source.register_map), source.origin)


class InterlockGuard:
    def __init__(self, gate: WriteGate) -> None:
        self.gate = gate
        self.problem: str | None = None
        self.origin = "none"
        self.loaded = False

    @property
    def interlocks(self) -> InterlockSet:
        return self.gate.interlocks

    def offer(self, source: InterlockRows) -> None:
        interlocks, problems = parse_interlocks(source.rows)
        if source.problem or problems:
            self.problem = source.problem or "interlocks refused: " + "; ".join(problems)[:500]
            kept = "the set in use" if self.loaded else "every guarded write blocked"
            logger.error("{} (keeping {})", self.problem, kept)
            if not self.loaded:
                self.gate.blocked_reason = self.problem
            return
        self.gate.interlocks, self.gate.blocked_reason = interlocks, None
        self.loaded, self.origin = True, source.origin
        missing = interlocks.missing_keys(self.gate.map)
        self.problem = None
        if missing:
            self.problem = f"interlocks name unmapped keys (they block what they guard): {', '.join(missing)}"
        logger.info("interlocks: {} in force ({})", len(interlocks), source.origin)
