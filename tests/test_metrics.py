"""AgentMetrics: pinned names, an own registry per agent, live values from the snapshot, histogram hooks."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

import agent.metrics
from agent.metrics import (
    COMMAND_LATENCY_BUCKETS,
    MAX_BLOCK_SERIES,
    PLC_BLOCK_READ_DURATION,
    PLC_READ_BUCKETS,
    STEP_TIMING_ERROR_BUCKETS,
    AgentMetrics,
    error_metric_name,
)
from agent.plc import PlcDevice, ReadBlock, RegisterKind
from agent.plc.sim import Simulator
from agent.sampling import MemorySink, Sampler
from agent.status import AgentSnapshot

SNAP = AgentSnapshot(
    version="2.0.1",
    color="green",
    role="standby",
    instance_id="green-1",
    machine_id=None,
    started_at=datetime(2026, 1, 1, tzinfo=UTC),
    uptime_s=61.0,
    serving=True,
    plc_connected=False,
    plc_last_error="refused",
    plc_response_ms=None,
    database_connected=True,
    realtime_connected=False,
    sampling=True,
    logging_interval_s=None,
    frames=5,
    skipped_ticks=0,
    late_ticks=3,
    failed_frames=5,
    spool_depth=12,
    spool_bytes=3000,
    quarantined=1,
    dropped=2,
    shipped=40,
    memory_mb=48.0,
    errors={"plc": 5},
)

# The contract: families (as exposed, counters with _total) and the labels of the info series.
PINNED_FAMILIES = {
    "ald_agent_info": "gauge",
    "agent_build_info": "gauge",
    "ald_agent_role_active": "gauge",
    "ald_agent_serving": "gauge",
    "ald_uptime_seconds": "gauge",
    "ald_plc_connected": "gauge",
    "ald_database_connected": "gauge",
    "ald_realtime_connected": "gauge",
    "ald_sampler_running": "gauge",
    "ald_parameter_logging_interval": "gauge",
    "ald_plc_read_seconds": "gauge",
    "ald_memory_usage_mb": "gauge",
    "ald_spool_depth": "gauge",
    "ald_spool_bytes": "gauge",
    "ald_spool_quarantined": "gauge",
    "ald_spool_dropped_total": "counter",
    "ald_spool_shipped_total": "counter",
    "ald_frames_total": "counter",
    "ald_failed_frames_total": "counter",
    "ald_skipped_ticks_total": "counter",
    "ald_late_ticks_total": "counter",
    "ald_map_refused": "gauge",
    "ald_map_refusals_total": "counter",
    "ald_interlocks": "gauge",
    "ald_interlock_blocks_total": "counter",
    "ald_interlock_trips_total": "counter",
    "ald_safe_state_pending": "gauge",
    "ald_safety_problems": "gauge",
    "ald_cloud_auth_failed": "gauge",
    "ald_cloud_auth_failures_total": "counter",
    "ald_cloud_key_expiry_timestamp_seconds": "gauge",
    "ald_plc_errors_total": "counter",
    "ald_database_errors_total": "counter",
    "ald_realtime_errors_total": "counter",
    "ald_command_latency_seconds": "histogram",
    "ald_step_timing_error_seconds": "histogram",
    "ald_cpu_usage_percent": "gauge",
    "ald_database_request_seconds": "histogram",
    "ald_parameter_logging_interval_seconds": "histogram",
    "ald_read_to_row_seconds": "histogram",
    "ald_plc_read_duration_seconds": "histogram",
    "ald_plc_block_read_duration_seconds": "histogram",
    "ald_recipe_runs_total": "counter",
    "ald_commands_total": "counter",
    "ald_alarms_active": "gauge",
    "ald_alarms_unacknowledged": "gauge",
}
# Only with a spool attached (its filesystem).
SPOOL_DISK_FAMILIES = {"ald_spool_disk_free_bytes": "gauge", "ald_spool_disk_size_bytes": "gauge"}


def _families(metrics: AgentMetrics) -> dict[str, str]:
    exposed = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        if family.name.endswith("_created"):  # prometheus-client's own histogram creation stamps, not ours
            continue
        name = family.name + "_total" if family.type == "counter" else family.name
        exposed[name] = family.type
    return exposed


def _values(metrics: AgentMetrics) -> dict[str, float]:
    return {s.name: s.value for f in text_string_to_metric_families(metrics.render().decode()) for s in f.samples}


def _labels(metrics: AgentMetrics, name: str) -> dict[str, str]:
    families = text_string_to_metric_families(metrics.render().decode())
    return next(s.labels for f in families for s in f.samples if s.name == name)


def test_names_are_pinned() -> None:
    measured = replace(
        SNAP, logging_interval_s=1.0, plc_response_ms=3.0, cloud_key_expires_at=datetime(2027, 1, 1, tzinfo=UTC)
    )
    assert _families(AgentMetrics(snapshot=lambda: measured)) == PINNED_FAMILIES
    assert agent.metrics.AGENT_INFO_LABELS == ("version", "color", "role", "instance_id", "machine_id")
    assert agent.metrics.BUILD_INFO_LABELS == ("version", "color")
    assert sorted(agent.metrics.__all__) == sorted(
        ["AGENT_INFO", "AGENT_INFO_LABELS", "ALARMS_ACTIVE", "ALARM_SEVERITIES", "BUILD_INFO", "BUILD_INFO_LABELS",
         "COMMAND_LATENCY", "COMMAND_LATENCY_BUCKETS", "CONTENT_TYPE", "ERRORS_TOTAL_TEMPLATE", "KNOWN_ERROR_AREAS",
         "MAX_BLOCK_SERIES", "PLC_BLOCK_READ_DURATION", "PLC_READ_BUCKETS", "PLC_READ_DURATION",
         "SNAPSHOT_METRICS", "STEP_TIMING_ERROR", "STEP_TIMING_ERROR_BUCKETS", "AgentMetrics", "error_metric_name"]
    )  # fmt: skip


def test_values_come_from_the_snapshot() -> None:
    values = _values(AgentMetrics(snapshot=lambda: SNAP))
    hooked = (
        "ald_command",
        "ald_step",
        "ald_cpu",
        "ald_database_request",
        "ald_parameter_logging_interval_seconds",
        "ald_read_to_row",
        "ald_plc_read_duration",
        "ald_recipe_runs",
        "ald_alarms_active",  # one sample per severity: test_alarms_active_by_severity
    )  # fed by hooks or read at scrape time, not from the snapshot
    assert {k: v for k, v in values.items() if not k.startswith(hooked)} == {
        "ald_agent_info": 1,
        "agent_build_info": 1,
        "ald_agent_role_active": 0,
        "ald_agent_serving": 1,
        "ald_uptime_seconds": 61,
        "ald_plc_connected": 0,
        "ald_database_connected": 1,
        "ald_realtime_connected": 0,
        "ald_sampler_running": 1,
        "ald_memory_usage_mb": 48,
        "ald_spool_depth": 12,
        "ald_spool_bytes": 3000,
        "ald_spool_quarantined": 1,
        "ald_spool_dropped_total": 2,
        "ald_spool_shipped_total": 40,
        "ald_frames_total": 5,
        "ald_failed_frames_total": 5,
        "ald_skipped_ticks_total": 0,
        "ald_late_ticks_total": 3,  # ticks taken late are counted apart from the skipped ones
        "ald_map_refused": 0,
        "ald_map_refusals_total": 0,
        "ald_interlocks": 0,
        "ald_interlock_blocks_total": 0,
        "ald_interlock_trips_total": 0,
        "ald_safe_state_pending": 0,
        "ald_safety_problems": 0,
        "ald_cloud_auth_failed": 0,
        "ald_cloud_auth_failures_total": 0,
        "ald_plc_errors_total": 5,
        "ald_database_errors_total": 0,
        "ald_realtime_errors_total": 0,
        "ald_alarms_unacknowledged": 0,
    }  # logging interval and PLC read time never measured, a key without expiry: absent, not a fake 0


def test_alarms_active_by_severity_every_severity_present() -> None:
    snap = replace(SNAP, alarms_active={"critical": 2, "medium": 1}, alarms_unacknowledged=3)
    families = text_string_to_metric_families(AgentMetrics(snapshot=lambda: snap).render().decode())
    samples = {s.labels["severity"]: s.value for f in families if f.name == "ald_alarms_active" for s in f.samples}
    assert samples == {"critical": 2, "high": 0, "medium": 1, "low": 0}
    assert _values(AgentMetrics(snapshot=lambda: snap))["ald_alarms_unacknowledged"] == 3


def test_info_labels() -> None:
    metrics = AgentMetrics(snapshot=lambda: SNAP)
    assert _labels(metrics, "ald_agent_info") == {
        "version": "2.0.1", "color": "green", "role": "standby", "instance_id": "green-1", "machine_id": ""
    }  # fmt: skip
    assert _labels(metrics, "agent_build_info") == {"version": "2.0.1", "color": "green"}


def test_read_at_every_scrape() -> None:
    current = [SNAP]
    metrics = AgentMetrics(snapshot=lambda: current[0])
    assert _values(metrics)["ald_spool_depth"] == 12
    current[0] = replace(SNAP, spool_depth=13, role="active", logging_interval_s=1.002, plc_response_ms=7.5)
    values = _values(metrics)
    assert values["ald_spool_depth"] == 13
    assert values["ald_agent_role_active"] == 1
    assert values["ald_parameter_logging_interval"] == 1.002
    assert values["ald_plc_read_seconds"] == pytest.approx(0.0075)


def test_own_registry_per_agent() -> None:
    one, two = AgentMetrics(snapshot=lambda: SNAP), AgentMetrics(snapshot=lambda: replace(SNAP, color="blue"))
    one.observe_command_latency(1.0)
    assert _values(one)["ald_command_latency_seconds_count"] == 1
    assert _values(two)["ald_command_latency_seconds_count"] == 0
    assert REGISTRY.get_sample_value("ald_command_latency_seconds_count") is None  # the global registry is untouched


@pytest.mark.parametrize(
    ("area", "name"),
    [
        ("plc", "ald_plc_errors_total"),
        ("database", "ald_database_errors_total"),
        ("Real-time", "ald_real_time_errors_total"),
        ("spool/ship", "ald_spool_ship_errors_total"),
        ("--", "ald_unknown_errors_total"),
    ],
    ids=["plc", "database", "case-and-dash", "slash", "nothing-left"],
)
def test_error_metric_name(area: str, name: str) -> None:
    assert error_metric_name(area) == name


def test_error_areas_merge_and_extend() -> None:
    snap = replace(SNAP, errors={"plc": 2, "PLC": 3, "recipe": 1})
    values = _values(AgentMetrics(snapshot=lambda: snap))
    assert values["ald_plc_errors_total"] == 5
    assert values["ald_recipe_errors_total"] == 1
    assert values["ald_database_errors_total"] == 0


@pytest.mark.parametrize(
    ("observed", "count", "total"),
    [
        ([0.05, 0.2], 2, 0.25),
        ([-0.01], 1, 0.0),  # clock skew between the database and us: clamped to 0
        ([math.nan, math.inf], 0, 0.0),  # missing timestamps upstream: ignored
    ],
    ids=["normal", "negative-clamped", "non-finite-ignored"],
)
def test_command_latency_hook(observed: list[float], count: int, total: float) -> None:
    metrics = AgentMetrics(snapshot=lambda: SNAP)
    for seconds in observed:
        metrics.observe_command_latency(seconds)
    values = _values(metrics)
    assert values["ald_command_latency_seconds_count"] == count
    assert values["ald_command_latency_seconds_sum"] == pytest.approx(total)


def test_step_timing_error_is_absolute() -> None:
    metrics = AgentMetrics(snapshot=lambda: SNAP)
    for seconds in (-0.004, 0.004, 0.0004):
        metrics.observe_step_timing_error(seconds)
    families = text_string_to_metric_families(metrics.render().decode())
    buckets = {s.labels["le"]: s.value for f in families for s in f.samples if s.name.endswith("error_seconds_bucket")}
    assert (buckets["0.0005"], buckets["0.003"], buckets["0.005"], buckets["+Inf"]) == (1, 1, 3, 3)


@pytest.mark.parametrize(
    "buckets", [COMMAND_LATENCY_BUCKETS, STEP_TIMING_ERROR_BUCKETS, PLC_READ_BUCKETS], ids=["command", "step", "read"]
)
def test_buckets_resolve_the_targets(buckets: tuple[float, ...]) -> None:
    assert list(buckets) == sorted(set(buckets))
    assert 0.005 in buckets or 0.5 in buckets  # the docs/DESIGN.md §8 p99 targets are bucket edges
    if buckets is PLC_READ_BUCKETS:
        assert 0.01 in buckets


MONITORING = Path(__file__).resolve().parent.parent / "monitoring"
_REFERENCED = re.compile(r"\b(?:ald|agent)_[a-z0-9_]+")
_HISTOGRAM_SERIES = re.compile(r"_(?:bucket|sum|count)$")


@pytest.mark.skipif(not (MONITORING / "alert_rules.yml").exists(), reason="monitoring/alert_rules.yml not present")
def test_every_metric_the_alert_rules_use_is_exported() -> None:
    rules = (MONITORING / "alert_rules.yml").read_text()
    referenced = {_HISTOGRAM_SERIES.sub("", name) for name in _REFERENCED.findall(rules)}
    assert referenced, "the rules reference no agent metric: the pattern is stale"
    assert referenced <= set(PINNED_FAMILIES) | set(SPOOL_DISK_FAMILIES), referenced - set(PINNED_FAMILIES)


def test_a_refused_key_raises_the_gauge_and_the_counter_counts_refused_calls() -> None:
    refused = replace(SNAP, cloud_auth_error="upsert parameter_history: JWT expired (PGRST303)", cloud_auth_failures=7)
    values = _values(AgentMetrics(snapshot=lambda: refused))
    assert (values["ald_cloud_auth_failed"], values["ald_cloud_auth_failures_total"]) == (1, 7)


def test_the_key_expiry_is_exported_as_a_timestamp() -> None:
    expiring = replace(SNAP, cloud_key_expires_at=datetime(2027, 12, 1, 15, 0, tzinfo=UTC))
    values = _values(AgentMetrics(snapshot=lambda: expiring))
    assert values["ald_cloud_key_expiry_timestamp_seconds"] == datetime(2027, 12, 1, 15, 0, tzinfo=UTC).timestamp()


# --- KPI hooks -------------------------------------------------------------------------------------------------


def _sample(metrics: AgentMetrics, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


def test_recipe_outcomes_and_commands_by_type_are_counted_from_the_records_written() -> None:
    metrics = AgentMetrics(snapshot=lambda: SNAP)
    metrics.note_command(7, "start_recipe")
    metrics.note_command(8, "pause_recipe")
    records = [
        ("run", {"id": "r1", "status": "running", "completed_steps": 3}),  # progress: not an outcome
        ("command", {"id": 7, "values": {"status": "running"}}),  # not final
        ("run", {"id": "r1", "status": "succeeded", "finished_at": "2026-12-01T12:00:00+00:00"}),
        ("command", {"id": 7, "values": {"status": "succeeded", "error": None}}),
        ("command", {"id": 8, "values": {"status": "rejected", "error": "no active run"}}),
        ("command", {"id": 99, "values": {"status": "failed"}}),  # claimed by a previous agent: type unknown
        ("run", {"id": "r0", "status": "interrupted", "finished_at": "2026-12-01T11:00:00+00:00"}),
        ("history", {"machine_id": "m", "ts": "t", "values": {}}),
    ]
    for kind, payload in records:
        metrics.observe_record(kind, payload)
    runs = {o: _sample(metrics, "ald_recipe_runs_total", outcome=o) for o in ("succeeded", "failed", "interrupted")}
    assert runs == {"succeeded": 1.0, "failed": 0.0, "interrupted": 1.0}
    assert _sample(metrics, "ald_commands_total", type="start_recipe", outcome="succeeded") == 1.0
    assert _sample(metrics, "ald_commands_total", type="pause_recipe", outcome="rejected") == 1.0
    assert _sample(metrics, "ald_commands_total", type="unknown", outcome="failed") == 1.0


def test_distributions() -> None:
    from agent.spool import Record

    metrics = AgentMetrics(snapshot=lambda: SNAP)
    for seconds in (0.995, 1.0, 1.004, 1.03):
        metrics.observe_logging_interval(seconds)
    metrics.observe_database_request("select", 0.02, True)
    metrics.observe_database_request("upsert", 10.0, False)
    metrics.observe_shipped([Record(1, "history", {}, 100.0), Record(2, "latest", {}, 100.0),
                             Record(3, "history", {}, 103.0)], now=104.0)  # fmt: skip
    assert _sample(metrics, "ald_parameter_logging_interval_seconds_bucket", le="1.005") == 3.0
    assert _sample(metrics, "ald_parameter_logging_interval_seconds_count") == 4.0
    assert _sample(metrics, "ald_database_request_seconds_count", operation="select", answered="true") == 1.0
    assert _sample(metrics, "ald_database_request_seconds_bucket", operation="upsert", answered="false",
                   le="5.0") == 0.0  # fmt: skip
    assert _sample(metrics, "ald_read_to_row_seconds_count") == 2.0  # history only
    assert _sample(metrics, "ald_read_to_row_seconds_sum") == 5.0


def _block(kind: RegisterKind, start: int, count: int) -> ReadBlock:
    return ReadBlock(kind, start, count, ())


def test_full_reads_land_in_one_millisecond_buckets_up_to_the_target() -> None:
    metrics = AgentMetrics(snapshot=lambda: SNAP)
    for seconds in (0.0042, 0.0071, 0.0099, 0.0101, 0.052, math.nan):
        metrics.observe_plc_read(seconds)
    assert _sample(metrics, "ald_plc_read_duration_seconds_count") == 5.0  # NaN ignored
    assert _sample(metrics, "ald_plc_read_duration_seconds_bucket", le="0.005") == 1.0
    assert _sample(metrics, "ald_plc_read_duration_seconds_bucket", le="0.01") == 3.0  # the §8 target, exact
    assert _sample(metrics, "ald_plc_read_duration_seconds_bucket", le="0.0125") == 4.0
    assert _sample(metrics, "ald_plc_read_duration_seconds_bucket", le="+Inf") == 5.0


def test_blocks_are_labelled_by_address_range_and_failed_blocks_are_not_latencies() -> None:
    metrics = AgentMetrics(snapshot=lambda: SNAP)
    plan = object()
    holding, coils = _block(RegisterKind.HOLDING, 1000, 118), _block(RegisterKind.COIL, 0, 90)
    metrics.observe_block_read(holding, 0.0004, plan=plan)
    metrics.observe_block_read(holding, 0.03, plan=plan)
    metrics.observe_block_read(coils, 0.0003, plan=plan)
    metrics.observe_block_read(coils, 1.0, ok=False, plan=plan)  # a timeout: the link, not the range
    assert _sample(metrics, "ald_plc_block_read_duration_seconds_count", block="holding 1000+118") == 2.0
    assert _sample(metrics, "ald_plc_block_read_duration_seconds_bucket", block="holding 1000+118", le="0.025") == 1.0
    assert _sample(metrics, "ald_plc_block_read_duration_seconds_count", block="coil 0+90") == 1.0


def test_block_series_are_bounded_and_follow_the_plan() -> None:
    metrics = AgentMetrics(snapshot=lambda: SNAP)
    plan = object()
    for n in range(MAX_BLOCK_SERIES + 10):
        metrics.observe_block_read(_block(RegisterKind.INPUT, n * 200, 100), 0.001, plan=plan)
    families = text_string_to_metric_families(metrics.render().decode())
    blocks = {s.labels["block"] for f in families for s in f.samples if s.name.startswith(PLC_BLOCK_READ_DURATION)}
    assert len(blocks) == MAX_BLOCK_SERIES + 1 and "other" in blocks
    assert _sample(metrics, "ald_plc_block_read_duration_seconds_count", block="other") == 10.0
    metrics.observe_block_read(_block(RegisterKind.INPUT, 5, 2), 0.001, plan=object())  # a reloaded map
    families = text_string_to_metric_families(metrics.render().decode())
    blocks = {s.labels["block"] for f in families for s in f.samples if s.name.startswith(PLC_BLOCK_READ_DURATION)}
    assert blocks == {"input 5+2"}


async def test_a_real_read_feeds_both_histograms(simulator: Simulator, device: PlcDevice) -> None:
    """Over TCP to the simulator: one sampler tick is one full read and one observation per planned block."""
    metrics = AgentMetrics(snapshot=lambda: SNAP)
    sampler = Sampler(device, interval_s=0.05, sink=MemorySink())
    metrics.attach(sampler=sampler, device=device)
    await sampler.run(max_ticks=2)
    assert _sample(metrics, "ald_plc_read_duration_seconds_count") == 2.0
    for block in device.plan:
        assert _sample(metrics, "ald_plc_block_read_duration_seconds_count", block=str(block)) == 2.0, block


async def test_cpu_and_the_spool_volume_are_read_at_scrape_time(tmp_path: Path) -> None:
    from agent.spool import Spool

    metrics = AgentMetrics(snapshot=lambda: SNAP)
    assert not set(SPOOL_DISK_FAMILIES) & set(_families(metrics))
    async with Spool(tmp_path / "spool.sqlite") as spool:
        metrics.attach(spool=spool)
        values = _values(metrics)
    assert 0 < values["ald_spool_disk_free_bytes"] <= values["ald_spool_disk_size_bytes"]
    assert values["ald_cpu_usage_percent"] >= 0
