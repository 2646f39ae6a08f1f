#!/usr/bin/env python3
"""Regenerate the reference machine's ``parameters`` rows in ``supabase/seed.sql`` from the PLC map.

Why: the register map has one source of truth, ``agent/plc/default_map.csv`` (what the PLC layer and
the simulator use). The seed's copy is generated from it between two marker comments, and a test
(tests/supalocal/test_seed.py) regenerates it in memory and fails if the two disagree.

Only the ``csv`` module is used (no import of ``agent``), so the script runs anywhere.
Parameter ids are uuid5(machine id, key): stable across regenerations, so foreign keys in tests and
fixtures never churn.

Usage::

    python scripts/gen_seed.py            # rewrite the block in supabase/seed.sql
    python scripts/gen_seed.py --check    # exit 1 if seed.sql is out of date
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

from agent.plc.registers import MAP_COLUMNS

__all__ = [
    "BEGIN_MARKER",
    "END_MARKER",
    "MACHINE_ID",
    "generate_seed",
    "main",
    "parameter_id",
    "read_map",
    "render_parameters",
]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MAP = ROOT / "agent" / "plc" / "default_map.csv"
DEFAULT_SEED = ROOT / "supabase" / "seed.sql"
MACHINE_ID = "00000000-0000-4000-8000-000000000001"
BEGIN_MARKER = "-- BEGIN GENERATED parameters (scripts/gen_seed.py from agent/plc/default_map.csv; do not edit)"
END_MARKER = "-- END GENERATED parameters"
COLUMNS = MAP_COLUMNS  # the CSV columns are the `parameters` columns (docs/CONTRACT.md §2)
INT_COLUMNS = frozenset({"address", "write_address"})
FLOAT_COLUMNS = frozenset({"scale", "offset", "min_value", "max_value", "deadband"})
BOOL_COLUMNS = frozenset({"writable", "logged"})
NULLABLE_COLUMNS = frozenset({"unit", "write_address", "min_value", "max_value"})
BOOL_WORDS = {"true": "true", "false": "false"}
EXIT_OUT_OF_DATE = 1


class MapError(ValueError):
    """The CSV map is malformed; the message names the line and column."""


def read_map(path: Path = DEFAULT_MAP) -> list[dict[str, str]]:
    """Rows of the map CSV (``#`` comment lines skipped), checked for the expected header."""
    with path.open(newline="", encoding="utf-8") as handle:
        lines = [line for line in handle if not line.lstrip().startswith("#") and line.strip()]
    reader = csv.DictReader(lines)
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise MapError(f"{path}: header must be {','.join(COLUMNS)}, got {reader.fieldnames}")
    return [{k: (v or "").strip() for k, v in row.items()} for row in reader]


def parameter_id(key: str, *, machine_id: str = MACHINE_ID) -> str:
    """The seed's fixed id of parameter ``key`` on ``machine_id``."""
    return str(uuid.uuid5(uuid.UUID(machine_id), key))


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_value(column: str, raw: str, *, line: int) -> str:
    if raw == "":
        if column in NULLABLE_COLUMNS:
            return "null"
        raise MapError(f"line {line}: {column} is required")
    if column in INT_COLUMNS:
        if not raw.isdigit():
            raise MapError(f"line {line}: {column}={raw!r} is not a non-negative integer")
        return str(int(raw))
    if column in FLOAT_COLUMNS:
        try:
            number = float(raw)
        except ValueError as exc:
            raise MapError(f"line {line}: {column}={raw!r} is not a number") from exc
        if not math.isfinite(number):
            raise MapError(f"line {line}: {column}={raw!r} is not finite")
        return repr(number).removesuffix(".0") if number.is_integer() else repr(number)
    if column in BOOL_COLUMNS:
        if raw.lower() not in BOOL_WORDS:
            raise MapError(f"line {line}: {column}={raw!r} is not true/false")
        return BOOL_WORDS[raw.lower()]
    return _sql_text(raw)


def render_parameters(rows: Iterable[dict[str, str]], *, machine_id: str = MACHINE_ID) -> str:
    """The generated block (markers included): one multi-row insert, in map order."""
    tuples: list[str] = []
    for line, row in enumerate(rows, start=1):
        values = [_sql_text(parameter_id(row["key"], machine_id=machine_id)), _sql_text(machine_id)]
        values += [_sql_value(column, row[column], line=line) for column in COLUMNS]
        tuples.append("  (" + ", ".join(values) + ")")
    columns = ", ".join(["id", "machine_id", *(f'"{c}"' if c == "offset" else c for c in COLUMNS)])
    body = f"insert into public.parameters ({columns}) values\n" + ",\n".join(tuples) + ";"
    return f"{BEGIN_MARKER}\n{body}\n{END_MARKER}"


def generate_seed(seed_text: str, rows: Iterable[dict[str, str]]) -> str:
    """``seed_text`` with the block between the markers replaced by freshly rendered rows."""
    begin = seed_text.find(BEGIN_MARKER)
    end = seed_text.find(END_MARKER)
    if begin < 0 or end < begin:
        raise MapError(f"seed.sql must contain {BEGIN_MARKER!r} … {END_MARKER!r}")
    return seed_text[:begin] + render_parameters(rows) + seed_text[end + len(END_MARKER) :]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--map", type=Path, default=DEFAULT_MAP, help=f"map CSV (default {DEFAULT_MAP})")
    parser.add_argument("--seed", type=Path, default=DEFAULT_SEED, help=f"seed file (default {DEFAULT_SEED})")
    parser.add_argument("--check", action="store_true", help="exit 1 if the seed is out of date")
    args = parser.parse_args(argv)
    try:
        current = args.seed.read_text(encoding="utf-8")
        wanted = generate_seed(current, read_map(args.map))
    except (OSError, MapError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if wanted != current:
            print(f"error: {args.seed} is out of date; run scripts/gen_seed.py", file=sys.stderr)
            return EXIT_OUT_OF_DATE
        return 0
    if wanted != current:
        args.seed.write_text(wanted, encoding="utf-8")
        print(f"==> wrote {args.seed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
