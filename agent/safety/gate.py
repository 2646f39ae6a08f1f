"""The one path from the agent to the PLC's outputs: every write passes `WriteGate.write`.

Recipe steps, set_parameter commands, the CLI's `plc write`, the safe state and the watchdog all write here, so
a rule added here protects every path (a test fails if any other module of the agent writes to a `PlcDevice`).
A write is, in order:

1. static rules (`rules.check_write`): writable, type, range, whole numbers for integers, finite and sane
   numbers, pulse valves opened only by a valve step, the watchdog register the watchdog's alone;
2. authority: only the machine's owner moves an output away from its safe state (`may_write`), and nothing at
   all is written while another agent owns the machine (`fenced`; agent.safety.fence);
3. permits (`interlocks`): the permits guarding the key are checked on values read from the PLC just before
   (never a cached frame); a write toward the safe state (valve closed, setpoint 0) is never refused. A
   PLC-timed pulse's trigger is guarded by its valve's permits as well as its own (it opens that valve);
4. the write itself through `PlcDevice`, read back when asked.

A run writes through a `RunPort` bound to the map it started with, so a map edited mid-run never changes
which coil the run opens or closes. The safe state covers every valve of every map involved. When a close or a
safe-state write fails, `safe_state_pending` is raised: the watchdog duty stops kicking (the PLC then forces
its own safe state within its watchdog timeout) and keeps re-applying the safe state until the PLC confirms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from loguru import logger

from agent.errors import InterlockError
from agent.plc import Parameter, PlcDevice, PulseRegisters, RegisterMap, Value, valve_of_trigger
from agent.recipes import SafeStateResult, safe_state_writes
from agent.safety.interlocks import InterlockSet, Violation
from agent.safety.rules import WATCHDOG_KEY, WritePurpose, check_write, is_safe_value

__all__ = ["GateStats", "RunPort", "WriteGate"]


@dataclass
class GateStats:
    """What the gate did since start (for /metrics and /health)."""

    writes: int = 0
    #: Writes by purpose (a standby's only writes are its claims: `ownership`).
    by_purpose: dict[str, int] = field(default_factory=dict)
    refused: int = 0
    interlock_blocks: int = 0
    last_refusal: str | None = None


class WriteGate:
    """Owns the machine's write rules; ``await gate.write(key, value, purpose=WritePurpose.OPERATOR)``."""

    def __init__(
        self,
        device: PlcDevice,
        *,
        interlocks: InterlockSet | None = None,
        may_write: Callable[[], bool] = lambda: True,
        fenced: Callable[[], bool] = lambda: False,
    ) -> None:
        self.device = device
        self.interlocks = interlocks or InterlockSet()
        #: This agent owns the machine (moves outputs away from their safe value only then).
        self.may_write = may_write
        #: Another agent owns the machine: nothing at all is written (not even a safe state), but a claim.
        self.fenced = fenced
        self.stats = GateStats()
        #: Set when the interlocks are unknown (none could be loaded): every guarded write is refused with it.
        self.blocked_reason: str | None = None
        #: A close or safe-state write failed and the PLC has not confirmed the safe state since.
        self.safe_state_pending = False
        self.pending_reason = ""
        self._known_maps: list[RegisterMap] = []
        self._log = logger.bind(area="plc")

    @property
    def map(self) -> RegisterMap:
        return self.device.map

    def for_run(self, register_map: RegisterMap | None = None) -> RunPort:
        """What a recipe run may do, bound to the map it starts with."""
        return RunPort(self, register_map or self.device.map)

    # --- writes ------------------------------------------------------------------------------------

    async def write(
        self,
        key: str,
        value: object,
        *,
        purpose: WritePurpose,
        verify: bool = True,
        register_map: RegisterMap | None = None,
    ) -> Value:
        """Check and write one value; the value read back (or written, without `verify`).

        Raises `UnknownParameter`/`ValidationError` (static rules, ownership), `InterlockError` (a permit) before
        any write, `PlcError` on I/O failure, `WriteVerifyError` when the read-back differs."""
        rmap = register_map or self.device.map
        try:
            param = rmap[key]
            check_write(param, value, purpose=purpose, order=self.device.word_order)
            if purpose is not WritePurpose.OWNERSHIP and self.fenced():
                raise InterlockError("another agent owns the machine (plc.owner): this agent writes nothing")
            if (
                purpose is not WritePurpose.OWNERSHIP
                and not is_safe_value(param, value)
                and purpose is not WritePurpose.SAFE_STATE
            ):
                if not self.may_write():
                    raise InterlockError("this agent does not own the machine now: only safe-state writes pass")
                if self.blocked_reason and purpose is not WritePurpose.WATCHDOG:
                    raise InterlockError(f"{self.blocked_reason}: only safe-state writes pass until they load")
                await self._check_permits(param, value, rmap)
        except Exception as exc:
            self.stats.refused += 1
            self.stats.last_refusal = str(exc)
            raise
        result = await self.device.write(key, value, verify=verify, register_map=rmap)
        self.stats.writes += 1
        self.stats.by_purpose[purpose.value] = self.stats.by_purpose.get(purpose.value, 0) + 1
        if purpose is not WritePurpose.WATCHDOG:
            self._log.debug("write {} ← {} ({})", key, value, purpose)
        return result

    async def _check_permits(self, param: Parameter, value: object, rmap: RegisterMap) -> None:
        permits = self.interlocks.permits_for(param.key)
        coil = valve_of_trigger(param.key)
        if coil is not None:  # a trigger opens its valve: the valve's permits guard it
            permits += tuple(p for p in self.interlocks.permits_for(coil) if p not in permits)
        if not permits:
            return
        keys = sorted({k for p in permits for k in p.keys if k in rmap})
        values = dict.fromkeys((k for p in permits for k in p.keys), None) | dict(
            (await self.device.read(keys)).values if keys else {}
        )
        for permit in permits:
            failing = permit.failing(values)
            if failing:
                self.stats.interlock_blocks += 1
                violation = Violation(permit, failing)
                shown = str(value).lower() if isinstance(value, bool) else value
                raise InterlockError(f"{violation.explain()}: {param.key} ← {shown} refused", interlock=permit.name)

    async def kick_watchdog(self, counter: int) -> None:
        await self.write(WATCHDOG_KEY, counter, purpose=WritePurpose.WATCHDOG, verify=False)

    # --- the safe state ----------------------------------------------------------------------------

    def remember_map(self, register_map: RegisterMap) -> None:
        """A map that was in use (a run's, a replaced one): its valves stay in every safe state until confirmed."""
        if all(register_map is not m for m in self._known_maps):
            self._known_maps.append(register_map)

    async def apply_safe_state(self, maps: Iterable[RegisterMap] = ()) -> SafeStateResult:
        """Every pulse valve closed and MFC flow 0, for every valve any of `maps` (and the current map, and the
        maps remembered since the last confirmed safe state) names — by address, so a valve moved to another
        coil by a map edit is closed at both. Never raises for a failed write (reported), but CancelledError
        propagates. Confirmed → `safe_state_pending` cleared; else raised (the watchdog stops kicking)."""
        log = logger.bind(area="recipe")
        done: list[str] = []
        errors: list[tuple[str, str]] = []
        seen: set[tuple[str, int | None]] = set()
        for rmap in [*maps, self.device.map, *self._known_maps]:
            for key, value in safe_state_writes(rmap):
                where = (str(rmap[key].register.write_kind), rmap[key].write_address)
                if where in seen:
                    continue
                seen.add(where)
                try:
                    await self.write(key, value, purpose=WritePurpose.SAFE_STATE, register_map=rmap)
                except Exception as exc:  # CancelledError is not an Exception: it propagates
                    errors.append((key, str(exc)))
                    log.error("safe state: {} ← {} failed: {}", key, value, exc)
                else:
                    done.append(key)
        result = SafeStateResult(tuple(dict.fromkeys(done)), tuple(errors))
        if errors:
            self.note_unsafe(f"safe state not confirmed: {len(errors)} of {len(errors) + len(done)} writes failed")
        else:
            log.info("safe state confirmed: {}", ", ".join(result.done))
            self.safe_state_pending, self.pending_reason = False, ""
            self._known_maps.clear()
        return result

    def note_unsafe(self, reason: str) -> None:
        """An output may be left unsafe (a failed close): hand the machine to the PLC's watchdog."""
        if not self.safe_state_pending:
            logger.bind(area="recipe").error("{}: watchdog kicks stop so the PLC takes over", reason)
        self.safe_state_pending, self.pending_reason = True, reason


class RunPort:
    """A run's outputs (implements `agent.recipes.RunOutputs`), bound to the run's own register map."""

    def __init__(self, gate: WriteGate, register_map: RegisterMap) -> None:
        self.gate, self.map = gate, register_map
        gate.remember_map(register_map)

    async def open_valve(self, key: str) -> None:
        await self.gate.write(key, True, purpose=WritePurpose.VALVE_STEP, verify=False, register_map=self.map)

    async def close_valve(self, key: str) -> None:
        try:
            await self.gate.write(key, False, purpose=WritePurpose.VALVE_STEP, verify=False, register_map=self.map)
        except Exception:
            self.gate.note_unsafe(f"closing {key} failed")
            raise

    async def trigger_pulse(self, pulse: PulseRegisters, trigger: int) -> None:
        await self.gate.write(
            pulse.trigger, trigger, purpose=WritePurpose.VALVE_STEP, verify=False, register_map=self.map
        )

    async def cancel_pulse(self, pulse: PulseRegisters) -> None:
        """Trigger 0 (the PLC ends the pulse) and the coil closed, both attempted; the first failure raises."""
        failure: Exception | None = None
        for key, value in ((pulse.trigger, 0), (pulse.coil, False)):
            try:
                await self.gate.write(key, value, purpose=WritePurpose.VALVE_STEP, verify=False, register_map=self.map)
            except Exception as exc:  # CancelledError is not an Exception: it propagates
                failure = failure or exc
        if failure is not None:
            self.gate.note_unsafe(f"cancelling the PLC-timed pulse of {pulse.coil} failed")
            raise failure

    async def set_value(self, key: str, value: Value, *, verify: bool = True) -> Value:
        return await self.gate.write(key, value, purpose=WritePurpose.RECIPE, verify=verify, register_map=self.map)

    async def safe_state(self) -> SafeStateResult:
        return await self.gate.apply_safe_state([self.map])
