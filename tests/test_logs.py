"""Logging: readable text on a terminal, JSON lines in containers, one rotated file per area with LOG_DIR."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from agent.config import LogFormat
from agent.logs import AREAS, configure_logging


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    yield
    configure_logging()


def test_json_lines_for_containers(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(fmt=LogFormat.JSON)
    logger.bind(area="plc").info("PLC {} connected", "127.0.0.1:502")
    record = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert record["record"]["message"] == "PLC 127.0.0.1:502 connected"
    assert record["record"]["extra"]["area"] == "plc"


def test_text_names_the_area(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging()
    logger.info("status: plc=up")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "application" in line and line.endswith("status: plc=up")


def test_log_dir_gets_one_file_per_area(tmp_path: Path) -> None:
    configure_logging(log_dir=tmp_path)
    for area in AREAS:
        logger.bind(area=area).warning("from {}", area)
    logger.complete()
    configure_logging()  # closes the file sinks (flushes the queue)
    for area in AREAS:
        text = (tmp_path / f"{area}.log").read_text()
        assert f"from {area}" in text
        assert all(f"from {other}" not in text for other in AREAS if other != area)
