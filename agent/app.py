"""Wiring and lifecycle of the running agent: ordered start-up, one TaskGroup, graceful SIGTERM.

Start-up enters resources in order — spool → cloud client → register map → PLC connection → HTTP server —
with an `AsyncExitStack`, so they close in reverse whatever happens. Then the duties run in one TaskGroup:
sampling, publishing, shipping, heartbeats, the lease, command intake and the PLC watchdog.

SIGTERM/SIGINT run the shutdown sequence (STYLE 8): stop intake → bring a running recipe to its safe state
(under SHUTDOWN_TIMEOUT) → stop sampling → mark the machine offline → flush the spool to Supabase → release
the lease → close everything (the spool keeps what could not be shipped).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loguru import logger

from agent import __version__
from agent.cloud import CloudClient, Watch, cloud_for
from agent.commands import CommandHandler, CommandIntake
from agent.config import Settings
from agent.errors import CloudError, PlcError
from agent.handover import Handover, HandoverState
from agent.http import HttpServer
from agent.lease import Lease, LeaseRole
from agent.metrics import AgentMetrics
from agent.onboarding import require_machine
from agent.parameters import MapSource, load_map
from agent.plc import PlcConnection, PlcDevice
from agent.plc_setup import connection_for, device_for, load_register_map, simulated_plc
from agent.runner import RunController
from agent.sampling import Sampler, TelemetryPublisher
from agent.spool import Shipper, Spool, SpoolWriter
from agent.status import AgentSnapshot, process_rss_mb
from agent.tasks import cancel_and_wait

__all__ = ["Agent", "run_agent"]

HEARTBEAT_S = 10.0
#: How long a new lease holder waits for the PLC before its first watchdog kick and first claim: a tripped PLC
#: keeps forcing its safe state (MFC 0, valves shut) until the watchdog moves, so a command claimed before the
#: kick would fail its read-back. A PLC that stays away longer fails the commands for what it is: unreachable.
PLC_SETTLE_S = 5.0
MAP_RELOAD_DEBOUNCE_S = 0.5


class Agent:
    """One agent for one machine. `run()` until `stop` is set (signals set it in `run_agent`)."""

    def __init__(self, settings: Settings, *, status_interval_s: float | None = None) -> None:
        settings.require_cloud()
        self.settings = settings
        self.machine_id = str(settings.MACHINE_ID)
        # what SUPABASE_KEY may touch: this machine only, or every machine of the project (service role)
        self.key_scope = "machine" if settings.key_machine_scope() else "project"
        self.instance_id = f"{socket.gethostname()}-{settings.AGENT_COLOR}-{os.getpid()}"
        self.status_interval_s = status_interval_s or settings.STATUS_LOG_INTERVAL
        self.started_at = datetime.now(UTC)
        self.serving = False
        self.stop = asyncio.Event()
        self.plc_errors = 0
        self.http_port: int | None = None
        self.map_origin = "none"
        self.spool: Spool | None = None
        self.cloud: CloudClient | None = None
        self.connection: PlcConnection | None = None
        self.device: PlcDevice | None = None
        self.sampler: Sampler | None = None
        self.publisher: TelemetryPublisher | None = None
        self.shipper: Shipper | None = None
        self.writer: SpoolWriter | None = None
        self.lease: Lease | None = None
        self.runs: RunController | None = None
        self.intake: CommandIntake | None = None
        self.handover: Handover | None = None

        self._sampling: asyncio.Task[None] | None = None
        self._duties: set[asyncio.Task[None]] = set()
        self._watchdog_counter = 0

    # --- lifecycle -------------------------------------------------------------------------------------

    async def run(self) -> None:
        s = self.settings
        async with contextlib.AsyncExitStack() as stack:
            spool_path = Path(s.SPOOL_PATH)
            self.spool = await stack.enter_async_context(Spool(spool_path, max_bytes=int(s.SPOOL_MAX_MB * 2**20)))
            assert s.SUPABASE_URL is not None and s.SUPABASE_KEY is not None
            self.cloud = await stack.enter_async_context(cloud_for(s))
            await require_machine(self.cloud, self.machine_id)  # ConfigError (exit 2) for an unknown machine
            source = await load_map(
                self.cloud,
                machine_id=self.machine_id,
                cache=spool_path.with_suffix(".map.json"),
                fallback=load_register_map(s),
            )
            self.map_origin = source.origin
            s = await simulated_plc(s, stack, register_map=source.register_map)  # PLC_TYPE=simulation: own PLC
            self.connection = await stack.enter_async_context(connection_for(s, on_request=self._on_plc_request))
            await self.connection.wait_connected(s.PLC_TIMEOUT_S * 3)
            self.device = device_for(s, self.connection, source.register_map)
            self.writer = SpoolWriter(self.spool)
            self.publisher = TelemetryPublisher(
                self.writer,
                machine_id=self.machine_id,
                register_map=source.register_map,
                parameter_ids=source.parameter_ids,
                refresh_s=s.STATUS_LOG_INTERVAL,
            )
            self.sampler = Sampler(
                self.device,
                interval_s=s.PARAMETER_LOGGING_INTERVAL,
                sink=self.publisher.submit,
                run_id=lambda: self.runs.active.id if self.runs and self.runs.active else None,
            )
            self.shipper = Shipper(self.spool, self.cloud)
            self.metrics = AgentMetrics(snapshot=self.snapshot)
            self.metrics.attach(cloud=self.cloud, writer=self.writer, shipper=self.shipper, sampler=self.sampler,
                                spool=self.spool)  # fmt: skip
            self.runs = RunController(
                device=self.device,
                writer=self.writer,
                machine_id=self.machine_id,
                on_step_timing_error=self.metrics.observe_step_timing_error,
            )
            self.lease = Lease(
                self.cloud, machine_id=self.machine_id, holder=self.instance_id, on_change=self._on_lease_change
            )
            self.intake = CommandIntake(
                self.cloud,
                self.lease,
                machine_id=self.machine_id,
                poll_s=s.COMMAND_POLL_INTERVAL,
                handle=CommandHandler(
                    cloud=self.cloud,
                    device=self.device,
                    runs=self.runs,
                    on_latency=self.metrics.observe_command_latency,
                    on_claimed=self.metrics.note_command,
                ),
            )
            self.handover = Handover(lease=self.lease, intake=self.intake, runs=self.runs)
            http = HttpServer(
                snapshot=self.snapshot,
                metrics=self.metrics,
                host=s.HTTP_HOST,
                port=s.HTTP_PORT,
                admin_token=s.ADMIN_TOKEN.get_secret_value() if s.ADMIN_TOKEN else None,
            )
            http.add_admin_route("POST", "/admin/handover", self.handover.post_handover)
            http.add_admin_route("GET", "/admin/handover", self.handover.get_state)
            http.add_admin_route("POST", "/admin/drain", self.handover.post_drain)
            http.add_admin_route("POST", "/admin/activate", self.handover.post_activate)
            await stack.enter_async_context(http)
            self.http_port = http.port
            logger.info(
                "ald-agent {} up: machine {} ({} key), {} parameters ({}), PLC {}:{}, http :{}",
                __version__,
                self.machine_id,
                self.key_scope,
                len(source.register_map),
                source.origin,
                s.PLC_HOST,
                s.PLC_PORT,
                http.port,
            )
            self._machine_status("idle")
            async with asyncio.TaskGroup() as tasks:
                self._sampling = tasks.create_task(self.sampler.run(), name="sampler")
                writer = tasks.create_task(self.writer.run(), name="spool-writer")
                intake = tasks.create_task(self.intake.run(), name="command-intake")
                background = [
                    tasks.create_task(self.shipper.run(), name="shipper"),
                    tasks.create_task(self.lease.run(), name="lease"),
                    tasks.create_task(self._heartbeat(), name="heartbeat"),
                    tasks.create_task(self._status_lines(), name="status"),
                    tasks.create_task(self._watch_parameters(source), name="parameters-watch"),
                    tasks.create_task(self._watchdog(), name="plc-watchdog"),
                ]
                self.serving = True
                await self.stop.wait()
                await self._shutdown(intake, self._sampling, writer, background)
        logger.info("ald-agent stopped cleanly")

    async def _shutdown(
        self,
        intake: asyncio.Task[None],
        sampling: asyncio.Task[None],
        writer: asyncio.Task[None],
        background: list[asyncio.Task[None]],
    ) -> None:
        assert self.writer and self.shipper and self.spool and self.runs and self.lease
        timeout = self.settings.SHUTDOWN_TIMEOUT
        logger.info("shutdown: stopping intake, safe state, flushing the spool (up to {}s)", timeout)
        self.serving = False
        await cancel_and_wait([intake])
        if self.runs.active is not None:
            await self.runs.abort("the agent is shutting down (SIGTERM)", timeout_s=timeout / 2)
        await cancel_and_wait([sampling, *background, *self._duties])

        self._machine_status("offline")
        self.writer.stop()
        await writer
        if await self.shipper.flush(timeout / 2):
            logger.info("shutdown: spool empty")
        else:
            logger.warning("shutdown: {} records stay in the spool for the next start", self.spool.stats.depth)
        await self.lease.release()

    # --- background duties -----------------------------------------------------------------------------

    def _machine_status(self, status: str) -> None:
        assert self.writer is not None
        values: dict[str, Any] = {"status": status}
        if status == "offline":
            values["current_run_id"] = None
        self.writer.submit("machine", {"id": self.machine_id, "values": values})

    def _on_lease_change(self, role: LeaseRole) -> None:
        """Becoming active: settle what a previous holder left, then look for commands. Losing the lease
        with a run going: stop it (safe state) — another agent may now command this machine."""
        assert self.runs is not None
        assert self.intake is not None
        self._beat()  # the dashboard sees the role change now, not at the next 10 s beat
        if role is LeaseRole.ACTIVE:
            self.intake.paused = True  # no claim before what the previous holder left is settled
            self._spawn(self._become_active())
        elif self.runs.active is not None:
            logger.error("lease lost during run {}: stopping it", self.runs.active.id)
            self.runs.stop("the agent lost its lease (Supabase unreachable or taken over)")

    async def _become_active(self) -> None:
        """Settle the machine before the first claim: the PLC watchdog answered at once (a PLC that tripped
        while nobody held the lease releases its safe state only when the watchdog moves), runs a previous
        agent left running marked interrupted (else a new run would collide with them), machine status."""
        assert self.runs and self.cloud and self.spool and self.intake and self.writer and self.handover
        assert self.connection is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(PLC_SETTLE_S):
                await self.connection.connected.wait()
        await self._kick_watchdog()

        await self.writer.drain()
        for attempt in range(5):
            try:
                await self.runs.mark_interrupted(self.cloud, self.spool)
                break
            except CloudError as exc:
                logger.warning("could not check for interrupted runs (attempt {}): {}", attempt + 1, exc)
                await asyncio.sleep(1 + attempt)
        if self.runs.active is None:
            self._machine_status("idle")
        if self.handover.state is HandoverState.HOLDING:
            self.intake.paused = False
        self.intake.poke()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._duties.add(task)
        task.add_done_callback(self._duties.discard)

    async def _watchdog(self) -> None:
        """While we hold the lease, change `plc.watchdog` often enough that the PLC never trips it; and put
        the PLC back in its safe state when it returns after a failure left that unconfirmed."""
        assert self.device and self.connection and self.lease and self.runs
        period = max(0.2, self.settings.WATCHDOG_TIMEOUT / 3)
        while True:
            await asyncio.sleep(period)
            if not self.connection.connected.is_set():
                continue
            if self.runs.safe_state_pending:
                await self.runs.reapply_safe_state()
            if self.lease.valid():
                await self._kick_watchdog()

    async def _kick_watchdog(self) -> None:
        assert self.device is not None
        if "plc.watchdog" not in self.device.map:
            return
        self._watchdog_counter = (self._watchdog_counter + 1) % 65536
        try:
            await self.device.write("plc.watchdog", self._watchdog_counter, verify=False)
        except PlcError as exc:
            logger.debug("watchdog write failed: {}", exc)

    async def _heartbeat(self) -> None:
        while True:
            self._beat()
            await asyncio.sleep(HEARTBEAT_S)

    def _beat(self) -> None:
        """One `agent_instances` row, through the spool like every other write."""
        if self.writer is None:
            return
        snap = self.snapshot()
        self.writer.submit(
            "heartbeat",
            {
                "instance_id": self.instance_id,
                "machine_id": self.machine_id,
                "color": snap.color,
                "version": snap.version,
                "role": snap.role,
                "started_at": self.started_at.isoformat(),
                "last_seen": datetime.now(UTC).isoformat(),
                "plc_connected": snap.plc_connected,
                "realtime_connected": snap.realtime_connected,
                "spool_depth": snap.spool_depth,
            },
        )

    async def _watch_parameters(self, initial: MapSource) -> None:
        """Reload the map when the machine's `parameters` rows change (debounced: editors save in bursts)."""
        assert self.cloud is not None
        pending = asyncio.Event()
        need_db = initial.origin != "database"

        def changed(_payload: dict[str, Any]) -> None:
            pending.set()

        def ready() -> None:
            if need_db:
                pending.set()  # we started from the cache or file: fetch the real map now

        await self.cloud.watch(Watch("parameters", f"machine_id=eq.{self.machine_id}", changed, ready))
        while True:
            await pending.wait()
            await asyncio.sleep(MAP_RELOAD_DEBOUNCE_S)
            pending.clear()
            need_db = not await self._reload_map()

    async def _reload_map(self) -> bool:
        assert self.cloud is not None and self.device and self.publisher
        source = await load_map(
            self.cloud,
            machine_id=self.machine_id,
            cache=Path(self.settings.SPOOL_PATH).with_suffix(".map.json"),
            fallback=self.device.map,
        )
        if source.origin == "file":
            return False
        self.device.set_map(source.register_map)
        self.publisher.set_map(source.register_map, source.parameter_ids)
        self.map_origin = source.origin
        logger.info("parameters: map reloaded ({} parameters, {})", len(source.register_map), source.origin)
        return source.origin == "database"

    async def _status_lines(self) -> None:
        """One summary line per STATUS_LOG_INTERVAL: what an engineer tailing the log needs at a glance."""
        while True:
            await asyncio.sleep(self.status_interval_s)
            snap = self.snapshot()
            assert self.sampler is not None
            late = sorted(self.sampler.stats.lateness_s)
            p99 = late[round(0.99 * (len(late) - 1))] * 1000 if late else 0.0
            logger.info(
                "status: plc={} db={} interval={} read={}ms lateness p50={:.1f}ms p99={:.1f}ms frames={} "
                "skipped={} spool={} quarantined={} errors={}",
                "up" if snap.plc_connected else "DOWN",
                "up" if snap.database_connected else "DOWN",
                f"{snap.logging_interval_s:.3f}s" if snap.logging_interval_s else "-",
                f"{snap.plc_response_ms:.1f}" if snap.plc_response_ms is not None else "-",
                statistics.median(late) * 1000 if late else 0.0,
                p99,
                snap.frames,
                snap.skipped_ticks,
                snap.spool_depth,
                snap.quarantined,
                dict(snap.errors),
            )

    def _on_plc_request(self, _operation: str, _seconds: float, ok: bool) -> None:
        if not ok:
            self.plc_errors += 1

    # --- observation -------------------------------------------------------------------------------------

    def snapshot(self) -> AgentSnapshot:
        """The live state, built from the real objects on every call (for /health, /metrics, heartbeats)."""
        stats = self.sampler.stats if self.sampler else None
        spool = self.spool.stats if self.spool else None
        shipper = self.shipper.stats if self.shipper else None
        return AgentSnapshot(
            version=self.settings.AGENT_VERSION or __version__,
            color=self.settings.AGENT_COLOR.value,
            role=self.lease.role.value if self.lease else "standby",
            instance_id=self.instance_id,
            machine_id=self.machine_id,
            started_at=self.started_at,
            uptime_s=(datetime.now(UTC) - self.started_at).total_seconds(),
            serving=self.serving,
            plc_connected=bool(self.connection and self.connection.connected.is_set()),
            plc_last_error=self.connection.last_error if self.connection else None,
            plc_response_ms=stats.last_read_s * 1000 if stats and stats.ticks else None,
            database_connected=bool(shipper and shipper.connected),
            realtime_connected=bool(self.cloud and self.cloud.realtime_connected),
            sampling=bool(self._sampling and not self._sampling.done()),
            logging_interval_s=stats.last_interval_s if stats and stats.last_interval_s else None,
            frames=stats.ticks if stats else 0,
            skipped_ticks=stats.skipped if stats else 0,
            failed_frames=stats.failed_frames if stats else 0,
            spool_depth=spool.depth if spool else 0,
            spool_bytes=spool.bytes if spool else 0,
            quarantined=spool.quarantined if spool else 0,
            dropped=(spool.dropped if spool else 0) + (self.writer.dropped if self.writer else 0),
            shipped=spool.shipped if spool else 0,
            memory_mb=process_rss_mb(),
            errors={
                "plc": self.plc_errors,
                "database": shipper.errors if shipper else 0,
                "realtime": self.cloud.realtime_errors if self.cloud else 0,
            },
            telemetry_dropping=bool(self.spool and self.spool.dropping),
            current_run=self.runs.current() if self.runs else None,
            key_scope=self.key_scope,
        )


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
