"""The spool's JSON text: orjson's output where it can, and every payload the standard library took still works."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from agent.spool import jsontext


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"machine_id": "m", "ts": "2026-12-01T18:00:00.004+00:00", "values": {"a": 1.5}}, id="history"),
        pytest.param([{"parameter_id": "p", "value": True}, {"parameter_id": "q", "value": None}], id="latest-rows"),
        pytest.param({"values": {"pressure": 1e-9, "count": -(2**63), "big": 2**64 - 1}}, id="64-bit-borders"),
        pytest.param({"k": "Ünïcode ✓"}, id="unicode"),
    ],
)
def test_round_trips_and_is_standard_json(payload: Any) -> None:
    text = jsontext.dumps(payload)
    assert jsontext.loads(text) == payload
    assert json.loads(text) == payload  # any JSON reader (the quarantine CLI) reads it


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"huge": 2**80}, id="integer-beyond-64-bits"),
        pytest.param({1: "x"}, id="non-string-key"),
    ],
)
def test_what_orjson_refuses_is_written_by_the_standard_library(payload: Any) -> None:
    assert jsontext.dumps(payload) == json.dumps(payload, separators=(",", ":"))


def test_a_nan_token_written_before_orjson_is_still_read() -> None:
    legacy = json.dumps({"v": math.nan})
    assert math.isnan(jsontext.loads(legacy)["v"])


def test_text_that_is_not_json_is_refused() -> None:
    with pytest.raises(ValueError):
        jsontext.loads("{not json")
