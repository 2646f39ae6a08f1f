"""What each step type does to the PLC, dispatched through `HANDLERS` by step type.

A handler gets a `StepContext` and fills `ctx.detail` as it goes, so even a step that fails or is stopped
halfway leaves a record of what happened. Holds go through `ctx.hold_until(deadline)`, which waits on the
monotonic clock and raises `StepInterrupted` as soon as a stop is requested. Each step's duration runs from
its own start: the Modbus round trip between steps shows up as `actual_ms − planned_ms`, instead of being
taken out of the next purge, which would change the process.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from loguru import logger

from agent.errors import RecipeError
from agent.plc import PlcDevice
from agent.recipes.compiler import PlanStep
from agent.recipes.model import ParameterConfig, PurgeConfig, StepType, ValveConfig, WaitConfig
from agent.recipes.outputs import RunOutputs
from agent.recipes.validate import MFC_FLOW_KEY, pv_key, valve_key

__all__ = ["HANDLERS", "MAX_PV_READ_FAILURES", "PV_POLL_INTERVAL_S", "StepContext", "StepInterrupted"]

#: How often a parameter step's wait reads the process value.
PV_POLL_INTERVAL_S = 0.1
#: Consecutive unreadable process values before a wait gives up (the PLC is gone, not slow).
MAX_PV_READ_FAILURES = 3
_MS = 1000.0


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
    """Open, hold `duration_ms` from the PLC's acknowledgement, close in `finally` — always, even on stop,
    error or cancellation.

    Holding from the acknowledgement (not from sending the request) means the PLC holds the valve *at least*
    `duration_ms`: it applied the open before acknowledging and applies the close after we send it. A short
    pulse can under-dose a self-limiting ALD half-reaction; a pulse longer by about one round trip cannot.
    The record estimates when the PLC acted as the midpoint of each request and its reply.
    """
    config = ctx.step.config
    assert isinstance(config, ValveConfig)
    key = valve_key(config.valve)
    ctx.detail["valve"] = config.valve
    ctx.touch(key)
    interrupted = True  # until the hold completes: a close error must not mask the first error
    try:
        open_sent = time.monotonic()
        await ctx.outputs.open_valve(key)
        _record_edge(ctx, "open", open_sent, time.monotonic())
        await ctx.hold_until(ctx.detail["open_ack_mono"] + config.duration_ms / _MS)
        interrupted = False
    finally:
        await _close_valve(ctx, key, config.duration_ms, quiet=interrupted)


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
