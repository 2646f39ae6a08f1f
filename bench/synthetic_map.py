"""A synthetic register map of N parameters over the four tables, with gaps, for benchmarks.

Deterministic for a seed. The mix mirrors the reference reactor (mostly float32 registers, a quarter coils
and discrete inputs), and gaps of 0–6 addresses between parameters, so the planner has real merging to do.
"""

from __future__ import annotations

import csv
import io
import random

from agent.plc import RegisterMap, parse_map_csv
from agent.plc.registers import MAP_COLUMNS

TABLE_SHARE = {"holding": 0.35, "input": 0.35, "coil": 0.18, "discrete_input": 0.12}
WORD_TYPES = ["float32", "float32", "float32", "int32", "uint32", "int16", "uint16"]


def synthetic_map_csv(n: int = 500, *, seed: int = 1) -> str:
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(MAP_COLUMNS), lineterminator="\n")
    writer.writeheader()
    made = 0
    for table, share in TABLE_SHARE.items():
        count = round(n * share) if table != "discrete_input" else n - made
        address = 1000 if table in ("holding", "input") else 0
        for i in range(count):
            data_type = "bool" if table in ("coil", "discrete_input") else rng.choice(WORD_TYPES)
            width = 2 if data_type in ("float32", "int32", "uint32") else 1
            writable = table in ("holding", "coil") and rng.random() < 0.5
            writer.writerow(
                {
                    "key": f"{table}.p{i}",
                    "component": table,
                    "name": f"{table} {i}",
                    "unit": "",
                    "data_type": data_type,
                    "register": table,
                    "address": address,
                    "write_address": address if writable else "",
                    "scale": 1,
                    "offset": 0,
                    "min_value": "",
                    "max_value": "",
                    "writable": str(writable).lower(),
                    "logged": "true",
                    "deadband": 0,
                }
            )
            address += width + rng.randint(0, 6)
        made += count
    return out.getvalue()


def synthetic_map(n: int = 500, *, seed: int = 1) -> RegisterMap:
    return parse_map_csv(synthetic_map_csv(n, seed=seed))
