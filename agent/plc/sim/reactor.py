"""A plausible ALD reactor, good enough to exercise the agent end to end. Deterministic for a given seed.

Physics per tick (dt seconds):
- heaters: PV approaches setpoint first-order (τ = 20 s) while powered, else cools toward 25 °C (τ = 120 s),
  plus Gaussian noise; PID output ~ error, 0..100 %; rate in °C/min.
- MFC: flow follows its setpoint (τ = 0.3 s) while the N2 generator is ready, else decays to 0.
- chamber pressure (gauge 1): pumped toward a base pressure plus a flow term (τ = 1.5 s), each open pulse valve
  adds a precursor burst; without the pump (or with the exhaust valve closed) it leaks up. Gauge 2 reads
  the foreline, a fraction of the chamber.
- N2 generator becomes ready 2 s after power-on. Pump `running` follows `power_on`.
- watchdog: once the agent has written the watchdog register, if it stops changing for `watchdog_timeout_s`
  the PLC forces its safe state (all pulse valves closed, MFC setpoint 0) and raises `plc.watchdog_tripped`
  until the register changes again. Before the first write nothing is forced, so an engineer can use the CLI.
- owner (`plc.owner`, the machine-side fence; docs/CONTRACT.md §8 "Ownership"): the id of the agent commanding
  the machine, 0 = none. A write of another non-zero id is accepted only while the machine has no live owner
  (owner 0, watchdog never armed, or tripped); otherwise the register keeps the live owner (the writer reads it
  back and stands by). A write of 0 (a release) is always accepted.
- PLC-timed pulses (docs/CONTRACT.md §8 "PLC-timed pulses"): `pulses`, the pulse task on its own thread
  (`agent/plc/sim/pulses.py`), hears of every write and tick right after the watchdog's safe state is applied,
  so a trip aborts a running pulse and rejects new triggers.
Keys absent from the map are simply not simulated, so any map can be served.

Test hook: `force(key, value)` pins a value (a stuck gauge, a chamber that will not pump down) after every
physics tick and every write request, until `force(key, None)` releases it — so tests can violate an
interlock on demand without fighting the physics.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from agent.plc.codec import INTEGER_RANGES
from agent.plc.registers import Parameter, RegisterMap
from agent.plc.sim.image import RegisterImage
from agent.plc.sim.pulses import PulseTimer

__all__ = ["ReactorModel"]

AMBIENT_C = 25.0
BASE_PRESSURE_PA = 12.0
ATMOSPHERE_PA = 100000.0
HEATER_TAU_S, COOL_TAU_S, MFC_TAU_S, PUMP_TAU_S = 20.0, 120.0, 0.3, 1.5
N2_READY_AFTER_S = 2.0
VALVES = range(1, 7)


@dataclass
class ReactorModel:
    register_map: RegisterMap
    image: RegisterImage
    watchdog_timeout_s: float = 5.0
    seed: int = 0
    rng: random.Random = field(init=False)
    watchdog_armed: bool = field(default=False, init=False)
    watchdog_tripped: bool = field(default=False, init=False)
    _watchdog_last: object = field(default=None, init=False)
    _watchdog_changed_at: float = field(default=0.0, init=False)
    _n2_on_since: float | None = field(default=None, init=False)
    _valve_was_open: dict[int, bool] = field(default_factory=dict, init=False)
    forced: dict[str, float | bool] = field(default_factory=dict, init=False)
    owner: int = field(default=0, init=False)
    owner_refusals: int = field(default=0, init=False)
    #: The pulse task (the Simulator starts one); None = no PLC-timed pulses.
    pulses: PulseTimer | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    # --- helpers ---------------------------------------------------------------------------------
    def _p(self, key: str) -> Parameter | None:
        return self.register_map.get(key)

    def get(self, key: str, default: float = 0.0) -> float:
        p = self._p(key)
        return default if p is None else float(self.image.get(p))

    def put(self, key: str, value: float | bool) -> None:
        p = self._p(key)
        if p is None:
            return
        if p.data_type.is_integer:
            lo, hi = INTEGER_RANGES[p.data_type]
            raw = min(max(round((float(value) - p.offset) / p.scale), lo), hi)
            value = raw * p.scale + p.offset if (p.scale, p.offset) != (1, 0) else raw
        self.image.set(p, value)

    def on(self, key: str) -> bool:
        p = self._p(key)
        return bool(p is not None and self.image.get(p))

    def force(self, key: str, value: float | bool | None) -> None:
        """Pin `key` at `value` (applied now, after every tick and every write); None releases it, and the
        physics takes over from the pinned value. Raises KeyError for a key the map does not have."""
        if key not in self.register_map:
            raise KeyError(f"cannot force {key!r}: not in the simulator's register map")
        if value is None:
            self.forced.pop(key, None)
            return
        self.forced[key] = value
        self.put(key, value)

    def _apply_forced(self) -> None:
        for key, value in self.forced.items():
            self.put(key, value)

    # --- initial state ---------------------------------------------------------------------------
    def reset(self) -> None:
        """A tool as an operator leaves it: heaters on at idle setpoints (starting cold, at ambient), sensible
        PID gains, pump and N2 generator on, chamber at base pressure."""
        for p in self.register_map:
            if p.key.endswith(".temperature_sp"):
                self.put(p.key, 150.0 if p.key.startswith("chamber") else 80.0)
            elif p.key.endswith(".temperature"):
                self.put(p.key, AMBIENT_C)
            elif p.key.endswith("_heater.power_on"):
                self.put(p.key, True)
            elif p.key.endswith(".kp"):
                self.put(p.key, 12.0)
            elif p.key.endswith(".ki"):
                self.put(p.key, 0.8)
            elif p.key.endswith(".kd"):
                self.put(p.key, 2.0)
            elif p.key.endswith(".pid_period"):
                self.put(p.key, 100)
            elif p.key.endswith(".temp_max_limit"):
                self.put(p.key, p.max_value or 250.0)
            elif p.key.endswith(".scale_max") and p.max_value:
                self.put(p.key, p.max_value if "pressure" in p.key else 200.0)
            elif p.key.endswith(".scale_max_voltage"):
                self.put(p.key, 10.0)
            elif p.key.endswith(".pulse_ms"):  # a valid length at power-up (0 would be a rejected pulse)
                self.put(p.key, p.min_value or 1)
        for key in ("vacuum_pump.power_on", "exhaust_valve.state", "n2_generator.power_on"):
            self.put(key, True)
        self.put("pressure_gauge_1.pressure", BASE_PRESSURE_PA)
        self.put("pressure_gauge_2.pressure", BASE_PRESSURE_PA * 0.3)

    # --- writes from the Modbus side -------------------------------------------------------------
    def note_write(self, now: float) -> None:
        """Called after every write request: watchdog bookkeeping and valve edges happen immediately."""
        wd = self._p("plc.watchdog")
        if wd is not None:
            value = self.image.get(wd)
            if value != self._watchdog_last:
                if self._watchdog_last is not None:
                    self.watchdog_armed = True
                self._watchdog_last, self._watchdog_changed_at = value, now
                self.watchdog_tripped = False
        self._note_owner()
        if self.watchdog_tripped:
            self._force_safe_state()
        if self.pulses is not None:
            self.pulses.sync(now, tripped=self.watchdog_tripped)
        self._apply_forced()
        self._count_valve_edges()

    def _note_owner(self) -> None:
        p = self._p("plc.owner")
        if p is None:
            return
        requested = int(self.image.get(p))
        if requested == self.owner:
            return
        live = self.watchdog_armed and not self.watchdog_tripped
        if requested == 0 or self.owner == 0 or not live:
            self.owner = requested
        else:  # another agent still kicks the watchdog: it keeps the machine
            self.owner_refusals += 1
            self.image.set(p, self.owner)

    # --- physics ---------------------------------------------------------------------------------
    def step(self, dt: float, now: float) -> None:
        if self.watchdog_armed and now - self._watchdog_changed_at > self.watchdog_timeout_s:
            self.watchdog_tripped = True
        if self.watchdog_tripped:
            self._force_safe_state()
        if self.pulses is not None:
            self.pulses.sync(now, tripped=self.watchdog_tripped)
        self.put("plc.watchdog_tripped", self.watchdog_tripped)
        self._count_valve_edges()
        self._step_heaters(dt)
        self._step_gas_and_pressure(dt, now)
        self._apply_forced()

    def _force_safe_state(self) -> None:
        for n in VALVES:
            self.put(f"valve_{n}.state", False)
        self.put("mfc_1.flow_sp", 0.0)

    def _count_valve_edges(self) -> None:
        for n in VALVES:
            is_open = self.on(f"valve_{n}.state")
            if is_open and not self._valve_was_open.get(n, False):
                self.put(f"valve_{n}.cycle_count", self.get(f"valve_{n}.cycle_count") + 1)
            self._valve_was_open[n] = is_open

    def _step_heaters(self, dt: float) -> None:
        for p in self.register_map:
            if not p.key.endswith(".temperature_sp"):
                continue
            heater = p.key.removesuffix(".temperature_sp")
            sp, pv = self.get(p.key), self.get(f"{heater}.temperature", AMBIENT_C)
            powered = self.on(f"{heater}.power_on")
            target, tau = (sp, HEATER_TAU_S) if powered else (AMBIENT_C, COOL_TAU_S)
            new_pv = pv + (target - pv) * (1 - math.exp(-dt / tau)) + self.rng.gauss(0, 0.02)
            self.put(f"{heater}.temperature", new_pv)
            self.put(f"{heater}.temperature_rate", (new_pv - pv) / dt * 60 if dt > 0 else 0.0)
            output = max(0.0, min(100.0, (sp - new_pv) * self.get(f"{heater}.kp", 1.0))) if powered else 0.0
            self.put(f"{heater}.power", output)
            limit = self.get(f"{heater}.temp_max_limit", math.inf) or math.inf
            self.put(f"{heater}.alarm_code", 1 if new_pv > limit else 0)

    def _step_gas_and_pressure(self, dt: float, now: float) -> None:
        if self.on("n2_generator.power_on"):
            self._n2_on_since = now if self._n2_on_since is None else self._n2_on_since
        else:
            self._n2_on_since = None
        n2_ready = self._n2_on_since is not None and now - self._n2_on_since >= N2_READY_AFTER_S
        self.put("n2_generator.ready", n2_ready)
        target_flow = self.get("mfc_1.flow_sp") if n2_ready else 0.0
        flow = self.get("mfc_1.flow")
        flow += (target_flow - flow) * (1 - math.exp(-dt / MFC_TAU_S))
        self.put("mfc_1.flow", max(0.0, flow + (self.rng.gauss(0, 0.05) if target_flow else 0.0)))

        pump = self.on("vacuum_pump.power_on")
        self.put("vacuum_pump.running", pump)
        self.put("vacuum_pump.speed", 100.0 if pump else max(0.0, self.get("vacuum_pump.speed") - 20 * dt))
        pumping = pump and self.on("exhaust_valve.state")
        pressure = self.get("pressure_gauge_1.pressure", BASE_PRESSURE_PA)
        open_valves = sum(self.on(f"valve_{n}.state") for n in VALVES)
        pressure += open_valves * 400.0 * dt  # a precursor burst while a pulse valve is open
        if pumping:
            equilibrium = BASE_PRESSURE_PA + 0.35 * flow
            pressure += (equilibrium - pressure) * (1 - math.exp(-dt / PUMP_TAU_S))
        else:
            pressure += (ATMOSPHERE_PA - pressure) * (1 - math.exp(-dt / 600.0)) + 2.0 * flow * dt
        pressure = max(0.0, min(ATMOSPHERE_PA, pressure * (1 + self.rng.gauss(0, 0.002))))
        self.put("pressure_gauge_1.pressure", pressure)
        self.put("pressure_gauge_2.pressure", pressure * 0.3 if pumping else pressure)
