"""The register map: which PLC address holds which machine parameter, and how to decode it.

Pure code: frozen dataclasses and functions, no I/O beyond reading the map file in `load_map_csv`.
A map is validated as a whole, so an engineer editing the CSV learns about the first bad row by its key
(docs/CONTRACT.md §8 "Register map file"; the same columns as the database table).
"""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path

from agent.errors import MapError, UnknownParameter

__all__ = [
    "DEFAULT_MAP",
    "MAP_COLUMNS",
    "DataType",
    "Parameter",
    "RegisterKind",
    "RegisterMap",
    "load_default_map",
    "load_map_csv",
    "map_from_rows",
    "parse_map_csv",
]

MAX_ADDRESS = 65535
DEFAULT_MAP = "default_map.csv"
MAP_COLUMNS = (
    "key",
    "component",
    "name",
    "unit",
    "data_type",
    "register",
    "address",
    "write_address",
    "scale",
    "offset",
    "min_value",
    "max_value",
    "writable",
    "logged",
    "deadband",
)


class DataType(StrEnum):
    BOOL = "bool"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT32 = "float32"

    @property
    def words(self) -> int:
        """16-bit registers one value occupies (a bool in a register uses one register)."""
        return 2 if self in (DataType.INT32, DataType.UINT32, DataType.FLOAT32) else 1

    @property
    def is_integer(self) -> bool:
        return self in (DataType.INT16, DataType.UINT16, DataType.INT32, DataType.UINT32)


class RegisterKind(StrEnum):
    """The four Modbus tables. Bit tables hold one bool per address; word tables 16 bits per address."""

    COIL = "coil"
    DISCRETE_INPUT = "discrete_input"
    HOLDING = "holding"
    INPUT = "input"

    @property
    def is_bit(self) -> bool:
        return self in (RegisterKind.COIL, RegisterKind.DISCRETE_INPUT)

    @property
    def write_kind(self) -> RegisterKind:
        """Where writes for a parameter read from this table go: coils for bits, holding for words."""
        return RegisterKind.COIL if self.is_bit else RegisterKind.HOLDING


@dataclass(frozen=True, slots=True)
class Parameter:
    """One machine parameter. Engineering value = raw · scale + offset."""

    key: str
    component: str
    data_type: DataType
    register: RegisterKind
    address: int
    name: str = ""
    unit: str = ""
    write_address: int | None = None
    scale: float = 1.0
    offset: float = 0.0
    min_value: float | None = None
    max_value: float | None = None
    writable: bool = False
    logged: bool = True
    deadband: float = 0.0

    @property
    def width(self) -> int:
        """Addresses occupied in its table (bits for coil/DI, registers otherwise)."""
        return 1 if self.register.is_bit else self.data_type.words

    @property
    def end(self) -> int:
        """One past the last address occupied."""
        return self.address + self.width


@dataclass(frozen=True)
class RegisterMap:
    """A validated, immutable set of parameters, looked up by key. Build it with `RegisterMap.build`."""

    parameters: tuple[Parameter, ...]
    _by_key: Mapping[str, Parameter] = field(repr=False, compare=False)

    @classmethod
    def build(cls, parameters: Iterable[Parameter]) -> RegisterMap:
        """Validate and index `parameters`. Raises `MapError` naming the first offending key."""
        params = tuple(parameters)
        _validate(params)
        return cls(params, {p.key: p for p in params})

    def __len__(self) -> int:
        return len(self.parameters)

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self.parameters)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __getitem__(self, key: str) -> Parameter:
        try:
            return self._by_key[key]
        except KeyError:
            raise UnknownParameter(f"unknown parameter {key!r}") from None

    def get(self, key: str) -> Parameter | None:
        return self._by_key.get(key)

    def keys(self) -> list[str]:
        return [p.key for p in self.parameters]


def _validate(params: tuple[Parameter, ...]) -> None:
    seen: set[str] = set()
    for p in params:
        if not p.key or p.key in seen:
            raise MapError("duplicate or empty key", key=p.key or "<empty>")
        seen.add(p.key)
        _validate_one(p)
    _check_overlaps(params, lambda p: (p.register, p.address, p.end), "address")
    writers = [p for p in params if p.write_address is not None]
    _check_overlaps(
        writers,
        lambda p: (p.register.write_kind, p.write_address or 0, (p.write_address or 0) + p.width),
        "write_address",
    )
    for w in writers:
        assert w.write_address is not None
        kind, start, end = w.register.write_kind, w.write_address, w.write_address + w.width
        for other in params:
            if other is not w and other.register == kind and other.address < end and start < other.end:
                raise MapError(f"write_address {start} overlaps the readings of {other.key}", key=w.key)


def _validate_one(p: Parameter) -> None:
    if not isinstance(p.data_type, DataType):
        raise MapError(f"unknown data type {p.data_type!r}", key=p.key)
    if not isinstance(p.register, RegisterKind):
        raise MapError(f"unknown register kind {p.register!r}", key=p.key)
    if p.register.is_bit and p.data_type is not DataType.BOOL:
        raise MapError(f"{p.register} holds single bits; data type must be bool, not {p.data_type}", key=p.key)
    for label, addr in (("address", p.address), ("write_address", p.write_address)):
        if addr is not None and not 0 <= addr <= MAX_ADDRESS - p.width + 1:
            raise MapError(f"{label} {addr} outside 0..{MAX_ADDRESS - p.width + 1}", key=p.key)
    if p.write_address is not None and not p.writable:
        raise MapError("write_address set on a read-only parameter (writable is false)", key=p.key)
    if p.writable and p.write_address is None:
        raise MapError("writable parameter has no write_address", key=p.key)
    if not math.isfinite(p.scale) or p.scale == 0:
        raise MapError(f"scale must be a finite non-zero number, got {p.scale}", key=p.key)
    if not math.isfinite(p.offset):
        raise MapError(f"offset must be finite, got {p.offset}", key=p.key)
    if p.min_value is not None and p.max_value is not None and p.min_value > p.max_value:
        raise MapError(f"min_value {p.min_value} > max_value {p.max_value}", key=p.key)
    if p.deadband < 0:
        raise MapError(f"deadband must be >= 0, got {p.deadband}", key=p.key)


def _check_overlaps(
    params: Iterable[Parameter], span: Callable[[Parameter], tuple[RegisterKind, int, int]], label: str
) -> None:
    ranges = sorted((span(p), p.key) for p in params)
    for ((kind_a, _, end_a), key_a), ((kind_b, start_b, _), key_b) in itertools.pairwise(ranges):
        if kind_a == kind_b and start_b < end_a:
            raise MapError(f"{label} {start_b} ({kind_b}) overlaps {key_a}", key=key_b)


# --- CSV ------------------------------------------------------------------------------------------


def load_map_csv(path: Path | str) -> RegisterMap:
    """Load a map CSV with the `MAP_COLUMNS` header. Raises `MapError` naming the key and column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MapError(f"cannot read map {path}: {exc.strerror}") from exc
    return parse_map_csv(text, source=str(path))


def load_default_map() -> RegisterMap:
    """The packaged map of the reference reactor (docs/CONTRACT.md §8 "The reference reactor")."""
    text = resources.files("agent.plc").joinpath(DEFAULT_MAP).read_text(encoding="utf-8")
    return parse_map_csv(text, source=DEFAULT_MAP)


def parse_map_csv(text: str, *, source: str = "<map>") -> RegisterMap:
    rows = list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
    if not rows:
        raise MapError(f"{source}: no parameters")
    missing = [c for c in MAP_COLUMNS if c not in rows[0]]
    if missing:
        raise MapError(f"{source}: missing columns {', '.join(missing)}")
    return RegisterMap.build(_parse_row(row) for row in rows)


def _parse_row(row: dict[str, str]) -> Parameter:
    key = (row.get("key") or "").strip()

    def text(col: str) -> str:
        return (row.get(col) or "").strip()

    def number(col: str, *, default: float | None = None, integer: bool = False) -> float | None:
        raw = text(col)
        if raw == "":
            return default
        try:
            value = int(raw, 0) if integer else float(raw)
        except ValueError:
            raise MapError(f"{col} is not a{'n integer' if integer else ' number'}: {raw!r}", key=key) from None
        return value

    def flag(col: str, default: bool) -> bool:
        raw = text(col).lower()
        if raw == "":
            return default
        if raw in {"true", "1", "yes"}:
            return True
        if raw in {"false", "0", "no"}:
            return False
        raise MapError(f"{col} must be true or false, got {raw!r}", key=key)

    try:
        data_type = DataType(text("data_type"))
    except ValueError:
        raise MapError(f"unknown data type {text('data_type')!r}", key=key) from None
    try:
        register = RegisterKind(text("register"))
    except ValueError:
        raise MapError(f"unknown register kind {text('register')!r}", key=key) from None
    address = number("address", integer=True)
    if address is None:
        raise MapError("address is required", key=key)
    write_address = number("write_address", integer=True)
    return Parameter(
        key=key,
        component=text("component"),
        name=text("name"),
        unit=text("unit"),
        data_type=data_type,
        register=register,
        address=int(address),
        write_address=None if write_address is None else int(write_address),
        scale=number("scale", default=1.0) or 0.0,
        offset=number("offset", default=0.0) or 0.0,
        min_value=number("min_value"),
        max_value=number("max_value"),
        writable=flag("writable", False),
        logged=flag("logged", True),
        deadband=number("deadband", default=0.0) or 0.0,
    )


def map_from_rows(rows: Iterable[Mapping[str, object]]) -> RegisterMap:
    """A map from `parameters` table rows (docs/CONTRACT.md §2; same columns as the CSV), validated the same way."""
    return RegisterMap.build(_parse_row({k: "" if v is None else str(v) for k, v in row.items()}) for row in rows)
