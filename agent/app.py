"""Wiring and lifecycle of the running agent: ordered start-up, one TaskGroup, graceful SIGTERM.

Start-up enters resources in order — spool → cloud client → register map and interlocks → PLC connection →
run controller → HTTP server — with an `AsyncExitStack`, so they close in reverse whatever happens: leaving
the run controller brings a running recipe to its safe state while the PLC connection is still open, and
the spool writer is drained before the spool closes, so even a crash leaves the run, command and machine
records final. Then the duties run in one TaskGroup: sampling, publishing, shipping, heartbeats, the lease,
command intake, configuration watches and the PLC watchdog. What each duty does lives in its own module (the
safety kernel is `agent.safety`); this module only connects them.

SIGTERM/SIGINT run the shutdown sequence (docs/DESIGN.md §5): stop intake → bring a running recipe to its safe
state (under
SHUTDOWN_TIMEOUT) → stop sampling → mark the machine offline → flush the spool to Supabase → release the
lease → close everything (the spool keeps what could not be shipped).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import signal
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loguru import logger

from agent import __version__
from agent.alarms import ActiveAlarm, AlarmBook, keep_cached, keep_in_sync, load_open_alarms
from agent.cloud import CloudClient, cloud_for
from agent.commands import CommandHandler, CommandIntake
from agent.config import Settings
from agent.console import Console
from agent.heartbeat import Heartbeat, log_status
from agent.http import HttpServer, assess
from agent.metrics import AgentMetrics
from agent.onboarding import require_machine
from agent.parameters import load_alarm_limit_rows, load_interlock_rows, load_map, remember_machine_name, watch_rows
from agent.plc import PlcConnection, PlcDevice
from agent.plc_setup import connection_for, device_for, load_register_map, simulated_plc
from agent.safety import (
    Handover,
    InterlockGuard,
    Lease,
    MachineFence,
    MapGuard,
    Ownership,
    RunController,
    TripWatch,
    Violation,
    Watchdog,
    WriteGate,
    run_records_shipped,
    wants_machine,
)
from agent.sampling import Frame, Sampler, TelemetryPublisher
from agent.spool import Shipper, Spool, SpoolWriter
from agent.status import AgentSnapshot, process_rss_mb
from agent.tasks import cancel_and_wait

__all__ = ["Agent", "Parts", "run_agent"]

#: The longest the shipper and the HTTP endpoints wait for a PLC read in flight to end before going ahead (a
#: read on a dead link lasts up to the PLC timeout; a healthy one a few ms).
QUIET_WAIT_S = 0.25
#: How long such a piece of work may run (a /metrics render is 5–17 ms on a small box, a shipper batch a few):
#: it does not start when the next read is due sooner, so it cannot hold that read's replies either.
QUIET_ROOM_S = 0.02


def quiet_gate(sampler: Sampler) -> Callable[[], Awaitable[None]]:
    """The one wait every CPU-heavy duty makes before its work (REST calls, shipper batches, HTTP renders)."""
    return functools.partial(sampler.wait_idle, timeout_s=QUIET_WAIT_S, room_s=QUIET_ROOM_S)


@dataclass
class Parts:
    """Everything one running agent is made of, built once by `Agent.run` in start-up order."""

    spool: Spool
    cloud: CloudClient
    connection: PlcConnection
    device: PlcDevice
    writer: SpoolWriter
    gate: WriteGate
    interlock_guard: InterlockGuard
    publisher: TelemetryPublisher
    runs: RunController
    trips: TripWatch
    alarms: AlarmBook
    map_guard: MapGuard
    sampler: Sampler
    shipper: Shipper
    lease: Lease
    watchdog: Watchdog
    fence: MachineFence
    intake: CommandIntake
    handover: Handover
    ownership: Ownership
    heartbeat: Heartbeat
    metrics: AgentMetrics
    console: Console


class Agent:
    """One agent for one machine. `run()` until `stop` is set (signals set it in `run_agent`)."""

    def __init__(self, settings: Settings, *, status_interval_s: float | None = None) -> None:
        settings.require_cloud()
        self.settings = settings
        self.machine_id = str(settings.MACHINE_ID)
        # what SUPABASE_KEY may touch: this machine only, or every machine of the project (service role)
        self.key_scope = "machine" if settings.key_machine_scope() else "project"
        # stable across restarts: a restarted agent is the same lease holder and the same owner at the PLC, so a
        # crash costs seconds, not the lease TTL and a watchdog trip (docs/DESIGN.md §5 "Crash recovery")
        self.instance_id = f"{socket.gethostname()}-{settings.AGENT_COLOR}"
        self.status_interval_s = status_interval_s or settings.STATUS_LOG_INTERVAL
        self.started_at = datetime.now(UTC)
        self.serving = False
        self.stop = asyncio.Event()
        self.plc_errors = 0
        self.http_port: int | None = None
        #: Set once start-up has built everything (None while starting).
        self.parts: Parts | None = None
        #: The machine's name, as Supabase knows it at start-up (None when it could not be asked).
        self.machine_name: str | None = None
        self._sampling: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------------------------------

    async def run(self) -> None:
        s = self.settings
        spool_path = Path(s.SPOOL_PATH)
        async with contextlib.AsyncExitStack() as stack:
            spool = await stack.enter_async_context(Spool(spool_path, max_bytes=int(s.SPOOL_MAX_MB * 2**20)))
            cloud = await stack.enter_async_context(cloud_for(s))
            # ConfigError (exit 2) for an unknown machine; its name for the console
            self.machine_name = await remember_machine_name(
                await require_machine(cloud, self.machine_id), cache=spool_path.with_suffix(".machine.json")
            )
            source = await load_map(
                cloud,
                machine_id=self.machine_id,
                cache=spool_path.with_suffix(".map.json"),
                fallback=load_register_map(s),
            )
            interlock_rows = await load_interlock_rows(
                cloud, machine_id=self.machine_id, cache=spool_path.with_suffix(".interlocks.json")
            )
            limit_rows = await load_alarm_limit_rows(
                cloud, machine_id=self.machine_id, cache=spool_path.with_suffix(".alarm_limits.json")
            )
            s = await simulated_plc(s, stack, register_map=source.register_map)  # PLC_TYPE=simulation: own PLC
            connection = await stack.enter_async_context(connection_for(s, on_request=self._on_plc_request))
            await connection.wait_connected(s.PLC_TIMEOUT_S * 3)
            device = device_for(s, connection, source.register_map)
            writer = SpoolWriter(spool)
            stack.push_async_callback(writer.drain)  # after the run controller's exit: its final records land
            parts = self._wire(spool, cloud, connection, device, writer, source.parameter_ids, source.origin)
            parts.metrics.attach(
                cloud=cloud, writer=writer, shipper=parts.shipper, sampler=parts.sampler, spool=spool, device=device
            )
            parts.interlock_guard.offer(interlock_rows)
            parts.alarms.offer(limit_rows)
            alarm_cache = spool_path.with_suffix(".alarms.json")

            async def open_alarms() -> list[ActiveAlarm]:
                return await load_open_alarms(cloud, spool, machine_id=self.machine_id, cache=alarm_cache)

            parts.alarms.restore(await open_alarms())
            await parts.fence.observe()  # who owns the machine, before the first frame is published
            if source.problem:
                parts.map_guard.refuse(source.problem)
            await stack.enter_async_context(parts.runs)
            http = self._http(parts)
            await stack.enter_async_context(http)
            self.http_port = http.port
            self.parts = parts
            logger.info(
                "ald-agent {} up: machine {} ({} key), {} parameters ({}), {} interlocks, PLC {}:{}, http :{}",
                __version__,
                self.machine_id,
                self.key_scope,
                len(source.register_map),
                source.origin,
                len(parts.gate.interlocks),
                s.PLC_HOST,
                s.PLC_PORT,
                http.port,
            )
            self._machine_status("idle")
            _freeze_start_up_objects()
            async with asyncio.TaskGroup() as tasks:
                self._sampling = tasks.create_task(parts.sampler.run(), name="sampler")
                writing = tasks.create_task(writer.run(), name="spool-writer")
                intake = tasks.create_task(parts.intake.run(), name="command-intake")
                background = [
                    tasks.create_task(parts.shipper.run(), name="shipper"),
                    tasks.create_task(parts.lease.run(), name="lease"),
                    tasks.create_task(parts.heartbeat.run(), name="heartbeat"),
                    tasks.create_task(
                        log_status(self.snapshot, lambda: parts.sampler.stats.lateness_s, self.status_interval_s),
                        name="status",
                    ),
                    *(
                        tasks.create_task(
                            watch_rows(cloud, table=table, machine_id=self.machine_id, reload=reload, fetch_now=stale),
                            name=f"{table}-watch",
                        )
                        for table, reload, stale in (
                            ("parameters", self._reload_map, source.origin != "database"),
                            ("interlocks", self._reload_interlocks, interlock_rows.origin != "database"),
                            ("alarm_limits", self._reload_alarm_limits, limit_rows.origin != "database"),
                        )
                    ),
                    tasks.create_task(keep_cached(parts.alarms, alarm_cache), name="alarm-cache"),
                    tasks.create_task(keep_in_sync(parts.alarms, open_alarms), name="alarm-sync"),
                    tasks.create_task(parts.watchdog.run(), name="plc-watchdog"),
                ]
                self.serving = True
                await self.stop.wait()
                await self._shutdown(parts, intake, self._sampling, writing, background)
        logger.info("ald-agent stopped cleanly")

    def _wire(
        self,
        spool: Spool,
        cloud: CloudClient,
        connection: PlcConnection,
        device: PlcDevice,
        writer: SpoolWriter,
        parameter_ids: dict[str, str],
        map_origin: str,
    ) -> Parts:
        s = self.settings
        lease = Lease(cloud, machine_id=self.machine_id, holder=self.instance_id)
        gate = WriteGate(device)
        fence = MachineFence(gate, device, identity=self.instance_id)
        gate.may_write, gate.fenced = (lambda: fence.owns), fence.fenced
        metrics = AgentMetrics(snapshot=self.snapshot)
        runs = RunController(
            device=device,
            gate=gate,
            writer=writer,
            machine_id=self.machine_id,
            on_step_timing_error=metrics.observe_step_timing_error,
            exit_timeout_s=s.SHUTDOWN_TIMEOUT / 2,
        )
        alarms = AlarmBook(writer, machine_id=self.machine_id, interlocks=lambda: gate.interlocks)
        trips = TripWatch(runs, lambda: gate.interlocks, on_trip=alarms.on_trip)
        console = self._console(device, gate, runs, fence, trips, alarms)
        publisher = TelemetryPublisher(
            writer,
            machine_id=self.machine_id,
            register_map=device.map,
            parameter_ids=parameter_ids,
            refresh_s=s.STATUS_LOG_INTERVAL,
        )

        def on_frame(frame: Frame) -> None:
            trips.observe(frame)  # before publishing: a trip acts on the frame that shows it
            if fence.publishes():  # one publisher per machine: its owner (a standby keeps its PLC link warm)
                alarms.observe(frame)  # ... and one alarm book: a standby raises nothing
                publisher.submit(frame)
            else:
                alarms.standby()
            console.observe(frame)

        sampler = Sampler(
            device,
            interval_s=s.PARAMETER_LOGGING_INTERVAL,
            sink=on_frame,
            run_id=lambda: runs.active.id if runs.active else None,
        )
        cloud.quiet = quiet_gate(sampler)
        watchdog = Watchdog(
            gate,
            connection,
            fence,
            timeout_s=s.WATCHDOG_TIMEOUT,
            wants=lambda: wants_machine(lease, runs, fence),
            on_lost=lambda why: runs.stop(why) if runs.active is not None else None,
            may_release=lambda: run_records_shipped(spool, writer),
        )
        handler = CommandHandler(
            cloud=cloud,
            gate=gate,
            runs=runs,
            alarms=alarms,
            on_latency=metrics.observe_command_latency,
            on_claimed=metrics.note_command,
        )
        intake = CommandIntake(
            cloud,
            lease,
            machine_id=self.machine_id,
            poll_s=s.COMMAND_POLL_INTERVAL,
            handle=handler,
        )
        handover = Handover(lease=lease, intake=intake, runs=runs)
        heartbeat = Heartbeat(writer, self.snapshot, started_at=self.started_at)
        ownership = Ownership(
            machine_id=self.machine_id,
            cloud=cloud,
            spool=spool,
            writer=writer,
            connection=connection,
            runs=runs,
            watchdog=watchdog,
            fence=fence,
            intake=intake,
            handover=handover,
            holds_lease=lease.valid,
            in_flight=lambda: handler.in_flight,
            on_role=lambda _role: heartbeat.beat(),
        )
        lease.on_change = ownership.on_lease_change
        return Parts(
            spool=spool,
            cloud=cloud,
            connection=connection,
            device=device,
            writer=writer,
            gate=gate,
            interlock_guard=InterlockGuard(gate),
            publisher=publisher,
            runs=runs,
            trips=trips,
            alarms=alarms,
            map_guard=MapGuard(device=device, gate=gate, publisher=publisher, runs=runs, origin=map_origin),
            sampler=sampler,
            shipper=Shipper(spool, cloud, quiet=cloud.quiet, telemetry_gap_s=s.TELEMETRY_SHIP_GAP),
            lease=lease,
            watchdog=watchdog,
            fence=fence,
            intake=intake,
            handover=handover,
            ownership=ownership,
            heartbeat=heartbeat,
            metrics=metrics,
            console=console,
        )

    def _console(
        self,
        device: PlcDevice,
        gate: WriteGate,
        runs: RunController,
        fence: MachineFence,
        trips: TripWatch,
        alarms: AlarmBook,
    ) -> Console:
        def owner() -> str:
            if fence.owns:
                return "this agent"
            if fence.holder is None:
                return "unknown"
            return "nobody" if fence.holder == 0 else "another agent"

        def interlocks_failing(values: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
            return tuple(
                (str(i.kind), Violation(i, failing).explain())
                for i in gate.interlocks.interlocks
                if (failing := i.failing(values))
            )

        def health(snapshot: AgentSnapshot) -> tuple[str, tuple[str, ...]]:
            status, reasons = assess(snapshot)
            return status.value, reasons

        console = Console(
            snapshot=self.snapshot,
            health=health,
            register_map=lambda: device.map,
            active_run=lambda: runs.active,
            owner=owner,
            last_trip=lambda: trips.last.explain() if trips.last else None,
            interlocks_failing=interlocks_failing,
            alarms=alarms.active,
            machine_name=self.machine_name,
        )
        runs.on_step_started.append(console.journal.step_started)
        runs.on_step_ended.append(console.journal.step_ended)
        runs.on_run_ended.append(console.journal.run_ended)
        return console

    def _http(self, parts: Parts) -> HttpServer:
        s = self.settings
        http = HttpServer(
            snapshot=self.snapshot,
            metrics=parts.metrics,
            host=s.HTTP_HOST,
            port=s.HTTP_PORT,
            admin_token=s.ADMIN_TOKEN.get_secret_value() if s.ADMIN_TOKEN else None,
            console=parts.console,
            quiet=quiet_gate(parts.sampler),
        )
        http.add_admin_route("POST", "/admin/handover", parts.handover.post_handover)
        http.add_admin_route("GET", "/admin/handover", parts.handover.get_state)
        http.add_admin_route("POST", "/admin/drain", parts.handover.post_drain)
        http.add_admin_route("POST", "/admin/activate", parts.handover.post_activate)
        return http

    async def _shutdown(
        self,
        parts: Parts,
        intake: asyncio.Task[None],
        sampling: asyncio.Task[None],
        writing: asyncio.Task[None],
        background: list[asyncio.Task[None]],
    ) -> None:
        timeout = self.settings.SHUTDOWN_TIMEOUT
        logger.info("shutdown: stopping intake, safe state, flushing the spool (up to {}s)", timeout)
        self.serving = False
        await cancel_and_wait([intake])
        if parts.runs.active is not None:
            await parts.runs.abort("the agent is shutting down (SIGTERM)", timeout_s=timeout / 2)
        await cancel_and_wait([sampling, *background, *parts.ownership.tasks])

        self._machine_status("offline")
        parts.writer.stop()
        await writing
        if await parts.shipper.flush(timeout / 2):
            logger.info("shutdown: spool empty")
        else:
            logger.warning("shutdown: {} records stay in the spool for the next start", parts.spool.stats.depth)
        await parts.lease.release()

    # --- configuration reloads ---------------------------------------------------------------------------

    async def _reload_map(self) -> bool:
        """True once the database answered (with a usable map or a refused one): no refetch until it changes."""
        assert self.parts is not None
        p = self.parts
        source = await load_map(
            p.cloud,
            machine_id=self.machine_id,
            cache=Path(self.settings.SPOOL_PATH).with_suffix(".map.json"),
            fallback=p.device.map,
        )
        if source.problem:
            p.map_guard.refuse(source.problem)
            return True
        if source.origin == "file":
            return False
        p.map_guard.offer(source)
        return source.origin == "database"

    async def _reload_interlocks(self) -> bool:
        assert self.parts is not None
        rows = await load_interlock_rows(
            self.parts.cloud,
            machine_id=self.machine_id,
            cache=Path(self.settings.SPOOL_PATH).with_suffix(".interlocks.json"),
        )
        if rows.origin != "database":
            return False
        self.parts.interlock_guard.offer(rows)
        return True

    async def _reload_alarm_limits(self) -> bool:
        assert self.parts is not None
        rows = await load_alarm_limit_rows(
            self.parts.cloud,
            machine_id=self.machine_id,
            cache=Path(self.settings.SPOOL_PATH).with_suffix(".alarm_limits.json"),
        )
        if rows.origin != "database":
            return False
        self.parts.alarms.offer(rows)
        return True

    def _machine_status(self, status: str) -> None:
        assert self.parts is not None
        values: dict[str, Any] = {"status": status}
        if status == "offline":
            values["current_run_id"] = None
        self.parts.writer.submit("machine", {"id": self.machine_id, "values": values})

    def _on_plc_request(self, _operation: str, _seconds: float, ok: bool) -> None:
        if not ok:
            self.plc_errors += 1

    # --- observation -------------------------------------------------------------------------------------

    def snapshot(self) -> AgentSnapshot:
        """The live state, built from the real objects on every call (for /health, /metrics, heartbeats)."""
        p = self.parts
        stats = p.sampler.stats if p else None
        spool = p.spool.stats if p else None
        shipper = p.shipper.stats if p else None
        problems: list[str] = []
        if p is not None:
            problems += [x for x in (p.map_guard.problem, p.interlock_guard.problem) if x]
            if p.gate.safe_state_pending:
                problems.append(f"safe state not confirmed ({p.gate.pending_reason}): watchdog kicks stopped")
        return AgentSnapshot(
            version=self.settings.AGENT_VERSION or __version__,
            color=self.settings.AGENT_COLOR.value,
            role=p.lease.role.value if p else "standby",
            instance_id=self.instance_id,
            machine_id=self.machine_id,
            started_at=self.started_at,
            uptime_s=(datetime.now(UTC) - self.started_at).total_seconds(),
            serving=self.serving,
            plc_connected=bool(p and p.connection.connected.is_set()),
            plc_last_error=p.connection.last_error if p else None,
            plc_response_ms=stats.last_read_s * 1000 if stats and stats.ticks else None,
            database_connected=bool(shipper and shipper.connected),
            realtime_connected=bool(p and p.cloud.realtime_connected),
            sampling=bool(self._sampling and not self._sampling.done()),
            logging_interval_s=stats.last_interval_s if stats and stats.last_interval_s else None,
            frames=stats.ticks if stats else 0,
            skipped_ticks=stats.skipped if stats else 0,
            late_ticks=stats.late if stats else 0,
            failed_frames=stats.failed_frames if stats else 0,
            spool_depth=spool.depth if spool else 0,
            spool_bytes=spool.bytes if spool else 0,
            quarantined=spool.quarantined if spool else 0,
            dropped=(spool.dropped if spool else 0) + (p.writer.dropped if p else 0),
            shipped=spool.shipped if spool else 0,
            memory_mb=process_rss_mb(),
            errors={
                "plc": self.plc_errors,
                "database": shipper.errors if shipper else 0,
                "realtime": p.cloud.realtime_errors if p else 0,
            },
            telemetry_dropping=bool(p and p.spool.dropping),
            current_run=p.runs.current() if p else None,
            key_scope=self.key_scope,
            safety_problems=tuple(problems),
            map_refused=bool(p and p.map_guard.problem),
            map_refusals=p.map_guard.refusals if p else 0,
            interlocks=len(p.gate.interlocks) if p else 0,
            interlock_blocks=p.gate.stats.interlock_blocks if p else 0,
            interlock_trips=p.trips.trips if p else 0,
            safe_state_pending=bool(p and p.gate.safe_state_pending),
            cloud_auth_error=p.cloud.key.refused if p else None,
            cloud_auth_failures=p.cloud.key.refusals if p else 0,
            cloud_key_expires_at=p.cloud.key_claims.expires_at if p else None,
            alarms_active=p.alarms.counts() if p else {},
            alarms_unacknowledged=p.alarms.unacknowledged() if p else 0,
            alarm_limits=len(p.alarms.limits) if p else 0,
            alarm_limits_problem=p.alarms.problem if p else None,
        )


def _freeze_start_up_objects() -> None:
    """Collect once, then move every object alive after start-up (modules, classes, the map, clients: ~65,000)
    out of the cyclic garbage collector's reach (`gc.freeze`). A full collection scans all of them and took
    tens of ms on a quiet box (over 100 ms on a loaded one), a pause the event loop would put inside a PLC read;
    frozen, a collection sees only what the running agent allocates since."""
    gc.collect()
    gc.freeze()


async def run_agent(settings: Settings, *, status_interval_s: float | None = None) -> None:
    """Run the agent until SIGTERM/SIGINT; returns after a clean shutdown."""
    agent = Agent(settings, status_interval_s=status_interval_s)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, agent.stop.set)
    try:
        await agent.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
