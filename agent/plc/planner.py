"""Read planning: the fewest Modbus requests that cover every parameter. Pure function.

Parameters are grouped by table (coils, discrete inputs, holding, input registers — each has its own
function code), sorted by address, and a block grows to take the next parameter when the gap between
them is ≤ `max_gap` addresses and the block stays within the protocol limit. Worked example with
max_gap=2, limit 125:

    holding float32 @100 (100–101), uint16 @103, float32 @110 (110–111)
    → block 100+4 (gap 1 merged), block 110+2 (gap 6 > 2 starts a new block)

Reading a few unused addresses costs microseconds; each extra request costs a round trip.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from agent.plc.protocol import MAX_READ_BITS, MAX_READ_REGISTERS
from agent.plc.registers import Parameter, RegisterKind

__all__ = ["ReadBlock", "plan_reads"]


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One read request: `count` addresses of `kind` from `start`, decoding into `parameters`."""

    kind: RegisterKind
    start: int
    count: int
    parameters: tuple[Parameter, ...]

    @property
    def end(self) -> int:
        return self.start + self.count

    def __str__(self) -> str:
        return f"{self.kind} {self.start}+{self.count}"


def plan_reads(
    parameters: Iterable[Parameter],
    *,
    max_gap: int = 16,
    max_registers: int = MAX_READ_REGISTERS,
    max_bits: int = MAX_READ_BITS,
) -> list[ReadBlock]:
    """Plan the read requests for `parameters`, in table order then address order.

    Every parameter lands in exactly one block that spans it entirely; no block exceeds `max_registers`
    (word tables) or `max_bits` (bit tables); gaps inside a block are ≤ `max_gap`.
    """
    if max_gap < 0:
        raise ValueError("max_gap must be >= 0")
    if not 1 <= max_registers <= MAX_READ_REGISTERS:
        raise ValueError(f"max_registers must be in 1..{MAX_READ_REGISTERS}")
    if not 1 <= max_bits <= MAX_READ_BITS:
        raise ValueError(f"max_bits must be in 1..{MAX_READ_BITS}")
    by_kind: dict[RegisterKind, list[Parameter]] = {kind: [] for kind in RegisterKind}
    for p in parameters:
        by_kind[p.register].append(p)
    blocks: list[ReadBlock] = []
    for kind, params in by_kind.items():
        limit = max_bits if kind.is_bit else max_registers
        too_wide = next((p for p in params if p.width > limit), None)
        if too_wide is not None:  # never split a value across requests: refuse the configuration instead
            raise ValueError(
                f"a read of {limit} cannot hold {too_wide.key} ({too_wide.data_type}, {too_wide.width} registers)"
            )

        blocks.extend(_plan_kind(kind, sorted(params, key=lambda p: (p.address, p.end)), max_gap, limit))
    return blocks


def _plan_kind(kind: RegisterKind, params: list[Parameter], max_gap: int, limit: int) -> list[ReadBlock]:
    blocks: list[ReadBlock] = []
    members: list[Parameter] = []
    start = end = 0
    for p in params:
        if members and p.address - end <= max_gap and max(end, p.end) - start <= limit:
            members.append(p)
            end = max(end, p.end)
            continue
        if members:
            blocks.append(ReadBlock(kind, start, end - start, tuple(members)))
        members, start, end = [p], p.address, p.end
    if members:
        blocks.append(ReadBlock(kind, start, end - start, tuple(members)))
    return blocks
