"""The commands bench's figures: what one command, pulse or step measured, and the Markdown tables. Pure.

Times: `created`, `claimed` are the database's `now()` (epoch s); `finished` the agent's wall clock; `event`
this process's wall clock (same host). Pulse times are CLOCK_MONOTONIC (system-wide): the simulator's
`ValveEvent.t` and the agent's `*_mono` stamps in `run_steps.detail` compare directly.
"""

from __future__ import annotations

import bisect
import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bench.read_cycle import pct

__all__ = ["CommandTiming", "Pulse", "SchedDelta", "StepTiming", "print_tables"]

CLAIM_P50_MS, CLAIM_P99_MS, PULSE_P99_MS = 100.0, 500.0, 5.0
_MS = 1000.0


@dataclass(frozen=True, slots=True)
class CommandTiming:
    id: int
    status: str
    created: float
    claimed: float | None
    finished: float | None
    event: float | None  # the INSERT event's arrival at the bench's realtime subscription

    @property
    def claim_ms(self) -> float | None:
        return None if self.claimed is None else (self.claimed - self.created) * _MS


@dataclass(frozen=True, slots=True)
class Pulse:
    planned_ms: float
    actual_ms: float  # the agent's step duration (open request → close acknowledged)
    detail: dict[str, Any]  # run_steps.detail
    sim_open: float | None  # monotonic, at the simulator
    sim_close: float | None

    @property
    def paired(self) -> bool:
        return self.sim_open is not None and self.sim_close is not None and "close_sent_mono" in self.detail

    @property
    def sim_error_ms(self) -> float:
        assert self.sim_open is not None and self.sim_close is not None
        return (self.sim_close - self.sim_open) * _MS - self.planned_ms

    @property
    def parts_ms(self) -> tuple[float, float, float]:
        """The simulator's error split at the agent's stamps; the three add up to `sim_error_ms` exactly:
        open edge → its acknowledgement at the agent, lateness of the close request after (ack + planned),
        close request → the simulator applies it."""
        assert self.sim_open is not None and self.sim_close is not None
        d = self.detail
        open_tail = (d["open_ack_mono"] - self.sim_open) * _MS
        late = (d["close_sent_mono"] - d["open_ack_mono"]) * _MS - self.planned_ms
        close_head = (self.sim_close - d["close_sent_mono"]) * _MS
        return open_tail, late, close_head

    @property
    def close_due_wall(self) -> float:
        """When the hold ended by plan (open ack + planned), on the agent's wall clock (epoch s): the detail's
        `opened_at` (wall) and `open_mono` are the same instant on both clocks."""
        d = self.detail
        offset = datetime.fromisoformat(d["opened_at"]).timestamp() - d["open_mono"]
        return d["open_ack_mono"] + self.planned_ms / _MS + offset

    @property
    def inside_agent_windows(self) -> bool:
        """Each simulator edge lies between the agent's request and acknowledgement (clock cross-check)."""
        assert self.sim_open is not None and self.sim_close is not None
        d = self.detail
        return (
            d["open_sent_mono"] <= self.sim_open <= d["open_ack_mono"]
            and d["close_sent_mono"] <= self.sim_close <= d["close_ack_mono"]
        )


@dataclass(frozen=True, slots=True)
class StepTiming:
    planned_ms: float
    actual_ms: float
    started: float  # agent wall clock, epoch s
    ended: float


@dataclass(frozen=True, slots=True)
class SchedDelta:
    """One thread over a window, from /proc/<pid>/task/<tid>/schedstat: on CPU, waiting for a CPU."""

    thread: str
    cpu_ms: float
    wait_ms: float  # runnable but not running: the run queue (other processes, the other thread holding …)
    slices: int


def _stats(values: Sequence[float]) -> str:
    """The text "p50 / p99 / max" of `values`, ms."""
    if not values:
        return "- / - / -"
    return f"{pct(list(values), 50):.1f} / {pct(list(values), 99):.1f} / {max(values):.1f}"


def verdict(ok: bool) -> str:
    return "met" if ok else "**MISSED**"


def _load(load: tuple[float, float]) -> str:
    return f"{load[0]:.2f}→{load[1]:.2f}"


def print_tables(
    *,
    realtime: list[CommandTiming],
    poll_only: list[CommandTiming],
    pulses: list[Pulse],
    frames: list[float],
    sched: dict[str, list[SchedDelta]],
    wakeup_late_ms: list[float],
    waits: list[StepTiming],
    loads: dict[str, tuple[float, float]],
    rate: float,
    poll_s: float,
    logging_interval_s: float,
) -> None:
    """Every table whose measurement ran. `frames`: acquisition times of the frames sampled during the pulses."""
    if realtime or poll_only:
        _print_commands(realtime, poll_only, loads, rate, poll_s)
    if pulses:
        _print_pulses(pulses, loads["pulses"])
        _print_pulse_phase(pulses, frames, logging_interval_s)
        _print_sched(sched, wakeup_late_ms)
        _print_counterfactual(pulses)
    if waits:
        _print_waits(waits, loads["waits"])


def _print_commands(
    realtime: list[CommandTiming],
    poll_only: list[CommandTiming],
    loads: dict[str, tuple[float, float]],
    rate: float,
    poll_s: float,
) -> None:
    print(f"\n## command insert → claimed (set_parameter at {rate:g}/s; target p50 < 100 ms, p99 < 500 ms)")
    print("| run | commands | succeeded | p50 ms | p95 ms | p99 ms | max ms | load 1-min | target |")
    print("|---|---|---|---|---|---|---|---|---|")
    runs = [("realtime + 5 s poll", realtime, "realtime")] if realtime else []
    if poll_only:
        runs.append((f"poll only ({poll_s:g} s)", poll_only, "poll only"))
    for label, timings, key in runs:
        lat = [t.claim_ms for t in timings if t.claim_ms is not None]
        ok = sum(t.status == "succeeded" for t in timings)
        if not lat:
            print(f"| {label} | {len(timings)} | {ok} | - | - | - | - | {_load(loads[key])} | **none claimed** |")
            continue
        target = verdict(pct(lat, 50) < CLAIM_P50_MS and pct(lat, 99) < CLAIM_P99_MS) if key == "realtime" else "(info)"
        print(
            f"| {label} | {len(timings)} | {ok} | {pct(lat, 50):.1f} | {pct(lat, 95):.1f} | {pct(lat, 99):.1f} | "
            f"{max(lat):.1f} | {_load(loads[key])} | {target} |"
        )

    if not realtime:
        return
    print("\n## where a command's time goes (realtime run)")
    print("| segment | n | p50 ms | p95 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|")
    with_event = [t for t in realtime if t.event is not None and t.claimed is not None]
    segments = [
        ("insert → INSERT event at a second subscriber (the bench)", [(t.event - t.created) * _MS for t in with_event]),  # type: ignore[operator]
        ("that event → claimed_at (agent's event, claim RPC)", [(t.claimed - t.event) * _MS for t in with_event]),  # type: ignore[operator]
        (
            "claimed_at → finished_at (verified PLC write, result)",
            [(t.finished - t.claimed) * _MS for t in realtime if t.finished is not None and t.claimed is not None],
        ),
    ]
    for label, values in segments:
        if values:
            print(
                f"| {label} | {len(values)} | {pct(values, 50):.1f} | {pct(values, 95):.1f} | "
                f"{pct(values, 99):.1f} | {max(values):.1f} |"
            )
        else:
            print(f"| {label} | 0 | - | - | - | - |")


def _print_pulses(pulses: list[Pulse], load: tuple[float, float]) -> None:
    paired = [p for p in pulses if p.paired]
    unpaired = len(pulses) - len(paired)
    durations = sorted({p.planned_ms for p in pulses})
    print(f"\n## valve pulse duration at the simulator (target p99 |error| < {PULSE_P99_MS:g} ms; load {_load(load)})")
    print(
        "| planned ms | pulses | mean error ms | p50 abs ms | p99 abs ms | max abs ms | min / max error ms | target |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for d in durations:
        errors = [p.sim_error_ms for p in paired if p.planned_ms == d]
        if not errors:
            print(f"| {d:g} | 0 | - | - | - | - | - | **no pulses seen** |")
            continue
        absolute = [abs(e) for e in errors]
        print(
            f"| {d:g} | {len(errors)} | {statistics.mean(errors):+.2f} | {pct(absolute, 50):.2f} | "
            f"{pct(absolute, 99):.2f} | {max(absolute):.2f} | {min(errors):+.2f} / {max(errors):+.2f} | "
            f"{verdict(pct(absolute, 99) < PULSE_P99_MS)} |"
        )
    if unpaired:
        print(f"\n**{unpaired} valve steps without a simulator open/close pair**")

    print("\n## the agent's own record (run_steps) next to the simulator's, |error| p50 / p99 / max ms")
    print(
        "| planned ms | simulator | agent detail.timing_error_ms | agent actual_ms − planned_ms | "
        "sim − agent error, mean ms | edges inside the agent's request→ack windows |"
    )
    print("|---|---|---|---|---|---|")
    for d in durations:
        group = [p for p in paired if p.planned_ms == d]
        if not group:
            continue
        sim = [abs(p.sim_error_ms) for p in group]
        agent = [abs(p.detail["timing_error_ms"]) for p in group]
        step = [abs(p.actual_ms - p.planned_ms) for p in group]
        diff = statistics.mean(p.sim_error_ms - p.detail["timing_error_ms"] for p in group)
        inside = sum(p.inside_agent_windows for p in group)
        print(f"| {d:g} | {_stats(sim)} | {_stats(agent)} | {_stats(step)} | {diff:+.2f} | {inside} / {len(group)} |")

    print("\n## where a pulse's error comes from (all pulses; ms, mean / p99 / max)")
    print("| part | mean | p99 | max |")
    print("|---|---|---|---|")
    names = (
        "open applied → its ack at the agent (the hold starts at the ack)",
        "close request sent − (open ack + planned): hold timer lateness",
        "close request sent → applied at the simulator",
    )
    for n, name in enumerate(names):
        values = [p.parts_ms[n] for p in paired]
        if values:
            print(f"| {name} | {statistics.mean(values):+.2f} | {pct(values, 99):+.2f} | {max(values):+.2f} |")


def _print_waits(waits: list[StepTiming], load: tuple[float, float]) -> None:
    print(f"\n## step-boundary overhead (wait steps; load {_load(load)})")
    print(
        "| steps × ms | planned s | first start → last end s | overhead per step ms | "
        "start-to-start − planned p50 / p99 / max ms | hold lateness (actual − planned) p50 / p99 / max ms | "
        "end → next start p50 / p99 / max ms |"
    )
    print("|---|---|---|---|---|---|---|")
    if not waits:
        print("| 0 | - | - | - | - | - | - |")
        return
    planned_s = sum(w.planned_ms for w in waits) / _MS
    actual_s = waits[-1].ended - waits[0].started
    spacing = [(b.started - a.started) * _MS - a.planned_ms for a, b in itertools.pairwise(waits)]
    lateness = [w.actual_ms - w.planned_ms for w in waits]
    gaps = [(b.started - a.ended) * _MS for a, b in itertools.pairwise(waits)]
    print(
        f"| {len(waits)} × {waits[0].planned_ms:g} | {planned_s:.2f} | {actual_s:.3f} | "
        f"{(actual_s - planned_s) / len(waits) * _MS:.3f} | {_stats(spacing)} | {_stats(lateness)} | {_stats(gaps)} |"
    )


def _since_frame_ms(pulse: Pulse, frames: list[float]) -> float | None:
    """How long after the start of the latest frame read the pulse's close was due (None: no frame before)."""
    due = pulse.close_due_wall
    i = bisect.bisect_right(frames, due)
    return (due - frames[i - 1]) * _MS if i else None


def _print_pulse_phase(pulses: list[Pulse], frames: list[float], logging_interval_s: float) -> None:
    """Are late closes the ones due while the agent handles a telemetry frame (read, publish, spool, ship)?"""
    paired = [p for p in pulses if p.paired]
    if not paired:
        return
    phased = [(p, _since_frame_ms(p, frames)) for p in paired]
    bins = ((0.0, 30.0), (30.0, 100.0), (100.0, float("inf")))
    print(
        f"\n## hold timer lateness by when the close was due after a telemetry frame's read started "
        f"(sampling every {logging_interval_s:g} s; {len(frames)} frames during the run)"
    )
    print("| close due after frame | pulses | lateness mean / p99 / max ms | sim error mean / p99 / max ms |")
    print("|---|---|---|---|")
    for lo, hi in bins:
        group = [p for p, since in phased if since is not None and lo <= since < hi]
        label = f"{lo:g}–{hi:g} ms" if hi != float("inf") else f"≥ {lo:g} ms"
        if not group:
            print(f"| {label} | 0 | - | - |")
            continue
        late = [p.parts_ms[1] for p in group]
        err = [p.sim_error_ms for p in group]
        print(
            f"| {label} | {len(group)} | {statistics.mean(late):+.2f} / {pct(late, 99):+.2f} / {max(late):+.2f} | "
            f"{statistics.mean(err):+.2f} / {pct(err, 99):+.2f} / {max(err):+.2f} |"
        )

    print("\n## the five worst pulses at the simulator (ms)")
    print("| planned | sim error | open applied → ack | hold lateness | close sent → applied | close due after frame |")
    print("|---|---|---|---|---|---|")
    for p, since in sorted(phased, key=lambda x: -x[0].sim_error_ms)[:5]:
        a, b, c = p.parts_ms
        when = f"{since:.1f}" if since is not None else "-"
        print(f"| {p.planned_ms:g} | {p.sim_error_ms:+.2f} | {a:+.2f} | {b:+.2f} | {c:+.2f} | {when} |")


def _print_sched(sched: dict[str, list[SchedDelta]], wakeup_late_ms: list[float]) -> None:
    """Did the threads that time the pulses wait for a CPU? (The box is shared; waits delay every edge.)"""
    print("\n## CPU scheduling over the pulse run (/proc/…/schedstat; threads that ran)")
    print("| process | thread | on CPU ms | waited for a CPU ms | timeslices | mean wait per timeslice ms |")
    print("|---|---|---|---|---|---|")
    for process, threads in sched.items():
        for t in sorted(threads, key=lambda t: -t.cpu_ms):
            print(
                f"| {process} | {t.thread} | {t.cpu_ms:.0f} | {t.wait_ms:.0f} | {t.slices} | "
                f"{t.wait_ms / t.slices:.3f} |"
            )
    if wakeup_late_ms:
        print(
            f"\nA bare sleeper process (bench/wakeup_probe.py, 10 ms sleeps) over the same run woke late by "
            f"p50 {pct(wakeup_late_ms, 50):.2f} / p99 {pct(wakeup_late_ms, 99):.2f} / max {max(wakeup_late_ms):.2f} ms "
            f"({len(wakeup_late_ms)} wake-ups): the box's own scheduling noise."
        )


def _print_counterfactual(pulses: list[Pulse]) -> None:
    """What the simulator would have seen had the hold been timed from the open request instead of its ack.

    An estimate: it removes the measured open ack delay and keeps everything else (timer lateness, close
    leg) as it happened."""
    paired = [p for p in pulses if p.paired]
    if not paired:
        return
    print("\n## estimate: the same pulses with the hold timed from the open request (|error| p99 / max ms)")
    print("| planned ms | as run (from the ack) | from the request's send | from the request's midpoint |")
    print("|---|---|---|---|")
    for d in sorted({p.planned_ms for p in paired}):
        group = [p for p in paired if p.planned_ms == d]
        ack = [abs(p.sim_error_ms) for p in group]
        send = [abs(p.sim_error_ms - (p.detail["open_ack_mono"] - p.detail["open_sent_mono"]) * _MS) for p in group]
        mid = [abs(p.sim_error_ms - (p.detail["open_ack_mono"] - p.detail["open_mono"]) * _MS) for p in group]
        print(
            f"| {d:g} | {pct(ack, 99):.2f} / {max(ack):.2f} | {pct(send, 99):.2f} / {max(send):.2f} | "
            f"{pct(mid, 99):.2f} / {max(mid):.2f} |"
        )
