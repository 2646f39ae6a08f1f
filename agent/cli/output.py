"""How the CLI prints values and errors (shared by every command group)."""

from __future__ import annotations

import math
import sys

__all__ = ["EXIT_FAILED", "EXIT_USAGE", "errors", "jsonable", "show"]

EXIT_FAILED, EXIT_USAGE = 1, 2


def errors(text: str) -> None:
    """One `error:` line per problem on stderr."""
    for line in text.splitlines() or ["unknown error"]:
        print(f"error: {line}", file=sys.stderr)


def show(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value).lower() if isinstance(value, bool) else str(value)


def jsonable(value: object) -> object:
    return None if isinstance(value, float) and not math.isfinite(value) else value
