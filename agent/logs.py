"""Logging set-up (loguru): readable text on a terminal, JSON lines in containers, rotated files per area.

Code logs with a bound `area` (``logger.bind(area="plc")``); records without one belong to "application".
With LOG_DIR set, each area also gets its own rotated file (application.log, plc.log, recipe.log, security.log),
so an equipment engineer can read the PLC story without the rest.

"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from loguru import logger

from agent.config import LogFormat

if TYPE_CHECKING:
    from loguru import Record  # only in loguru's type stubs

__all__ = ["AREAS", "configure_logging"]

AREAS = ("application", "plc", "recipe", "security")
_TEXT = "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> <cyan>{extra[area]: <11}</cyan> {message}"


def configure_logging(*, level: str = "INFO", fmt: LogFormat = LogFormat.TEXT, log_dir: Path | None = None) -> None:
    """Replace loguru's default sink. Safe to call more than once (tests, CLI)."""
    logger.remove()
    logger.configure(extra={"area": "application"})
    if fmt is LogFormat.JSON:
        logger.add(sys.stderr, level=level, serialize=True)
    else:
        logger.add(sys.stderr, level=level, format=_TEXT, colorize=None)
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        for area in AREAS:
            logger.add(
                log_dir / f"{area}.log",
                level=level,
                rotation="10 MB",
                retention=10,
                enqueue=True,  # file writes happen on loguru's thread, not the event loop
                serialize=fmt is LogFormat.JSON,
                filter=_in_area(area),
            )
    # pymodbus logs every failed request with hex dumps; the connection hub reports what matters, once.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


def _in_area(area: str) -> Callable[[Record], bool]:
    """A file sink's filter: the records bound to `area`."""
    return lambda record: record["extra"].get("area") == area
