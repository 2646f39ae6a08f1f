"""The simulated PLC's pulse task: times PLC-timed valve pulses on its own thread, as a PLC's cyclic task would.

This is the reference implementation of docs/CONTRACT.md §8 "PLC-timed pulses" (the register semantics are in
`agent.plc.pulses`). Two entry points, both cheap and called with the image already updated:

- `sync(now, tripped=…)` — on the simulator's event loop after every write request and every physics tick: a
  changed trigger starts (or cancels, or is rejected), a coil that went false ends the pulse on it as aborted,
  and every open period of a timed valve's coil is measured, however it was opened (an agent-timed pulse too);
- the timer thread — ends each pulse at its deadline: it sleeps on a condition until shortly before (`SPIN_S`),
  then spins on the monotonic clock, so the close does not wait for the event loop, a Modbus request or the
  interpreter's timer rounding.

Why a thread and not a loop timer: asyncio rounds timer waits to whole milliseconds and runs them only between
other callbacks (a physics tick, a request); a real PLC's pulse is a hardware timer. A thread still needs the
GIL to flip the coil, so the simulator process (`agent simulate`) shortens the interpreter's switch interval.

Thread safety: one lock guards the pulse state and every write this module makes to the image; the PLC's
feedback registers are written in the order measured → status → done, so a reader that sees its trigger in
`pulse_done` also sees that pulse's status and measured time (each Modbus read copies its range in one step).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from agent.plc import Parameter, PulseRegisters, PulseStatus, RegisterMap, pulse_registers
from agent.plc.sim.image import RegisterImage

__all__ = ["MAX_MEASURED_US", "SPIN_S", "PulseTimer"]

#: The timer thread wakes this long before a deadline and spins the rest: a condition wait can wake late by
#: the kernel's timer slack and the scheduler's latency; spinning costs at most this much CPU per pulse.
SPIN_S = 0.0005
#: `pulse_measured_us` is a uint32: about 71 minutes, far beyond any pulse (clamped, never wrapped).
MAX_MEASURED_US = 0xFFFF_FFFF
_US = 1_000_000
_MS = 1000.0

EdgeHook = Callable[[float, int, bool], None]
"""Called with (monotonic time, valve, now open) for each coil edge this task makes."""


@dataclass(frozen=True, slots=True)
class _Pulse:
    trigger: int
    opened_at: float
    deadline: float


class PulseTimer:
    """Pulse timers for every valve of `register_map` that declares the full register set."""

    def __init__(self, register_map: RegisterMap, image: RegisterImage, *, on_edge: EdgeHook | None = None) -> None:
        self.image = image
        self.valves: dict[int, PulseRegisters] = {}
        self._params: dict[str, Parameter] = {}
        for p in register_map:
            if p.key.startswith("valve_") and p.key.endswith(".state") and p.register.is_bit:
                number = p.component.removeprefix("valve_")
                regs = pulse_registers(int(number), register_map) if number.isdigit() else None
                if regs is not None:
                    self.valves[regs.valve] = regs
                    keys = (regs.coil, regs.duration, regs.trigger, *regs.feedback)
                    self._params.update((k, register_map[k]) for k in keys)
        self._on_edge = on_edge or (lambda _t, _v, _o: None)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._running: dict[int, _Pulse] = {}
        self._open_since: dict[int, float] = {}
        self._last_trigger = {n: int(self._get(regs.trigger)) for n, regs in self.valves.items()}
        self._thread: threading.Thread | None = None
        self._stopping = False
        #: Counters for tests and the bench: pulses started, ended by their deadline, aborted, rejected, ignored.
        self.counts = dict.fromkeys(("started", "done", "aborted", "rejected", "ignored"), 0)

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the pulse timer is already running")
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="plc-pulse-timer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def running(self, valve: int) -> bool:
        with self._lock:
            return valve in self._running

    # --- the PLC's reaction to writes and scans ------------------------------------------------------

    def sync(self, now: float, *, tripped: bool) -> None:
        """Apply what changed since the last call (see the module docstring). `tripped`: the watchdog's safe
        state is forced, so a new trigger is rejected."""
        if not self.valves:
            return
        with self._wake:
            for n, regs in self.valves.items():
                self._follow_coil(n, regs, now)
                trigger = int(self._get(regs.trigger))
                if trigger != self._last_trigger[n]:
                    self._last_trigger[n] = trigger
                    self._on_trigger(n, regs, trigger, now, tripped=tripped)

    def _follow_coil(self, n: int, regs: PulseRegisters, now: float) -> None:
        is_open = bool(self._get(regs.coil))
        if is_open and n not in self._open_since:
            self._open_since[n] = now  # opened by a coil write: measured too
        elif not is_open and n in self._open_since:
            pulse = self._running.get(n)
            self._close(n, regs, now, PulseStatus.ABORTED if pulse else None, pulse, drive=False)

    def _on_trigger(self, n: int, regs: PulseRegisters, trigger: int, now: float, *, tripped: bool) -> None:
        pulse = self._running.get(n)
        if trigger == 0:
            if pulse is not None:
                self._close(n, regs, now, PulseStatus.ABORTED, pulse, drive=True)
            return
        if pulse is not None:  # a trigger while a pulse runs: not queued, not restarted (the contract)
            self.counts["ignored"] += 1
            return
        duration = self._get(regs.duration)
        limit = self._params[regs.duration].max_value
        if tripped or duration < 1 or (limit is not None and duration > limit):
            self.counts["rejected"] += 1
            self._report(regs, trigger, PulseStatus.REJECTED, measured_us=None)
            return
        self._set(regs.coil, True)
        self._open_since[n] = now
        self._running[n] = _Pulse(trigger, now, now + float(duration) / _MS)
        self._set(regs.status, int(PulseStatus.RUNNING))
        self.counts["started"] += 1
        self._on_edge(now, n, True)
        self._wake.notify()

    # --- the timer thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and not self._running:
                    self._wake.wait()
                if self._stopping:
                    return
                n, pulse = min(self._running.items(), key=lambda item: item[1].deadline)
                remaining = pulse.deadline - time.monotonic()
                if remaining > SPIN_S:
                    self._wake.wait(remaining - SPIN_S)  # woken early by a new or cancelled pulse: look again
                    continue
            while time.monotonic() < pulse.deadline:
                pass  # the last SPIN_S: a PLC's timer does not sleep through its deadline
            with self._wake:
                if self._running.get(n) is pulse:  # not cancelled or aborted meanwhile
                    self._close(n, self.valves[n], time.monotonic(), PulseStatus.DONE, pulse, drive=True)

    # --- register access (under the lock) ------------------------------------------------------------

    def _close(
        self, n: int, regs: PulseRegisters, now: float, status: PulseStatus | None, pulse: _Pulse | None, *, drive: bool
    ) -> None:
        """End valve N's open period at `now`: de-energise (when `drive`), measure, and report `pulse`'s end."""
        if drive:
            self._set(regs.coil, False)
            self._on_edge(now, n, False)
        opened = self._open_since.pop(n, now)
        measured_us = min(MAX_MEASURED_US, max(0, round((now - opened) * _US)))
        self._running.pop(n, None)
        if pulse is None or status is None:
            self._set(regs.measured, measured_us)  # an agent-timed opening: measured, no handshake
            return
        self.counts["done" if status is PulseStatus.DONE else "aborted"] += 1
        self._report(regs, pulse.trigger, status, measured_us=measured_us)

    def _report(self, regs: PulseRegisters, trigger: int, status: PulseStatus, *, measured_us: int | None) -> None:
        """The handshake's feedback, the acknowledgement last (module docstring)."""
        if measured_us is not None:
            self._set(regs.measured, measured_us)
        self._set(regs.status, int(status))
        self._set(regs.done, trigger)

    def _get(self, key: str) -> float:
        return float(self.image.get(self._params[key]))

    def _set(self, key: str, value: int | bool) -> None:
        self.image.set(self._params[key], value)
