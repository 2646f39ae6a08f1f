"""The spool's JSON text: orjson where it can, the standard library where orjson refuses.

Why orjson: a 500-parameter history record is ~11 kB of JSON, encoded at every append and decoded at every
peek, on the spool's thread but holding the GIL that the PLC reads on the event loop need. The standard
library takes ~1 ms to encode one (floats dominate), orjson ~20 µs. The fallbacks keep every record
writable and readable: orjson refuses integers beyond 64 bits and non-string keys (the standard library
accepts both), and records written before orjson may hold `NaN` tokens that only the standard library parses.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["dumps", "loads"]


def dumps(payload: Any) -> str:
    """Compact JSON text of `payload`."""
    try:
        return orjson.dumps(payload).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError: a big integer, a non-str key, an unknown type
        return json.dumps(payload, separators=(",", ":"))


def loads(text: str) -> Any:
    """The value of JSON `text` (raises `ValueError` if it is not JSON)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # e.g. a NaN token written by the standard library
        return json.loads(text)
