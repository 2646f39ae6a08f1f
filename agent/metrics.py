"""Prometheus metrics of one agent, read from its live snapshot at every scrape.

`AgentMetrics` owns its own `CollectorRegistry` (never the process-wide default), so two agents, or two tests,
can live in one process without "Duplicated timeseries" errors. Everything that describes the agent's state
(connections, spool, frames, errors, role) comes from a custom collector that calls the `snapshot` callable at
collect time: the values are the real state, never a cached constant. Only the two timing distributions are
pushed by hooks, because a snapshot cannot carry a distribution:

    metrics = AgentMetrics(snapshot=app.snapshot)
    metrics.observe_command_latency(0.042)      # command insert → claimed, seconds
    metrics.observe_step_timing_error(-0.0013)  # |actual − planned| of one recipe step, seconds
    body = metrics.render()                     # Prometheus text format, CONTENT_TYPE below

Metric and label names are a contract (docs/DESIGN.md §6, the alert rules and Grafana dashboards in monitoring/, the
deploy harness): they are the constants below and a test pins them. `ald_memory_usage_mb` keeps its contract
name although `promtool check metrics` prefers base units; it is the one lint exception the tests allow.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agent.status import AgentSnapshot

__all__ = [
    "AGENT_INFO",
    "AGENT_INFO_LABELS",
    "BUILD_INFO",
    "BUILD_INFO_LABELS",
    "COMMAND_LATENCY",
    "COMMAND_LATENCY_BUCKETS",
    "CONTENT_TYPE",
    "ERRORS_TOTAL_TEMPLATE",
    "KNOWN_ERROR_AREAS",
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

# Always exported (0 when the snapshot has no entry), so alert expressions never see an absent series.
KNOWN_ERROR_AREAS = ("plc", "database", "realtime")

# Command insert → claimed: docs/DESIGN.md §8 targets p50 < 100 ms, p99 < 500 ms; the predecessor took up to 12 s.
COMMAND_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Step/valve timing error: docs/DESIGN.md §8 targets p99 < 5 ms, so the resolution is sub-millisecond around that.
STEP_TIMING_ERROR_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

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
    CLOUD_KEY_EXPIRY: ("gauge", "When SUPABASE_KEY expires (its exp claim), Unix seconds; absent without one.",
                       lambda s: None if s.cloud_key_expires_at is None else s.cloud_key_expires_at.timestamp()),
}  # fmt: skip


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
