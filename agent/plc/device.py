"""Map-aware PLC access: read whole frames by plan, write one parameter with verification.

`PlcDevice` joins the register map, the read plan and the connection hub. A frame read runs the plan block
by block, as many blocks at once as the hub has connections (`PLC_CONNECTIONS`); when the PLC refuses a block
(Modbus exception), that block is retried alone, parameter by parameter, so one bad address blanks only its
own keys, and the split is remembered so the next frames do not pay for the failed merged request again. A
connection loss or timeout blanks the rest of the frame (never old values) and leaves recovery to the hub.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from loguru import logger

from agent.errors import PlcConnectionError, PlcError, PlcExceptionResponse, WriteVerifyError
from agent.plc.codec import BlockDecoder, Value, decode_value, make_block_decoder
from agent.plc.connection import PlcConnection
from agent.plc.planner import ReadBlock, plan_reads
from agent.plc.protocol import MAX_READ_REGISTERS, WordOrder
from agent.plc.registers import DataType, Parameter, RegisterKind, RegisterMap
from agent.plc.writes import validate_write

__all__ = ["FrameRead", "PlcDevice"]

#: After this many frames a split block is tried merged again (the PLC may have been fixed).
RETRY_MERGED_AFTER = 60


@dataclass(slots=True)
class FrameRead:
    """One acquisition: values by key (None = could not be read), when and how long it took."""

    values: dict[str, Value | None]
    started_monotonic: float
    duration_s: float
    requests: int = 0
    failed_keys: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed_keys


class PlcDevice:
    """Reads and writes machine parameters by key through one `PlcConnection`."""

    def __init__(
        self,
        connection: PlcConnection,
        register_map: RegisterMap,
        *,
        word_order: WordOrder = WordOrder.LITTLE,
        max_gap: int = 16,
        max_registers: int = MAX_READ_REGISTERS,
    ) -> None:
        self.connection = connection
        self.word_order = word_order
        self._max_gap, self._max_registers = max_gap, max_registers
        #: Called after each planned block of a full read with (block, seconds, ok): the metrics' per-block
        #: read latency, to find a slow address range. Ad-hoc `read(keys)` calls are not reported.
        self.block_observers: list[Callable[[ReadBlock, float, bool], None]] = []
        self.set_map(register_map)

    def set_map(self, register_map: RegisterMap) -> None:
        """Swap in a new map (e.g. reloaded from the database) and re-plan."""
        self.map = register_map
        self.plan: list[ReadBlock] = plan_reads(register_map, max_gap=self._max_gap, max_registers=self._max_registers)
        self._plan_keys = _keys_of(self.plan)  # a frame's keys in plan order, once per map, not once per frame
        self._decoders: dict[tuple[str, int, int], tuple[list[str], BlockDecoder]] = {}
        # planned block → (pieces that read fine last time, frames since the split)
        self._split: dict[tuple[str, int, int], tuple[tuple[ReadBlock, ...], int]] = {}

    async def read_all(self) -> FrameRead:
        """Read every mapped parameter (the sampler's frame)."""
        return await self._read_blocks(self.plan, self._plan_keys, observed=True)

    async def read(self, keys: Iterable[str]) -> FrameRead:
        """Read just `keys` (planned on the fly). Unknown keys raise `UnknownParameter`."""
        params = [self.map[k] for k in keys]
        blocks = plan_reads(params, max_gap=self._max_gap, max_registers=self._max_registers)
        return await self._read_blocks(blocks, _keys_of(blocks))

    async def _read_blocks(
        self, blocks: Sequence[ReadBlock], keys: tuple[str, ...], *, observed: bool = False
    ) -> FrameRead:
        """Read `blocks` (whose keys in order are `keys`), as many at once as the hub has connections (each
        takes the next block not yet started); values keep that key order, whatever order the replies come in."""
        started = time.monotonic()
        values: dict[str, Value | None] = dict.fromkeys(keys)
        failed: list[str] = []
        requests = 0
        down = False
        timings: list[tuple[ReadBlock, float, bool]] = []
        pending = iter(blocks)

        async def read_pending() -> None:
            nonlocal requests, down
            for block in pending:  # shared: no await between taking a block and starting its read
                if down:
                    failed.extend(p.key for p in block.parameters)
                    continue
                block_started = time.perf_counter()
                try:
                    made = await self._read_block(block, values, failed)
                    requests += made  # not `+= await`: that reads `requests` before another reader adds to it
                except PlcConnectionError:
                    down = True
                    failed.extend(p.key for p in block.parameters)
                if observed:
                    timings.append((block, time.perf_counter() - block_started, not down))

        readers = min(self.connection.connections, len(blocks))
        if readers <= 1:
            await read_pending()
        else:
            await asyncio.gather(*(read_pending() for _ in range(readers)))
            if failed:  # in plan order, as one connection would have found them
                gone = set(failed)
                failed = [key for key in values if key in gone]
        for key in failed:
            values[key] = None  # a block the link failed in the middle of is blanked whole
        duration = time.monotonic() - started
        # Reported once the frame is in, not between its round trips: the metrics' work must not sit on the read.
        for observe in self.block_observers:
            for block, seconds, ok in timings:
                observe(block, seconds, ok)
        return FrameRead(values, started, duration, requests, failed)

    async def _read_block(self, block: ReadBlock, values: dict[str, Value | None], failed: list[str]) -> int:
        """Read one planned block into `values`; returns the number of requests made.

        A block the PLC refused before is read as the pieces that worked last time, until
        `RETRY_MERGED_AFTER` frames have passed and the merged request is tried again.
        """
        tag = (block.kind.value, block.start, block.count)
        cached = self._split.get(tag)
        if cached is not None and cached[1] < RETRY_MERGED_AFTER:
            self._split[tag] = (cached[0], cached[1] + 1)
            pieces = cached[0]
        else:
            pieces = (block,)
        readable: list[ReadBlock] = []
        requests = 0
        for piece in pieces:
            requests += await self._read_isolating(piece, values, failed, readable)
        if len(readable) == 1 and readable[0] is block:
            self._split.pop(tag, None)
        elif cached is None or cached[1] >= RETRY_MERGED_AFTER:
            logger.bind(area="plc").warning(
                "read {} refused; isolated into {} requests, unreadable: {}",
                block,
                len(readable),
                ", ".join(k for k in failed if k in {p.key for p in block.parameters}),
            )
            self._split[tag] = (tuple(readable) or (block,), 0)
        return requests

    async def _read_isolating(
        self,
        block: ReadBlock,
        values: dict[str, Value | None],
        failed: list[str],
        pieces: list[ReadBlock],
    ) -> int:
        """Read `block`; if the PLC refuses it, bisect until the refused parameters are alone.

        One bad address among n parameters costs about 2·log2(n) requests once, instead of n.
        Connection errors and timeouts are not isolated: they mean the link is down.
        """
        try:
            raw = await self._read_raw(block)
        except PlcExceptionResponse:
            if len(block.parameters) == 1:
                values[block.parameters[0].key] = None
                failed.append(block.parameters[0].key)
                pieces.append(block)  # keep asking: the PLC may start answering
                return 1
            half = len(block.parameters) // 2
            requests = 1
            for part in (block.parameters[:half], block.parameters[half:]):
                requests += await self._read_isolating(_span(block.kind, part), values, failed, pieces)
            return requests
        except PlcError as exc:
            raise PlcConnectionError(str(exc), where=exc.where) from exc
        self._decode_into(block, raw, values)
        pieces.append(block)
        return 1

    async def _read_raw(self, block: ReadBlock) -> list[int] | list[bool]:
        return await self.connection.read(block.kind, block.start, block.count)

    def _decode_into(self, block: ReadBlock, raw: list[int] | list[bool], values: dict[str, Value | None]) -> None:
        tag = (block.kind.value, block.start, block.count)
        decoder = self._decoders.get(tag)
        if decoder is None:
            params = sorted(block.parameters, key=lambda p: p.address)
            decoder = self._decoders[tag] = (
                [p.key for p in params],
                make_block_decoder(params, self.word_order, start=block.start, count=block.count),
            )
        keys, decode = decoder
        values.update(zip(keys, decode(raw), strict=True))

    async def write(
        self,
        key: str,
        value: object,
        *,
        verify: bool = True,
        tolerance: float | None = None,
        register_map: RegisterMap | None = None,
    ) -> Value:
        """Write `value` to parameter `key` (of `register_map`, default the device's) within the map's own limits;
        with `verify`, read it back and compare. The machine's rules are not here: the agent writes only
        through `agent.safety.WriteGate`, which calls this.

        Returns the value read back (or the value written when not verifying). Raises `UnknownParameter`
        and `ValidationError` before any I/O, `PlcError` on I/O failure, `WriteVerifyError` when the
        read-back differs by more than `tolerance` (default: the precision of the data type).
        """
        param = (register_map or self.map)[key]
        encoded = validate_write(param, value, self.word_order)
        assert param.write_address is not None  # validate_write guarantees it
        if isinstance(encoded, bool):
            await self.connection.write_bit(param.write_address, encoded)
        else:
            await self.connection.write_registers(param.write_address, encoded)
        expected = decode_value(param, encoded, self.word_order)
        if not verify:
            return expected
        kind = param.register.write_kind
        raw = await self.connection.read(kind, param.write_address, param.width)
        actual = bool(raw[0]) if kind.is_bit else decode_value(param, raw, self.word_order)
        if not _close(param, expected, actual, tolerance):
            raise WriteVerifyError(
                f"{key}: wrote {expected!r} but read back {actual!r}", where=f"{kind} {param.write_address}"
            )
        return actual


def _keys_of(blocks: Iterable[ReadBlock]) -> tuple[str, ...]:
    return tuple(p.key for block in blocks for p in block.parameters)


def _span(kind: RegisterKind, params: Sequence[Parameter]) -> ReadBlock:
    start = min(p.address for p in params)
    return ReadBlock(kind, start, max(p.end for p in params) - start, tuple(params))


def _close(param: Parameter, expected: Value, actual: Value, tolerance: float | None) -> bool:
    if param.data_type is DataType.BOOL or isinstance(expected, bool):
        return bool(expected) == bool(actual)
    if tolerance is None:
        tolerance = abs(param.scale) / 2 if param.data_type.is_integer else 1e-6 * max(1.0, abs(float(expected)))
    return math.isclose(float(expected), float(actual), rel_tol=0, abs_tol=tolerance)
