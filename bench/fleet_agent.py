"""One virtual agent of the fleet bench: the agent's own cloud-side parts for one machine, without a PLC link.

What is the agent's real code here, per machine: the `CloudClient` (its own HTTP client and Realtime
socket), `load_map` (the map from that machine's `parameters` rows), the `Sampler` on drift-free 1 Hz
deadlines, `PlcDevice` (the read planner and the codecs), `TelemetryPublisher` (history row per frame,
`parameter_latest` on change beyond the deadband), `SpoolWriter` + `Spool` (SQLite, WAL, synchronous=FULL)
+ `Shipper`, the `Lease` (acquire, renew every 3 s), `CommandIntake` (Realtime INSERT events, catch-up and
the 5 s poll, `claim_command`) and `watch_rows` on `parameters` and `interlocks` (the two other channels a
real agent holds).

What is not: Modbus TCP. `ImageConnection` answers the device's planned block reads straight from the
simulator's `RegisterImage`, which the simulator's own `ReactorModel` steps (heaters, MFC, pump, pressure
noise), so the values and their changes are the simulator's; only the socket and the Modbus framing are
skipped. The heartbeat row has the real one's columns but is built here (the real `Heartbeat` needs the whole
app's snapshot). A claimed command is finished as `succeeded` through the spool without a PLC write (the
write path is bench/commands.py's subject). No HTTP server, no watchdog, no recipes, no safety gate.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.cloud import CloudClient
from agent.commands import CommandIntake
from agent.parameters import load_map, watch_rows
from agent.plc import PlcDevice, load_default_map
from agent.plc.connection import PlcConnection
from agent.plc.registers import RegisterKind
from agent.plc.sim.image import RegisterImage
from agent.plc.sim.reactor import ReactorModel
from agent.safety import Lease
from agent.sampling import Sampler, TelemetryPublisher
from agent.spool import Record, Shipper, Spool, SpoolWriter

__all__ = ["AgentCounts", "ImageConnection", "Trace", "VirtualAgent"]

HEARTBEAT_S = 10.0  # as agent/heartbeat.py
COMMAND_POLL_S = 5.0  # the COMMAND_POLL_INTERVAL default
LATEST_REFRESH_S = 300.0  # the STATUS_LOG_INTERVAL default, which the app passes as the publisher's refresh_s
MODEL_STEP_S = 0.1  # the simulator steps its physics at most this often


class ImageConnection(PlcConnection):
    """A `PlcConnection` whose reads come from a simulated plant's register image instead of a socket."""

    def __init__(self, model: ReactorModel) -> None:
        super().__init__(host="image", port=0)
        self.model = model
        self._stepped = time.monotonic()

    async def read(self, kind: RegisterKind, start: int, count: int) -> list[int] | list[bool]:
        now = time.monotonic()
        if now - self._stepped >= MODEL_STEP_S:
            self.model.step(now - self._stepped, now)
            self._stepped = now
        image = self.model.image
        if kind.is_bit:
            return image.bits[kind][start : start + count]
        return image.words[kind][start : start + count]


@dataclass
class Trace:
    """Timings shared by every agent of a worker, for the parent to split read → row into its parts."""

    requests: list[tuple[float, str, float]] = field(default_factory=list)  # (end epoch, operation, seconds)
    shipped: list[tuple[float, float, float]] = field(default_factory=list)  # history: (ts, appended, accepted)

    def observe_request(self, operation: str, seconds: float, answered: bool) -> None:
        self.requests.append((time.time(), operation if answered else f"{operation} (no answer)", seconds))

    def observe_shipped(self, records: list[Record]) -> None:
        accepted = time.time()
        for r in records:
            if r.kind == "history":
                self.shipped.append((datetime.fromisoformat(r.payload["ts"]).timestamp(), r.created, accepted))


@dataclass
class AgentCounts:
    """What the worker reports per virtual agent."""

    frames: int = 0
    skipped: int = 0
    claimed: int = 0
    shipper_errors: int = 0
    dropped: int = 0
    depth: int = 0


class VirtualAgent:
    """``await VirtualAgent(...).run(stop)``: runs until `stop` is set; `ready` once leased and subscribed."""

    def __init__(self, machine_id: str, *, url: str, key: str, interval_s: float, workdir: Path, trace: Trace) -> None:
        self.machine_id, self.url, self.key, self.interval_s = machine_id, url, key, interval_s
        self.workdir, self.trace = workdir, trace
        self.instance_id = f"fleet-{machine_id[:8]}"
        self.ready = asyncio.Event()
        self.counts = AgentCounts()
        self._spool: Spool | None = None
        self._sampler: Sampler | None = None
        self._shipper: Shipper | None = None
        self._writer: SpoolWriter | None = None
        self._intake: CommandIntake | None = None

    def snapshot(self) -> AgentCounts:
        if self._sampler is not None:
            self.counts.frames = self._sampler.stats.ticks
            self.counts.skipped = self._sampler.stats.skipped
        if self._shipper is not None:
            self.counts.shipper_errors = self._shipper.stats.errors
        if self._writer is not None:
            self.counts.dropped = self._writer.dropped
        if self._spool is not None:
            self.counts.depth = self._spool.stats.depth
        if self._intake is not None:
            self.counts.claimed = self._intake.claimed
        return self.counts

    async def run(self, stop: asyncio.Event) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        async with CloudClient(self.url, self.key) as cloud, Spool(self.workdir / "spool.sqlite") as spool:
            self._spool = spool
            cloud.request_observers.append(self.trace.observe_request)
            source = await load_map(
                cloud, machine_id=self.machine_id, cache=self.workdir / "map.json", fallback=load_default_map()
            )
            model = ReactorModel(source.register_map, RegisterImage())
            model.reset()
            writer = self._writer = SpoolWriter(spool)
            publisher = TelemetryPublisher(
                writer,
                machine_id=self.machine_id,
                register_map=source.register_map,
                parameter_ids=source.parameter_ids,
                refresh_s=LATEST_REFRESH_S,
            )
            device = PlcDevice(ImageConnection(model), source.register_map)
            sampler = self._sampler = Sampler(device, interval_s=self.interval_s, sink=publisher.submit)
            shipper = self._shipper = Shipper(spool, cloud)
            shipper.shipped_observers.append(self.trace.observe_shipped)
            lease = Lease(cloud, machine_id=self.machine_id, holder=self.instance_id)
            intake = self._intake = CommandIntake(
                cloud, lease, machine_id=self.machine_id, poll_s=COMMAND_POLL_S, handle=self._finish
            )
            started = datetime.now(UTC)
            tasks = [
                asyncio.create_task(writer.run()),
                asyncio.create_task(shipper.run()),
                asyncio.create_task(lease.run()),
                asyncio.create_task(intake.run()),
                asyncio.create_task(self._heartbeat(writer, lease, cloud, started)),
                *(
                    asyncio.create_task(
                        watch_rows(cloud, table=table, machine_id=self.machine_id, reload=_no_reload, fetch_now=False)
                    )
                    for table in ("parameters", "interlocks")
                ),
            ]
            try:
                await self._wait_ready(lease, cloud, stop)
                tasks.append(asyncio.create_task(sampler.run()))
                self.ready.set()
                await stop.wait()
            finally:
                writer.stop()
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                self.snapshot()

    async def _wait_ready(self, lease: Lease, cloud: CloudClient, stop: asyncio.Event) -> None:
        # lease validity and the channels' readiness have no single event to wait on: poll them
        while not (lease.valid() and cloud.realtime_connected) and not stop.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.1)

    async def _finish(self, row: dict[str, Any]) -> None:
        """The claimed command is done: `succeeded`, through the spool like the real handler's report."""
        assert self._writer is not None
        finished = datetime.now(UTC).isoformat()
        self._writer.submit("command", {"id": row["id"], "values": {"status": "succeeded", "finished_at": finished}})

    async def _heartbeat(self, writer: SpoolWriter, lease: Lease, cloud: CloudClient, started: datetime) -> None:
        while True:
            writer.submit(
                "heartbeat",
                {
                    "instance_id": self.instance_id,
                    "machine_id": self.machine_id,
                    "color": None,
                    "version": "fleet-bench",
                    "role": lease.role.value,
                    "started_at": started.isoformat(),
                    "last_seen": datetime.now(UTC).isoformat(),
                    "plc_connected": True,
                    "realtime_connected": cloud.realtime_connected,
                    "spool_depth": self._spool.stats.depth if self._spool else 0,
                    "error": None,
                },
            )
            await asyncio.sleep(HEARTBEAT_S)


async def _no_reload() -> bool:
    return True  # a map or interlock edit would be reloaded by the real agent; nobody edits them in the bench
