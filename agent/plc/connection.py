"""The PLC connection hub: persistent Modbus TCP connections to one unit, their reconnect loop and a `connected`
event.

Consumers never touch the pymodbus client: they call `read(kind, start, count)` / `write_*` and get values
or an `agent.errors.PlcError`. pymodbus' own retry and reconnect are disabled so that recovery has one
owner: after a connection error or a timeout (the stream may hold a late reply), the hub drops its sockets
and its reconnect loop retries with exponential backoff and full jitter. While disconnected, calls fail at
once with `PlcConnectionError` instead of blocking the sampler. During an outage each distinct error is
logged once.

pymodbus carries one request at a time per TCP connection, so a 16-request frame is 16 round trips in a row.
With `connections` > 1 (`PLC_CONNECTIONS`) the hub holds that many connections to the same unit and gives each
request the least busy one: `PlcDevice` spreads a frame's requests over them, and a write never queues behind a
read while another connection is free. They are one link: the hub is connected when all are up, and losing
any one drops them all and reconnects them together, so no consumer ever sees half a link.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from types import TracebackType

from loguru import logger
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu import ModbusPDU

from agent.errors import PlcConnectionError, PlcError, PlcExceptionResponse, PlcTimeout
from agent.plc.pdus import register_fast_reads
from agent.plc.protocol import MAX_CONNECTIONS, MAX_READ_BITS, MAX_READ_REGISTERS, MAX_WRITE_REGISTERS
from agent.plc.registers import RegisterKind
from agent.tasks import cancel_and_wait

__all__ = ["ConnectionState", "PlcConnection", "RequestTrace"]

RequestTrace = Callable[[str, float, bool], None]
#: Called with the reason when an established connection is lost.
LossListener = Callable[[str], None]
"""Hook called after every request with (operation, seconds, ok): feeds metrics and tests."""


@dataclass(eq=False, slots=True)
class _Link:
    """One TCP connection of the hub, the lock that keeps one request at a time on it (pymodbus' rule), and how
    many requests hold or wait for it (to give the next request the least busy one)."""

    client: AsyncModbusTcpClient | None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    queued: int = 0


class ConnectionState(Enum):
    NEW = "new"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    CLOSED = "closed"


class PlcConnection:
    """Modbus TCP connections to one unit (one unless `connections` says more), kept alive for the agent's
    lifetime.

    Use as ``async with PlcConnection(host=..., port=...) as plc:``. Entering does not fail when the PLC is
    down: the reconnect loop keeps trying and `connected` (an `asyncio.Event`) tells when it is up.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        unit_id: int = 1,
        timeout_s: float = 1.0,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 10.0,
        on_request: RequestTrace | None = None,
        connections: int = 1,
    ) -> None:
        if not 1 <= connections <= MAX_CONNECTIONS:
            raise ValueError(f"connections {connections} outside 1..{MAX_CONNECTIONS}")
        self.host, self.port, self.unit_id, self.timeout_s = host, port, unit_id, timeout_s
        #: TCP connections to the unit, requests spread over them (`PlcDevice` reads this many blocks at once).
        self.connections = connections
        self.backoff_initial_s, self.backoff_max_s = backoff_initial_s, backoff_max_s
        self.on_request = on_request
        self.connected = asyncio.Event()
        self.state = ConnectionState.NEW
        self.connects = 0
        self.last_error: str | None = None
        self._links: list[_Link] = []  # all up, or empty
        self._lost = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._logged_errors: set[str] = set()
        self._loss_listeners: list[LossListener] = []

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port} unit {self.unit_id}"

    async def __aenter__(self) -> PlcConnection:
        if self.state is not ConnectionState.NEW:
            raise RuntimeError(f"PlcConnection cannot be entered when {self.state.value}")
        self.state = ConnectionState.DISCONNECTED
        self._lost.set()
        self._supervisor = asyncio.create_task(self._supervise(), name=f"plc-connection {self.where}")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self.state is ConnectionState.CLOSED:
            return
        self.state = ConnectionState.CLOSED
        if self._supervisor is not None:
            await cancel_and_wait([self._supervisor])
        self._drop_links()

    def on_loss(self, listener: LossListener) -> Callable[[], None]:
        """Call `listener(reason)` whenever an established connection is lost; returns the unsubscribe.

        A recipe holding a valve open learns of it now, not when its hold ends and the close fails (a 20 s
        pulse would otherwise report nothing for 20 s while nobody commands the PLC)."""
        self._loss_listeners.append(listener)
        return lambda: self._loss_listeners.remove(listener)

    async def wait_connected(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for a connection; True if connected."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self.connected.wait()
        return self.connected.is_set()

    # --- reads and writes ----------------------------------------------------------------------

    async def read(self, kind: RegisterKind, start: int, count: int) -> list[int] | list[bool]:
        """Read `count` addresses of table `kind` from `start` (FC1/2/3/4). Bits come back as bools."""
        limit = MAX_READ_BITS if kind.is_bit else MAX_READ_REGISTERS
        if not 1 <= count <= limit:
            raise ValueError(f"count {count} outside 1..{limit} for {kind}")
        call = {
            RegisterKind.COIL: "read_coils",
            RegisterKind.DISCRETE_INPUT: "read_discrete_inputs",
            RegisterKind.HOLDING: "read_holding_registers",
            RegisterKind.INPUT: "read_input_registers",
        }[kind]
        response = await self._request(call, f"{kind} {start}+{count}", start, count=count)
        return list(response.bits[:count]) if kind.is_bit else list(response.registers[:count])

    async def write_bit(self, address: int, value: bool) -> None:
        """Write one coil (FC5)."""
        await self._request("write_coil", f"coil {address}", address, value)

    async def write_registers(self, address: int, words: list[int]) -> None:
        """Write holding registers: FC6 for one register, FC16 for several."""
        if not 1 <= len(words) <= MAX_WRITE_REGISTERS:
            raise ValueError(f"{len(words)} registers outside 1..{MAX_WRITE_REGISTERS}")
        if len(words) == 1:
            await self._request("write_register", f"holding {address}", address, words[0])
        else:
            await self._request("write_registers", f"holding {address}+{len(words)}", address, words)

    async def _request(self, call: str, what: str, *args: object, **kwargs: object) -> ModbusPDU:
        where = f"{what} @ {self.where}"
        if self.state is not ConnectionState.CONNECTED or not self._links:
            if self.on_request is not None:  # a request the link could not carry is a failed request too
                self.on_request(call, 0.0, False)
            raise PlcConnectionError("PLC not connected", where=where)

        started = time.perf_counter()
        ok = False
        link = min(self._links, key=lambda candidate: candidate.queued)  # the first free one, if any is
        link.queued += 1
        client: AsyncModbusTcpClient | None = None
        try:
            async with link.lock:
                client = link.client
                if client is None:  # the link went down while this request waited for its turn
                    raise PlcConnectionError("PLC not connected (lost while the request waited)", where=where)
                async with asyncio.timeout(self.timeout_s * 2):
                    response: ModbusPDU = await getattr(client, call)(*args, device_id=self.unit_id, **kwargs)
            if response.isError():
                code = getattr(response, "exception_code", 0)
                raise PlcExceptionResponse("PLC refused the request", code=code, where=where)
            ok = True
            return response
        except PlcError:
            raise
        except (TimeoutError, ModbusIOException) as exc:
            self._connection_lost(f"timeout after {self.timeout_s}s", client)
            raise PlcTimeout(f"no reply within {self.timeout_s}s", where=where) from exc
        except (ConnectionException, ModbusException, OSError) as exc:
            self._connection_lost(str(exc) or type(exc).__name__, client)
            raise PlcConnectionError(f"connection failed: {exc}", where=where) from exc
        finally:
            link.queued -= 1
            if self.on_request is not None:
                self.on_request(call, time.perf_counter() - started, ok)

    # --- the reconnect loop --------------------------------------------------------------------

    def _connection_lost(self, reason: str, client: AsyncModbusTcpClient | None = None) -> None:
        """Drop every connection and wake the reconnect loop. With `client`: only if it is one of the current
        connections, so a late failure of a connection already dropped (a request still in flight on another
        connection when the link went down) cannot drop the link that replaced it."""
        if client is not None and not any(link.client is client for link in self._links):
            return
        was_connected = self.state is ConnectionState.CONNECTED
        if was_connected:
            logger.bind(area="plc").warning("PLC connection lost ({}): {}", self.where, reason)
            self.state = ConnectionState.DISCONNECTED
        self.last_error = reason
        self.connected.clear()
        self._drop_links()
        self._lost.set()
        if was_connected:
            for listener in list(self._loss_listeners):
                try:
                    listener(reason)
                except Exception:  # a listener's bug must not stop the reconnect
                    logger.bind(area="plc").exception("PLC loss listener failed")

    def _drop_links(self) -> None:
        links, self._links = self._links, []
        for link in links:
            client, link.client = link.client, None  # a request waiting for this link fails, not uses it
            if client is not None:
                client.close()

    async def _supervise(self) -> None:
        delay = self.backoff_initial_s
        while True:
            await self._lost.wait()
            if await self._connect_once():
                delay = self.backoff_initial_s
                continue
            # Full jitter keeps a fleet of agents from reconnecting in lockstep after a PLC reboot.
            await asyncio.sleep(random.uniform(0, delay))
            delay = min(delay * 2, self.backoff_max_s)

    async def _connect_once(self) -> bool:
        self.last_error = None
        clients = [self._new_client() for _ in range(self.connections)]
        results = await asyncio.gather(*(self._open(client) for client in clients))
        if not all(results):
            for client in clients:
                client.close()
            self.last_error = self.last_error or "connect refused"
            if self.last_error not in self._logged_errors:
                self._logged_errors.add(self.last_error)
                logger.bind(area="plc").warning("PLC {} unreachable: {}", self.where, self.last_error)
            return False
        self._links = [_Link(client) for client in clients]
        if self.connects or self._logged_errors:
            logger.bind(area="plc").info("PLC {} connected", self.where)
        self.connects += 1
        self._logged_errors.clear()
        self.state = ConnectionState.CONNECTED
        self._lost.clear()
        self.connected.set()
        return True

    def _new_client(self) -> AsyncModbusTcpClient:
        client: AsyncModbusTcpClient

        def on_connect_change(up: bool) -> None:
            # The peer closed the socket: notice now, not at the next request's timeout.
            if not up:
                self._connection_lost("connection closed by the PLC", client)

        client = AsyncModbusTcpClient(
            self.host,
            port=self.port,
            timeout=self.timeout_s,
            retries=0,
            reconnect_delay=0,
            trace_connect=on_connect_change,
        )
        register_fast_reads(client)
        return client

    async def _open(self, client: AsyncModbusTcpClient) -> bool:
        try:
            if await asyncio.wait_for(client.connect(), self.timeout_s * 2):
                return True
        except (TimeoutError, OSError, ModbusException) as exc:
            self.last_error = str(exc) or type(exc).__name__
        return False
