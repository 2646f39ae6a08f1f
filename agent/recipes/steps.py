"""What each step type does to the PLC, dispatched through `HANDLERS` by step type.

A handler gets a `StepContext` and fills `ctx.detail` as it goes, so even a step that fails or is stopped
halfway leaves a record of what happened. Holds go through `ctx.hold_until(deadline)`, which waits on the
monotonic clock and raises `StepInterrupted` as soon as a stop is requested. Each step's duration runs from
its own start: the Modbus round trip between steps shows up as `actual_ms − planned_ms`, instead of being
taken out of the next purge, which would change the process.

A valve step has two paths: where the map declares the valve's pulse timer (agent.plc.pulses), the PLC times
the pulse and the agent triggers it and waits for the PLC's acknowledgement (`run_plc_pulse`); otherwise the
agent opens the coil, holds, and closes it (`run_agent_pulse`, the fallback). Both close the valve in
`finally` on every exit, and both go through the same gate rules (a trigger counts as opening the valve).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from loguru import logger

from agent.errors import PlcError, RecipeError
from agent.plc import PlcDevice, PulseRegisters, PulseStatus, next_trigger, pulse_registers
from agent.recipes.compiler import PlanStep
from agent.recipes.model import ParameterConfig, PurgeConfig, StepType, ValveConfig, WaitConfig
from agent.recipes.outputs import RunOutputs
from agent.recipes.validate import MFC_FLOW_KEY, pv_key, valve_key

__all__ = [
    "HANDLERS",
    "MAX_PV_READ_FAILURES",
    "PULSE_END_TIMEOUT_S",
    "PULSE_POLL_INTERVAL_S",
    "PV_POLL_INTERVAL_S",
    "StepContext",
    "StepInterrupted",
]

#: How often a parameter step's wait reads the process value.
PV_POLL_INTERVAL_S = 0.1
#: Consecutive unreadable process values before a wait gives up (the PLC is gone, not slow).
MAX_PV_READ_FAILURES = 3
#: How often a PLC-timed pulse's end is polled once its duration has passed (the PLC's ack is usually there at
#: the first read: the poll only decides when the *next step* starts, never how long the valve is open).
PULSE_POLL_INTERVAL_S = 0.002
#: How long past its duration a PLC-timed pulse may take to be acknowledged before the step fails (and cancels
#: it): a PLC scan is milliseconds; half a second means the PLC program is not following the contract.
PULSE_END_TIMEOUT_S = 0.5
_MS = 1000.0
_US = 1_000_000.0


class StepInterrupted(Exception):
    """A stop was requested while the step was holding."""


@dataclass
class StepContext:
    """Everything a handler may use. `wall(t)` converts a monotonic time within the step to UTC ISO text."""

    device: PlcDevice
    outputs: RunOutputs
    step: PlanStep
    started_mono: float
    started_wall: datetime
    hold_until: Callable[[float], Awaitable[None]]
    touch: Callable[[str], None]
    detail: dict[str, Any] = field(default_factory=dict)

    def wall(self, mono: float) -> str:
        return (self.started_wall + timedelta(seconds=mono - self.started_mono)).isoformat()


async def run_valve(ctx: StepContext) -> None:
    """A pulse of `duration_ms` on the valve: PLC-timed where the map declares the valve's pulse timer, else
    agent-timed. Either way the valve is closed before the step ends, however it ends."""
    config = ctx.step.config
    assert isinstance(config, ValveConfig)
    ctx.detail["valve"] = config.valve
    pulse = pulse_registers(config.valve, ctx.outputs.map)
    if pulse is None:
        await run_agent_pulse(ctx, valve_key(config.valve), config.duration_ms)
    else:
        await run_plc_pulse(ctx, pulse, config.duration_ms)


async def run_agent_pulse(ctx: StepContext, key: str, duration_ms: float) -> None:
    """Open, hold `duration_ms` from the PLC's acknowledgement, close in `finally` — always, even on stop,
    error or cancellation.

    Holding from the acknowledgement (not from sending the request) means the PLC holds the valve *at least*
    `duration_ms`: it applied the open before acknowledging and applies the close after we send it. A short
    pulse can under-dose a self-limiting ALD half-reaction; a pulse longer by about one round trip cannot.
    The record estimates when the PLC acted as the midpoint of each request and its reply.
    """
    ctx.detail["timed_by"] = "agent"
    ctx.touch(key)
    interrupted = True  # until the hold completes: a close error must not mask the first error
    try:
        open_sent = time.monotonic()
        await ctx.outputs.open_valve(key)
        _record_edge(ctx, "open", open_sent, time.monotonic())
        await ctx.hold_until(ctx.detail["open_ack_mono"] + duration_ms / _MS)
        interrupted = False
    finally:
        await _close_valve(ctx, key, duration_ms, quiet=interrupted)
    measured = key.removesuffix(".state") + ".pulse_measured_us"
    if measured in ctx.outputs.map:  # a PLC that measures its coils but has no pulse timer
        try:  # the record only: the pulse is over and the valve closed, so a failed read fails nothing
            frame = await ctx.device.read([measured])
        except PlcError as exc:
            logger.bind(area="recipe").warning("{}: reading {} failed: {}", ctx.step.path, measured, exc)
        else:
            if (value := frame.values.get(measured)) is not None:
                ctx.detail["plc_measured_us"] = value


async def run_plc_pulse(ctx: StepContext, pulse: PulseRegisters, duration_ms: float) -> None:
    """Write the duration (verified; skipped when the PLC already holds it), then a new trigger — one the PLC has
    neither in `pulse_trigger` nor in `pulse_done`, so its acknowledgement cannot be a stale one; hold the duration,
    then poll until the PLC echoes the trigger in `pulse_done` and record its measured open time. On any other
    exit — stop, error, cancellation, a pulse the PLC rejected or did not finish in time — cancel it (trigger 0,
    coil closed) in `finally`.

    The PLC's acknowledgement is what ends the step, so the valve is never still open when the next step runs;
    `timing_error_ms` is the PLC's measured time minus the planned one (docs/CONTRACT.md §8 "PLC-timed pulses").
    """
    d = ctx.detail
    d["timed_by"] = "plc"
    ctx.touch(pulse.trigger)
    ctx.touch(pulse.coil)
    started = ended = False
    try:
        before = (await ctx.device.read([pulse.duration, pulse.trigger, pulse.done, pulse.status])).values
        current, done, status = (before.get(k) for k in (pulse.trigger, pulse.done, pulse.status))
        if current is None or done is None or status is None:
            raise RecipeError(f"cannot read {pulse.trigger}, {pulse.done} and {pulse.status} before the pulse")
        if status == PulseStatus.RUNNING:
            raise RecipeError(f"the PLC reports a pulse already running on valve {pulse.valve} ({pulse.status})")
        whole = int(duration_ms) if float(duration_ms).is_integer() else duration_ms  # the gate refuses 20.5
        if before.get(pulse.duration) != whole:  # in an ALD loop it already holds it: two round trips saved
            await ctx.outputs.set_value(pulse.duration, whole)
        trigger = next_trigger(int(current), int(done))
        d["trigger"] = trigger
        started = True  # from here the PLC may be timing: the finally cancels unless the PLC reports the end
        sent = time.monotonic()
        await ctx.outputs.trigger_pulse(pulse, trigger)
        _record_edge(ctx, "open", sent, time.monotonic())
        ack = d["open_ack_mono"]
        await ctx.hold_until(ack + duration_ms / _MS)
        status = await _await_pulse_end(ctx, pulse, trigger, deadline=ack + duration_ms / _MS + PULSE_END_TIMEOUT_S)
        if status is not PulseStatus.DONE:
            raise RecipeError(f"the PLC ended the pulse on valve {pulse.valve} as {status.name.lower()}")
        ended = True
    finally:
        if started and not ended:
            await _cancel_pulse(ctx, pulse)


async def _await_pulse_end(ctx: StepContext, pulse: PulseRegisters, trigger: int, *, deadline: float) -> PulseStatus:
    """Poll the PLC's feedback until `pulse_done` shows `trigger`; its status (the measured time recorded)."""
    d = ctx.detail
    failures = polls = 0
    while True:
        frame = await ctx.device.read(pulse.feedback)
        polls += 1
        d["end_polls"] = polls
        if (status := _record_feedback(ctx, pulse, frame.values, trigger)) is not None:
            d["end_seen_mono"] = time.monotonic()
            return status
        failures = failures + 1 if any(frame.values.get(k) is None for k in pulse.feedback) else 0
        if failures >= MAX_PV_READ_FAILURES:
            raise RecipeError(f"cannot read the PLC's pulse feedback for valve {pulse.valve} ({failures} reads failed)")
        now = time.monotonic()
        if now >= deadline:
            raise RecipeError(
                f"the PLC did not report the end of the pulse on valve {pulse.valve} within "
                f"{PULSE_END_TIMEOUT_S * _MS:g} ms of its duration ({pulse.done} = {frame.values.get(pulse.done)})"
            )
        await ctx.hold_until(min(now + PULSE_POLL_INTERVAL_S, deadline))


def _record_feedback(
    ctx: StepContext, pulse: PulseRegisters, values: dict[str, Any], trigger: int
) -> PulseStatus | None:
    """Record the PLC's report when it is about `trigger` (its ack in `pulse_done`): its status, else None."""
    done, code, measured_us = (values.get(k) for k in pulse.feedback)
    if done != trigger or code is None or measured_us is None:
        return None
    try:
        status = PulseStatus(int(code))
    except ValueError:
        raise RecipeError(f"{pulse.status} = {code}: not a pulse status the contract defines") from None
    d = ctx.detail
    held_ms = float(measured_us) / _US * _MS
    d.update(plc_status=status.name.lower(), plc_status_code=int(status), plc_measured_us=measured_us)
    if status is not PulseStatus.REJECTED:
        d.update(held_ms=held_ms, timing_error_ms=held_ms - ctx.step.planned_ms)
        if "open_mono" in d:
            d["closed_at"] = ctx.wall(d["open_mono"] + held_ms / _MS)
    return status


async def _cancel_pulse(ctx: StepContext, pulse: PulseRegisters) -> None:
    """Cancel an unfinished pulse; an error here is logged (another one is always on its way)."""
    d = ctx.detail
    sent = time.monotonic()
    try:
        await ctx.outputs.cancel_pulse(pulse)
    except Exception as exc:
        d["close_error"] = str(exc)
        logger.bind(area="recipe").error("{}: cancelling the pulse on {} failed: {}", ctx.step.path, pulse.coil, exc)
        return
    _record_edge(ctx, "close", sent, time.monotonic())
    d["cancelled"] = True
    try:  # what the PLC says the aborted pulse was: best effort, the step has failed or stopped already
        frame = await ctx.device.read(pulse.feedback)
        if "trigger" in d:
            _record_feedback(ctx, pulse, frame.values, d["trigger"])
    except Exception as exc:
        logger.bind(area="recipe").warning("{}: reading the cancelled pulse's report failed: {}", ctx.step.path, exc)


async def _close_valve(ctx: StepContext, key: str, duration_ms: float, *, quiet: bool) -> None:
    """Close the valve and record when; a failure is raised, or only logged when another error is on its way."""
    d = ctx.detail
    close_sent = time.monotonic()
    try:
        await ctx.outputs.close_valve(key)
    except Exception as exc:
        d["close_error"] = str(exc)
        if not quiet:
            raise
        logger.bind(area="recipe").error("{}: closing {} failed: {}", ctx.step.path, key, exc)
    else:
        _record_edge(ctx, "close", close_sent, time.monotonic())
        if "open_mono" in d:
            held_ms = (d["close_mono"] - d["open_mono"]) * _MS
            d.update(held_ms=held_ms, timing_error_ms=held_ms - duration_ms)


def _record_edge(ctx: StepContext, edge: str, sent: float, acked: float) -> None:
    """`<edge>_mono`/`<edge>ed_at`: estimated time the PLC acted (midpoint); `<edge>_latency_ms`: round trip."""
    at = (sent + acked) / 2
    wall = "opened_at" if edge == "open" else "closed_at"
    ctx.detail.update(
        {
            f"{edge}_sent_mono": sent,
            f"{edge}_ack_mono": acked,
            f"{edge}_mono": at,
            wall: ctx.wall(at),
            f"{edge}_latency_ms": (acked - sent) * _MS,
        }
    )


async def run_purge(ctx: StepContext) -> None:
    """Set the carrier flow when `flow_sccm` is given (and the map has the MFC), then hold."""
    config = ctx.step.config
    assert isinstance(config, PurgeConfig)
    if config.gas is not None:
        ctx.detail["gas"] = config.gas
    if config.flow_sccm is not None:
        if MFC_FLOW_KEY in ctx.outputs.map:
            ctx.touch(MFC_FLOW_KEY)
            ctx.detail["flow_sccm"] = await ctx.outputs.set_value(MFC_FLOW_KEY, config.flow_sccm)
        else:  # validation reports this; a map reloaded mid-run must not crash the purge
            logger.bind(area="recipe").warning("{}: no {} in the map; flow not set", ctx.step.path, MFC_FLOW_KEY)
    await ctx.hold_until(ctx.started_mono + config.duration_ms / _MS)


async def run_wait(ctx: StepContext) -> None:
    config = ctx.step.config
    assert isinstance(config, WaitConfig)
    await ctx.hold_until(ctx.started_mono + config.duration_ms / _MS)


async def run_parameter(ctx: StepContext) -> None:
    """Verified write; with `wait`, poll the process value until within tolerance or fail at the timeout."""
    config = ctx.step.config
    assert isinstance(config, ParameterConfig)
    d = ctx.detail
    d.update(parameter=config.parameter, value=config.value)
    ctx.touch(config.parameter)
    d["read_back"] = await ctx.outputs.set_value(config.parameter, config.value)
    if config.wait is None:
        return
    pv = pv_key(config.parameter, ctx.outputs.map)
    tolerance, timeout_ms = config.wait.tolerance, config.wait.timeout_ms
    d.update(pv_key=pv, tolerance=tolerance, timeout_ms=timeout_ms)
    deadline = time.monotonic() + timeout_ms / _MS
    failures = polls = 0
    last: object = None
    while True:
        frame = await ctx.device.read([pv])
        polls += 1
        value = frame.values.get(pv)
        failures = failures + 1 if value is None else 0
        last = value if value is not None else last
        d.update(pv=last, polls=polls)
        if value is not None and _within(value, config.value, tolerance):
            d["waited_ms"] = (time.monotonic() - ctx.started_mono) * _MS
            return
        if failures >= MAX_PV_READ_FAILURES:
            raise RecipeError(f"cannot read {pv} ({failures} reads failed) while waiting for {config.parameter}")
        now = time.monotonic()
        if now >= deadline:
            raise RecipeError(
                f"{pv} did not reach {config.value} ± {tolerance:g} within {timeout_ms:g} ms (last {last})"
            )
        await ctx.hold_until(min(now + PV_POLL_INTERVAL_S, deadline))


def _within(value: object, target: float | bool, tolerance: float) -> bool:
    if isinstance(target, bool) or isinstance(value, bool):
        return bool(value) == bool(target)
    assert isinstance(value, int | float)
    return abs(float(value) - float(target)) <= tolerance


HANDLERS: dict[StepType, Callable[[StepContext], Awaitable[None]]] = {
    StepType.VALVE: run_valve,
    StepType.PURGE: run_purge,
    StepType.WAIT: run_wait,
    StepType.PARAMETER: run_parameter,
}
