"""Prometheus metrics of one agent, read from its live snapshot at every scrape.

`AgentMetrics` owns its own `CollectorRegistry` (never the process-wide default), so two agents, or two tests,
can live in one process without "Duplicated timeseries" errors. Everything that describes the agent's state
(connections, spool, frames, errors, role) comes from a custom collector that calls the `snapshot` callable at
collect time: the values are the real state, never a cached constant. Distributions and outcome counts are
pushed by hooks, because a snapshot cannot carry them:

    metrics = AgentMetrics(snapshot=app.snapshot)
    metrics.attach(cloud=cloud, writer=writer, shipper=shipper, sampler=sampler, spool=spool, device=device)
    metrics.observe_command_latency(0.042)      # command insert → claimed, seconds
    metrics.observe_step_timing_error(-0.0013)  # |actual − planned| of one recipe step, seconds
    body = metrics.render()                     # Prometheus text format, CONTENT_TYPE below

`attach` subscribes to the parts' observer lists: every REST call's duration (database response time), every
full PLC read's duration and each planned block's (to find a slow address range; the block label is bounded by
`MAX_BLOCK_SERIES`), every frame interval (the logging interval as a distribution, to alert on ±10 ms), every
shipped history record's append → accepted time (the read → row cycle: the append follows the PLC read by
microseconds), and every run and command record the agent writes (recipe outcomes, commands by type and outcome).
CPU % and the spool volume's free space are read at scrape time (`os.times`, `os.statvfs`: no blocking I/O).

Metric and label names are a contract (docs/DESIGN.md §6, the alert rules and Grafana dashboards in monitoring/, the
deploy harness): they are the constants below and a test pins them. `ald_memory_usage_mb` keeps its contract
name although `promtool check metrics` prefers base units; it is the one lint exception the tests allow.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agent.status import AgentSnapshot

if TYPE_CHECKING:  # only for annotations: the metrics never import the parts they observe at runtime
    from agent.cloud import CloudClient
    from agent.plc import PlcDevice, ReadBlock
    from agent.sampling import Sampler
    from agent.spool import Record, Shipper, Spool, SpoolWriter

__all__ = [
    "AGENT_INFO",
    "AGENT_INFO_LABELS",
    "ALARMS_ACTIVE",
    "ALARM_SEVERITIES",
    "BUILD_INFO",
    "BUILD_INFO_LABELS",
    "COMMAND_LATENCY",
    "COMMAND_LATENCY_BUCKETS",
    "CONTENT_TYPE",
    "ERRORS_TOTAL_TEMPLATE",
    "KNOWN_ERROR_AREAS",
    "MAX_BLOCK_SERIES",
    "PLC_BLOCK_READ_DURATION",
    "PLC_READ_BUCKETS",
    "PLC_READ_DURATION",
    "SNAPSHOT_METRICS",
    "STEP_TIMING_ERROR",
    "STEP_TIMING_ERROR_BUCKETS",
    "AgentMetrics",
    "error_metric_name",
]

CONTENT_TYPE = CONTENT_TYPE_LATEST  # "text/plain; version=0.0.4; charset=utf-8"

# -- names (contract) ---------------------------------------------------------------------------------------------
AGENT_INFO = "ald_agent_info"
AGENT_INFO_LABELS = ("version", "color", "role", "instance_id", "machine_id")
# docs/DESIGN.md §7 "Runtime interface" asks for this exact series to tell which version runs on which color.
BUILD_INFO = "agent_build_info"
BUILD_INFO_LABELS = ("version", "color")
ROLE_ACTIVE = "ald_agent_role_active"
SERVING = "ald_agent_serving"
UPTIME = "ald_uptime_seconds"
PLC_CONNECTED = "ald_plc_connected"
DATABASE_CONNECTED = "ald_database_connected"
REALTIME_CONNECTED = "ald_realtime_connected"
SAMPLER_RUNNING = "ald_sampler_running"
LOGGING_INTERVAL = "ald_parameter_logging_interval"
PLC_READ_SECONDS = "ald_plc_read_seconds"
MEMORY_MB = "ald_memory_usage_mb"
SPOOL_DEPTH = "ald_spool_depth"
SPOOL_BYTES = "ald_spool_bytes"
SPOOL_QUARANTINED = "ald_spool_quarantined"
# Counters are named with their `_total` suffix, as exposed (prometheus-client's families take the stem).
SPOOL_DROPPED = "ald_spool_dropped_total"
SPOOL_SHIPPED = "ald_spool_shipped_total"
FRAMES = "ald_frames_total"
FAILED_FRAMES = "ald_failed_frames_total"
SKIPPED_TICKS = "ald_skipped_ticks_total"
LATE_TICKS = "ald_late_ticks_total"
ERRORS_TOTAL_TEMPLATE = "ald_{area}_errors_total"
MAP_REFUSED = "ald_map_refused"
MAP_REFUSALS = "ald_map_refusals_total"
INTERLOCKS = "ald_interlocks"
INTERLOCK_BLOCKS = "ald_interlock_blocks_total"
INTERLOCK_TRIPS = "ald_interlock_trips_total"
SAFE_STATE_PENDING = "ald_safe_state_pending"
SAFETY_PROBLEMS = "ald_safety_problems"
CLOUD_AUTH_FAILED = "ald_cloud_auth_failed"
CLOUD_AUTH_FAILURES = "ald_cloud_auth_failures_total"
CLOUD_KEY_EXPIRY = "ald_cloud_key_expiry_timestamp_seconds"
COMMAND_LATENCY = "ald_command_latency_seconds"
STEP_TIMING_ERROR = "ald_step_timing_error_seconds"
CPU_PERCENT = "ald_cpu_usage_percent"
DATABASE_REQUEST = "ald_database_request_seconds"
LOGGING_INTERVAL_DISTRIBUTION = "ald_parameter_logging_interval_seconds"
READ_TO_ROW = "ald_read_to_row_seconds"
PLC_READ_DURATION = "ald_plc_read_duration_seconds"
PLC_BLOCK_READ_DURATION = "ald_plc_block_read_duration_seconds"
RECIPE_RUNS = "ald_recipe_runs_total"
COMMANDS = "ald_commands_total"
SPOOL_DISK_FREE = "ald_spool_disk_free_bytes"
SPOOL_DISK_SIZE = "ald_spool_disk_size_bytes"
ALARMS_ACTIVE = "ald_alarms_active"  # {severity}
ALARMS_UNACKNOWLEDGED = "ald_alarms_unacknowledged"
#: Every severity of agent/alarms/model.py, always exported (0 when none), so alert expressions see a series.
ALARM_SEVERITIES = ("critical", "high", "medium", "low")

# Always exported (0 when the snapshot has no entry), so alert expressions never see an absent series.
KNOWN_ERROR_AREAS = ("plc", "database", "realtime")

# Command insert → claimed: docs/DESIGN.md §8 targets p50 < 100 ms, p99 < 500 ms; the predecessor took up to 12 s.
COMMAND_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Step/valve timing error: docs/DESIGN.md §8 targets p99 < 5 ms, so the resolution is sub-millisecond around that.
STEP_TIMING_ERROR_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

# PostgREST round trips: a few ms on a LAN, ~50-200 ms to a hosted project; 10 s is the client's timeout.
DATABASE_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0)
# Frame intervals around the 1 s target, resolved to ±10 ms (DESIGN §8: 1 s ± 10 ms).
LOGGING_INTERVAL_BUCKETS = (0.5, 0.9, 0.98, 0.99, 0.995, 1.0, 1.005, 1.01, 1.02, 1.1, 1.5, 2.0, 3.0, 5.0)
# Read → row: about a second when healthy (batching), minutes after an outage (the spool replays).
READ_TO_ROW_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0)
# Full-frame PLC read: docs/DESIGN.md §8 targets p99 < 10 ms for 500 parameters, so 1 ms steps up to it (the
# share of reads over target is one exact bucket), then coarser out to the 1 s PLC timeout and beyond.
PLC_READ_BUCKETS = (
    0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008, 0.009, 0.01,
    0.0125, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip
# One planned block (one Modbus request when the PLC accepts it): a loopback round trip is ~0.3 ms, a LAN
# one a few ms. Coarse on purpose: this family has one series set per block.
PLC_BLOCK_READ_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0)
#: Blocks beyond this many distinct ones share the label value "other": a map of thousands of scattered
#: parameters cannot explode the series count (16 blocks for the 500-parameter bench map, 10 for the reference).
MAX_BLOCK_SERIES = 64
FINAL_RUN_STATUSES = frozenset({"succeeded", "failed", "aborted", "interrupted"})
FINAL_COMMAND_STATUSES = frozenset({"succeeded", "failed", "rejected"})
COMMAND_TYPES = ("start_recipe", "stop_recipe", "pause_recipe", "resume_recipe", "set_parameter", "ack_alarm")
DATABASE_OPERATIONS = ("select", "insert", "update", "upsert", "rpc")

_AREA_UNSAFE = re.compile(r"[^a-z0-9_]+")

# name → (kind, help, value from the snapshot); kind "gauge" or "counter". None values are skipped (no sample).
_Reading = Callable[[AgentSnapshot], float | None]
SNAPSHOT_METRICS: dict[str, tuple[str, str, _Reading]] = {
    ROLE_ACTIVE: ("gauge", "1 when this instance holds the machine lease (active), 0 on standby.",
                  lambda s: float(s.role == "active")),
    SERVING: ("gauge", "1 while the agent serves (started, not shutting down).", lambda s: float(s.serving)),
    UPTIME: ("gauge", "Seconds since the agent started.", lambda s: s.uptime_s),
    PLC_CONNECTED: ("gauge", "1 when the Modbus TCP connection to the PLC is up.", lambda s: float(s.plc_connected)),
    DATABASE_CONNECTED: ("gauge", "1 when the last Supabase call got an answer.",
                         lambda s: float(s.database_connected)),
    REALTIME_CONNECTED: ("gauge", "1 when the Supabase realtime subscription is up.",
                         lambda s: float(s.realtime_connected)),
    SAMPLER_RUNNING: ("gauge", "1 while the sampler task is alive.", lambda s: float(s.sampling)),
    LOGGING_INTERVAL: ("gauge", "Last measured interval between two sample frames, seconds.",
                       lambda s: s.logging_interval_s),
    PLC_READ_SECONDS: ("gauge", "Duration of the last full-frame PLC read, seconds.",
                       lambda s: None if s.plc_response_ms is None else s.plc_response_ms / 1000.0),
    MEMORY_MB: ("gauge", "Resident memory of the agent process, MB.", lambda s: s.memory_mb),
    SPOOL_DEPTH: ("gauge", "Records waiting in the local spool.", lambda s: float(s.spool_depth)),
    SPOOL_BYTES: ("gauge", "Size of the records waiting in the local spool, bytes.", lambda s: float(s.spool_bytes)),
    SPOOL_QUARANTINED: ("gauge", "Spool records refused by Supabase and set aside.", lambda s: float(s.quarantined)),
    SPOOL_DROPPED: ("counter", "Telemetry records dropped because the spool hit SPOOL_MAX_MB.",
                    lambda s: float(s.dropped)),
    SPOOL_SHIPPED: ("counter", "Spool records shipped to Supabase.", lambda s: float(s.shipped)),
    FRAMES: ("counter", "Sample frames acquired.", lambda s: float(s.frames)),
    FAILED_FRAMES: ("counter", "Sample frames whose PLC read failed (values published as nulls).",
                    lambda s: float(s.failed_frames)),
    SKIPPED_TICKS: ("counter", "Sampler deadlines missed and skipped (never accumulated).",
                    lambda s: float(s.skipped_ticks)),
    LATE_TICKS: ("counter", "Sampler ticks taken late: the read before ran past their deadline (taken, not skipped).",
                 lambda s: float(s.late_ticks)),
    MAP_REFUSED: ("gauge", "1 while the machine's register map in Supabase is refused (the previous map is kept).",
                  lambda s: float(s.map_refused)),
    MAP_REFUSALS: ("counter", "Register maps refused since start.", lambda s: float(s.map_refusals)),
    INTERLOCKS: ("gauge", "Interlocks in force.", lambda s: float(s.interlocks)),
    INTERLOCK_BLOCKS: ("counter", "Writes refused by a permit interlock.", lambda s: float(s.interlock_blocks)),
    INTERLOCK_TRIPS: ("counter", "Runs stopped or held by a trip interlock.", lambda s: float(s.interlock_trips)),
    SAFE_STATE_PENDING: ("gauge", "1 while a close or safe-state write is unconfirmed (watchdog kicks stopped).",
                         lambda s: float(s.safe_state_pending)),
    SAFETY_PROBLEMS: ("gauge", "Safety problems in force (refused map or interlocks, unconfirmed safe state).",
                      lambda s: float(len(s.safety_problems))),
    CLOUD_AUTH_FAILED: ("gauge", "1 while Supabase refuses SUPABASE_KEY (records are held in the spool).",
                        lambda s: float(s.cloud_auth_error is not None)),
    CLOUD_AUTH_FAILURES: ("counter", "Supabase calls refused for the key (expired, revoked, wrong secret).",
                          lambda s: float(s.cloud_auth_failures)),
    ALARMS_UNACKNOWLEDGED: ("gauge", "Open process alarms not acknowledged yet (active or back to normal).",
                            lambda s: float(s.alarms_unacknowledged)),
    CLOUD_KEY_EXPIRY: ("gauge", "When SUPABASE_KEY expires (its exp claim), Unix seconds; absent without one.",
                       lambda s: None if s.cloud_key_expires_at is None else s.cloud_key_expires_at.timestamp()),
}  # fmt: skip


MAX_PENDING_COMMANDS = 1000


class _CpuMeter:
    """Process CPU % (of one core) between two readings at least `min_window_s` apart; the first reading
    measures since the process started."""

    def __init__(self, *, min_window_s: float = 1.0) -> None:
        self.min_window_s = min_window_s
        self._at, self._cpu = time.monotonic(), _cpu_seconds()
        self._start_at, self._start_cpu = self._at, self._cpu
        self._percent: float | None = None

    def percent(self) -> float:
        now, cpu = time.monotonic(), _cpu_seconds()
        if now - self._at >= self.min_window_s:
            self._percent = 100.0 * (cpu - self._cpu) / (now - self._at)
            self._at, self._cpu = now, cpu
        if self._percent is None:  # first scrape within the first second
            elapsed = max(now - self._start_at, 1e-3)
            return 100.0 * (cpu - self._start_cpu) / elapsed
        return self._percent


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


class _ScrapeTimeCollector(Collector):
    """Values read at scrape time that are not in the snapshot: CPU % and the spool volume's space."""

    def __init__(self, metrics: AgentMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        cpu = GaugeMetricFamily(CPU_PERCENT, "CPU used by the agent process, % of one core (user + system).")
        cpu.add_metric([], self._metrics._cpu.percent())
        yield cpu
        directory = self._metrics._spool_dir
        if directory is None:
            return
        try:
            fs = os.statvfs(directory)
        except OSError:
            return
        free = GaugeMetricFamily(SPOOL_DISK_FREE, "Bytes available to the agent on the spool's filesystem.")
        free.add_metric([], float(fs.f_bavail * fs.f_frsize))
        size = GaugeMetricFamily(SPOOL_DISK_SIZE, "Size of the spool's filesystem, bytes.")
        size.add_metric([], float(fs.f_blocks * fs.f_frsize))
        yield free
        yield size


def error_metric_name(area: str) -> str:
    """`ald_<area>_errors_total` for an error area, the area reduced to [a-z0-9_] ("Real-time" → "real_time")."""
    safe = _AREA_UNSAFE.sub("_", area.lower()).strip("_") or "unknown"
    return ERRORS_TOTAL_TEMPLATE.format(area=safe)


def _stem(counter_name: str) -> str:
    return counter_name.removesuffix("_total")


class _SnapshotCollector(Collector):
    """Turns one fresh snapshot per scrape into metric families; no state of its own."""

    def __init__(self, snapshot: Callable[[], AgentSnapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()
        info = GaugeMetricFamily(AGENT_INFO, "Identity of this agent instance (always 1).", labels=AGENT_INFO_LABELS)
        info.add_metric([snap.version, snap.color, snap.role, snap.instance_id, snap.machine_id or ""], 1.0)
        yield info
        build = GaugeMetricFamily(BUILD_INFO, "Version running on this color (always 1).", labels=BUILD_INFO_LABELS)
        build.add_metric([snap.version, snap.color], 1.0)
        yield build
        for name, (kind, help_text, read) in SNAPSHOT_METRICS.items():
            value = read(snap)
            if value is None:  # never measured yet: no sample rather than a fake 0
                continue
            family = (
                CounterMetricFamily(_stem(name), help_text) if kind == "counter" else GaugeMetricFamily(name, help_text)
            )
            family.add_metric([], value)
            yield family
        yield from self._errors(snap)
        alarms = GaugeMetricFamily(
            ALARMS_ACTIVE, "Active process alarms (acknowledged or not), by severity.", labels=("severity",)
        )
        for severity in ALARM_SEVERITIES:
            alarms.add_metric([severity], float(snap.alarms_active.get(severity, 0)))
        yield alarms

    @staticmethod
    def _errors(snap: AgentSnapshot) -> Iterator[Metric]:
        totals = dict.fromkeys(map(error_metric_name, KNOWN_ERROR_AREAS), 0)
        for area, count in snap.errors.items():
            name = error_metric_name(area)
            totals[name] = totals.get(name, 0) + count  # two spellings of one area add up
        for name, count in sorted(totals.items()):
            family = CounterMetricFamily(_stem(name), "Errors counted in this area since start.")
            family.add_metric([], float(count))
            yield family


class AgentMetrics:
    """The agent's metrics registry: live snapshot gauges/counters plus the two timing histograms.

    `snapshot` is called once per scrape on the event loop, so it must be cheap and never block.
    """

    def __init__(self, *, snapshot: Callable[[], AgentSnapshot]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_SnapshotCollector(snapshot))
        self._command_latency = Histogram(
            COMMAND_LATENCY,
            "Time from a command's insert to its claim by this agent, seconds.",
            buckets=COMMAND_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._step_timing_error = Histogram(
            STEP_TIMING_ERROR,
            "Absolute difference between a recipe step's actual and planned duration, seconds.",
            buckets=STEP_TIMING_ERROR_BUCKETS,
            registry=self.registry,
        )

        self._cpu = _CpuMeter()
        self._spool_dir: Path | None = None
        self.registry.register(_ScrapeTimeCollector(self))
        self._database_request = Histogram(
            DATABASE_REQUEST,
            "Duration of one Supabase REST call, seconds, by operation and whether Supabase answered.",
            labelnames=("operation", "answered"),
            buckets=DATABASE_REQUEST_BUCKETS,
            registry=self.registry,
        )
        self._logging_interval = Histogram(
            LOGGING_INTERVAL_DISTRIBUTION,
            "Interval between two sample frames, seconds (the target is PARAMETER_LOGGING_INTERVAL).",
            buckets=LOGGING_INTERVAL_BUCKETS,
            registry=self.registry,
        )
        self._read_to_row = Histogram(
            READ_TO_ROW,
            "Time from a frame's PLC read (its spool append) to its parameter_history row accepted, seconds.",
            buckets=READ_TO_ROW_BUCKETS,
            registry=self.registry,
        )
        self._plc_read = Histogram(
            PLC_READ_DURATION,
            "Duration of one full-frame PLC read (every planned block), seconds.",
            buckets=PLC_READ_BUCKETS,
            registry=self.registry,
        )
        self._plc_block_read = Histogram(
            PLC_BLOCK_READ_DURATION,
            "Duration of one planned block of a full-frame read, seconds, by block (`<table> <start>+<count>`); "
            f"beyond {MAX_BLOCK_SERIES} blocks the rest are `other`.",
            labelnames=("block",),
            buckets=PLC_BLOCK_READ_BUCKETS,
            registry=self.registry,
        )
        self._block_plan: object = None  # the device plan the block series belong to
        self._block_labels: set[str] = set()
        self._block_series: dict[int, tuple[ReadBlock, Histogram]] = {}  # id(block) → (block, its histogram child)
        self._recipe_runs = Counter(
            _stem(RECIPE_RUNS), "Recipe runs ended, by outcome.", labelnames=("outcome",), registry=self.registry
        )
        self._commands = Counter(
            _stem(COMMANDS),
            "Commands finished by this agent, by type and outcome (succeeded, failed, rejected).",
            labelnames=("type", "outcome"),
            registry=self.registry,
        )
        # Present at 0 from the start: a rate or success-rate query then has series to work on, never nothing.
        for outcome in sorted(FINAL_RUN_STATUSES):
            self._recipe_runs.labels(outcome=outcome)
        for command_type in COMMAND_TYPES:
            for outcome in sorted(FINAL_COMMAND_STATUSES):
                self._commands.labels(type=command_type, outcome=outcome)
        for operation in DATABASE_OPERATIONS:
            for answered in ("true", "false"):
                self._database_request.labels(operation=operation, answered=answered)
        self._command_types: dict[int, str] = {}

    def attach(
        self,
        *,
        cloud: CloudClient | None = None,
        writer: SpoolWriter | None = None,
        shipper: Shipper | None = None,
        sampler: Sampler | None = None,
        spool: Spool | None = None,
        device: PlcDevice | None = None,
    ) -> None:
        """Subscribe to the parts' observer lists (see the module docstring); each part is optional."""
        if cloud is not None:
            cloud.request_observers.append(self.observe_database_request)
        if writer is not None:
            writer.observers.append(self.observe_record)
        if shipper is not None:
            shipper.shipped_observers.append(self.observe_shipped)
        if sampler is not None:
            sampler.interval_observers.append(self.observe_logging_interval)
            sampler.read_observers.append(self.observe_plc_read)
        if device is not None:
            observed = device

            def on_block(block: ReadBlock, seconds: float, ok: bool) -> None:
                self.observe_block_read(block, seconds, ok=ok, plan=observed.plan)

            device.block_observers.append(on_block)
        if spool is not None:
            self._spool_dir = spool.path.parent

    def observe_database_request(self, operation: str, seconds: float, answered: bool) -> None:
        if math.isfinite(seconds):
            self._database_request.labels(operation=operation, answered=str(answered).lower()).observe(seconds)

    def observe_logging_interval(self, seconds: float) -> None:
        if math.isfinite(seconds):
            self._logging_interval.observe(seconds)

    def observe_plc_read(self, seconds: float) -> None:
        """One full-frame read's duration (all its blocks), seconds."""
        if math.isfinite(seconds):
            self._plc_read.observe(seconds)

    def observe_block_read(self, block: ReadBlock, seconds: float, *, ok: bool = True, plan: object = None) -> None:
        """One planned block's read duration. A failed block (link down, timeout) is not a latency: skipped.

        `plan`: the device's current plan; when it changes (a reloaded map), the old blocks' series are dropped
        so a map swap leaves no stale address ranges behind."""
        if not ok or not math.isfinite(seconds):
            return
        if plan is not self._block_plan:
            self._block_plan = plan
            self._plc_block_read.clear()
            self._block_labels.clear()
            self._block_series.clear()
        # 16 blocks per frame at 10 Hz: each block's series is looked up once per plan, not on every frame.
        cached = self._block_series.get(id(block))
        if cached is not None and cached[0] is block:
            series = cached[1]
        else:
            label = str(block)
            if label not in self._block_labels:
                if len(self._block_labels) >= MAX_BLOCK_SERIES:
                    label = "other"
                else:
                    self._block_labels.add(label)
            series = self._plc_block_read.labels(block=label)
            self._block_series[id(block)] = (block, series)
        series.observe(seconds)

    def observe_shipped(self, records: Sequence[Record], *, now: float | None = None) -> None:
        """History records accepted by Supabase: append → accepted, per frame."""
        now = time.time() if now is None else now
        for record in records:
            if record.kind == "history":
                self._read_to_row.observe(max(0.0, now - record.created))

    def note_command(self, command_id: int, command_type: str) -> None:
        """A claimed command's type, until the record of its final status names only its id."""
        if len(self._command_types) > MAX_PENDING_COMMANDS:  # never grows without bound
            self._command_types.pop(next(iter(self._command_types)))
        self._command_types[command_id] = command_type

    def observe_record(self, kind: str, payload: Any) -> None:
        """Count recipe outcomes (a run record with a final status) and commands by type and outcome."""
        if not isinstance(payload, Mapping):
            return
        if kind == "run" and payload.get("status") in FINAL_RUN_STATUSES and payload.get("finished_at"):
            self._recipe_runs.labels(outcome=str(payload["status"])).inc()
        elif kind == "command":
            status = (payload.get("values") or {}).get("status")
            if status in FINAL_COMMAND_STATUSES:
                command_type = self._command_types.pop(payload.get("id"), "unknown")  # type: ignore[arg-type]
                self._commands.labels(type=command_type, outcome=str(status)).inc()

    def observe_command_latency(self, seconds: float) -> None:
        """Record one command's insert → claim latency.

        The insert time comes from the database clock, the claim from ours, so a small skew can make it
        negative: it is clamped to 0. Non-finite values (a missing timestamp upstream) are ignored.
        """
        if math.isfinite(seconds):
            self._command_latency.observe(max(seconds, 0.0))

    def observe_step_timing_error(self, seconds: float) -> None:
        """Record one step's timing error (actual − planned, seconds); early and late both count as |error|."""
        if math.isfinite(seconds):
            self._step_timing_error.observe(abs(seconds))

    def render(self) -> bytes:
        """The whole registry in Prometheus text format (serve with `CONTENT_TYPE`)."""
        return generate_latest(self.registry)
