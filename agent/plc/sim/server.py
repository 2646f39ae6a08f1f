"""The simulator served over real Modbus TCP (pymodbus server), with fault injection for tests.

The pymodbus device keeps its own register blocks; our `RegisterImage` is the source of truth and the
device's access hook copies between the two on every request: reads are filled from the image, writes are
applied to the image and reported to the reactor model at once (so valve edges are timed to the request,
not to the physics tick). The same hook injects faults: reply delays, Modbus exception codes for chosen
address ranges, dropped connections, a full "unplugged" state (listener closed), and `force(key, value)` to
pin a live value (e.g. chamber pressure high, to violate an interlock) until released with `force(key, None)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass
from types import TracebackType

from loguru import logger
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType as SimType
from pymodbus.simulator import SimData, SimDevice

from agent.plc.protocol import WordOrder
from agent.plc.registers import RegisterKind, RegisterMap
from agent.plc.sim.image import TABLE_SIZE, RegisterImage
from agent.plc.sim.pulses import PulseTimer
from agent.plc.sim.reactor import ReactorModel

__all__ = ["AddressFault", "Simulator", "ValveEvent"]

TICK_S = 0.05
_FC_KIND = {
    1: RegisterKind.COIL,
    5: RegisterKind.COIL,
    15: RegisterKind.COIL,
    2: RegisterKind.DISCRETE_INPUT,
    3: RegisterKind.HOLDING,
    6: RegisterKind.HOLDING,
    16: RegisterKind.HOLDING,
    23: RegisterKind.HOLDING,
    4: RegisterKind.INPUT,
}


@dataclass(frozen=True, slots=True)
class AddressFault:
    """Requests touching [start, start+count) of `kind` get Modbus exception `code`."""

    kind: RegisterKind
    start: int
    count: int = 1
    code: int = ExcCodes.ILLEGAL_ADDRESS

    def hits(self, kind: RegisterKind, start: int, count: int) -> bool:
        return kind == self.kind and start < self.start + self.count and self.start < start + count


@dataclass(frozen=True, slots=True)
class ValveEvent:
    """A pulse-valve coil changed: monotonic time of the write request (or of the pulse timer's own edge, for a
    PLC-timed pulse), valve number, new state."""

    t: float
    valve: int
    open: bool


class Simulator:
    """An ALD reactor PLC on Modbus TCP. ``async with Simulator(register_map, port=0) as sim: sim.port``."""

    def __init__(
        self,
        register_map: RegisterMap,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        word_order: WordOrder = WordOrder.LITTLE,
        watchdog_timeout_s: float = 5.0,
        address_as_value: bool = False,
        seed: int = 0,
    ) -> None:
        self.register_map, self.host, self.port = register_map, host, port
        self.image = RegisterImage(word_order=word_order)
        self.model = ReactorModel(register_map, self.image, watchdog_timeout_s=watchdog_timeout_s, seed=seed)
        self.address_as_value = address_as_value
        if address_as_value:
            self.image.fill_address_as_value()
        else:
            self.model.reset()
        self.sizes = _table_sizes(register_map)
        self.delay_s = 0.0
        self.faults: list[AddressFault] = []
        self.requests = 0
        self.valve_events: deque[ValveEvent] = deque(maxlen=100_000)
        self._server: ModbusTcpServer | None = None
        self._ticker: asyncio.Task[None] | None = None
        #: The PLC-timed pulse task (its own thread, started with the simulator; none in address-as-value mode).
        self.pulses = PulseTimer(register_map, self.image, on_edge=self._pulse_edge)
        if not address_as_value:
            self.model.pulses = self.pulses
        self._valve_coils = {
            p.address: int(p.component.removeprefix("valve_"))
            for p in register_map
            if p.register is RegisterKind.COIL and p.key.startswith("valve_") and p.key.endswith(".state")
        }

    async def __aenter__(self) -> Simulator:
        await self._listen()
        if not self.address_as_value:
            self.pulses.start()
            self._ticker = asyncio.create_task(self._tick(), name="simulator-physics")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            await asyncio.to_thread(self.pulses.stop)
        await self._close_listener()

    # --- faults ----------------------------------------------------------------------------------
    def force(self, key: str, value: float | bool | None) -> None:
        """Pin `key` at `value` after every physics tick and write request; None releases it
        (`ReactorModel.force`). ``sim.force("pressure_gauge_1.pressure", 5000.0)``."""
        self.model.force(key, value)

    def drop_connections(self, limit: int | None = None) -> None:
        """Close every client connection now, or the first `limit` of them (the listener stays up: clients can
        reconnect)."""
        if self._server is not None:
            _drop_connections_of(self._server, limit)

    @property
    def client_connections(self) -> int:
        """Client connections open now."""
        return 0 if self._server is None else len(self._server.active_connections)

    async def unplug(self) -> None:
        """Cable pulled: close all connections and stop listening until `replug()`."""
        await self._close_listener()

    async def replug(self) -> None:
        await self._listen()

    @property
    def plugged(self) -> bool:
        return self._server is not None

    def _pulse_edge(self, t: float, valve: int, is_open: bool) -> None:
        self.valve_events.append(ValveEvent(t, valve, is_open))  # deque.append: safe from the timer thread

    # --- Modbus glue -----------------------------------------------------------------------------
    async def _listen(self) -> None:
        c, d, h, i = (self.sizes[k] for k in RegisterKind)
        device = SimDevice(
            id=0,
            simdata=(
                [SimData(0, values=[False] * c, datatype=SimType.BITS)],
                [SimData(0, values=[False] * d, datatype=SimType.BITS)],
                [SimData(0, values=[0] * h, datatype=SimType.REGISTERS)],
                [SimData(0, values=[0] * i, datatype=SimType.REGISTERS)],
            ),
            action=self._on_request,
        )
        server = ModbusTcpServer(device, address=(self.host, self.port))
        await server.serve_forever(background=True)
        listener = server.transport
        assert isinstance(listener, asyncio.Server)  # a TCP server's "transport" is loop.create_server's Server
        self.port = listener.sockets[0].getsockname()[1]
        self._server = server
        logger.bind(area="plc").debug("simulator listening on {}:{}", self.host, self.port)

    async def _close_listener(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            _drop_connections_of(server)
            await server.shutdown()  # type: ignore[no-untyped-call]  # pymodbus leaves it unannotated

    async def _on_request(
        self,
        function_code: int,
        block_start: int,
        address: int,
        count: int,
        registers: list[int],
        values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        self.requests += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        kind = _FC_KIND.get(function_code)
        if kind is None:
            return ExcCodes.ILLEGAL_FUNCTION
        span = len(values) if values else (count * 16 if kind.is_bit else count)
        for fault in self.faults:
            if fault.hits(kind, address, span):
                return ExcCodes(fault.code)
        now = time.monotonic()  # one instant per request: the valve event and the PLC's own measurement share it
        if kind.is_bit:
            self._sync_bits(kind, block_start, address, count, registers, values, now)
        else:
            offset = address - block_start
            if values:
                self.image.words[kind][address : address + len(values)] = values
            registers[offset : offset + count] = self.image.words[kind][address : address + count]
        if values:
            self.model.note_write(now)
        return None

    def _sync_bits(
        self,
        kind: RegisterKind,
        block_start: int,
        address: int,
        reg_count: int,
        registers: list[int],
        values: list[int] | list[bool] | None,  # bools for bit requests; each is read with bool() anyway
        now: float,
    ) -> None:
        """Bits live packed 16 per register in the device; `reg_count` registers cover the request."""
        bits = self.image.bits[kind]
        if values:
            for n, value in enumerate(values):
                valve = self._valve_coils.get(address + n)
                if valve is not None and bits[address + n] != bool(value):
                    self.valve_events.append(ValveEvent(now, valve, bool(value)))
                bits[address + n] = bool(value)
        first = address // 16
        for r in range(first, first + reg_count):
            word = 0
            for b, bit in enumerate(bits[r * 16 : r * 16 + 16]):
                word |= int(bit) << b
            registers[r - block_start] = word

    async def _tick(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            self.model.step(now - last, now)
            last = now


def _table_sizes(register_map: RegisterMap) -> dict[RegisterKind, int]:
    """Each table covers the map's highest address plus a margin, in whole 16-bit words (pymodbus packs bits)."""
    sizes = {}
    for kind in RegisterKind:
        top = max((p.end for p in register_map if p.register is kind or p.register.write_kind is kind), default=0)
        sizes[kind] = min(TABLE_SIZE, max(1024, (top + 256 + 15) // 16 * 16))
    return sizes


def _drop_connections_of(server: ModbusTcpServer, limit: int | None = None) -> None:
    for conn in list(server.active_connections.values())[:limit]:
        conn.close()
