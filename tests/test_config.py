"""Settings: every docs/CONTRACT.md §7 variable, validated at start-up with one clear line per problem."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import jwt
import pytest

from agent.config import LogFormat, PlcType, Settings, load_settings, unverified_claims
from agent.errors import ConfigError
from agent.plc import WordOrder
from supalocal.auth import make_machine_key
from tests.support.design import DESIGN_VARIABLES


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in {*DESIGN_VARIABLES, "PLC_MAP_FILE", "SUPABASE_API_KEY"}:
        monkeypatch.delenv(name, raising=False)


def test_every_design_variable_is_a_setting() -> None:
    assert set(Settings.model_fields) >= set(DESIGN_VARIABLES)


def test_defaults_match_design() -> None:
    s = load_settings()
    assert (s.PLC_PORT, s.PLC_UNIT_ID, s.HTTP_PORT) == (502, 1, 8000)
    assert s.PLC_WORD_ORDER is WordOrder.LITTLE
    assert s.PARAMETER_LOGGING_INTERVAL == 1.0
    assert s.STATUS_LOG_INTERVAL == 300.0
    assert s.LOG_FORMAT is LogFormat.TEXT
    assert s.PLC_BULK_READ_SIZE == 125
    assert s.PLC_CONNECTIONS == 1  # one connection unless the site knows its PLC allows more


def test_environment_is_read_and_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    machine = uuid.uuid4()
    monkeypatch.setenv("MACHINE_ID", str(machine))
    monkeypatch.setenv("PLC_TYPE", "real")
    monkeypatch.setenv("PLC_WORD_ORDER", "big")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    s = load_settings()
    assert machine == s.MACHINE_ID
    assert s.PLC_TYPE is PlcType.REAL
    assert s.PLC_WORD_ORDER is WordOrder.BIG
    assert s.LOG_LEVEL == "DEBUG"


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("PLC_PORT", "70000", "PLC_PORT: Input should be less than or equal to 65535"),
        ("PLC_PORT", "0", "PLC_PORT: Input should be greater than or equal to 1"),
        ("HTTP_PORT", "http", "HTTP_PORT: Input should be a valid integer"),
        ("PLC_TYPE", "fake", "PLC_TYPE: Input should be 'real' or 'simulation'"),
        ("MACHINE_ID", "machine-1", "MACHINE_ID: Input should be a valid UUID"),
        ("PARAMETER_LOGGING_INTERVAL", "0", "PARAMETER_LOGGING_INTERVAL: Input should be greater than 0"),
        ("PARAMETER_LOGGING_INTERVAL", "-1", "PARAMETER_LOGGING_INTERVAL: Input should be greater than 0"),
        ("PLC_BULK_READ_SIZE", "126", "PLC_BULK_READ_SIZE: Input should be less than or equal to 125"),
        ("PLC_BULK_READ_SIZE", "1", "PLC_BULK_READ_SIZE: Input should be greater than or equal to 2"),
        ("PLC_CONNECTIONS", "0", "PLC_CONNECTIONS: Input should be greater than or equal to 1"),
        ("PLC_CONNECTIONS", "9", "PLC_CONNECTIONS: Input should be less than or equal to 8"),
        ("PLC_WORD_ORDER", "middle", "PLC_WORD_ORDER: Input should be 'big' or 'little'"),
        ("AGENT_COLOR", "red", "AGENT_COLOR: Input should be 'blue' or 'green'"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT: Input should be 'text' or 'json'"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL: must be one of"),
        ("PLC_MAP_FILE", "/nonexistent/map.csv", "PLC_MAP_FILE: no such file"),
    ],
    ids=lambda v: str(v)[:30],
)
def test_invalid_value_is_named(monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert fragment in str(caught.value)


def test_every_problem_gets_its_own_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLC_PORT", "70000")
    monkeypatch.setenv("MACHINE_ID", "nope")
    monkeypatch.setenv("PLC_TYPE", "fake")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    lines = str(caught.value).splitlines()
    assert [line.split(":")[0] for line in lines] == ["MACHINE_ID", "PLC_TYPE", "PLC_PORT"]


def test_secrets_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    token = "hunter2-hunter2-hunter2-hunter2-"
    monkeypatch.setenv("ADMIN_TOKEN", token)
    monkeypatch.setenv("SUPABASE_KEY", "service-role-secret")
    s = load_settings()
    assert token not in repr(s) and "service-role-secret" not in repr(s)
    assert s.ADMIN_TOKEN is not None and s.ADMIN_TOKEN.get_secret_value() == token


@pytest.mark.parametrize(
    ("token", "accepted"),
    [("x" * 31, False), ("x" * 32, True), ("hunter2", False)],
    ids=["31-chars", "32-chars", "short"],
)
def test_a_short_admin_token_is_refused_without_echoing_it(token: str, accepted: bool) -> None:
    if accepted:
        assert load_settings(ADMIN_TOKEN=token).ADMIN_TOKEN is not None
        return
    with pytest.raises(ConfigError) as caught:
        load_settings(ADMIN_TOKEN=token)
    assert str(caught.value) == (
        f"ADMIN_TOKEN: must be at least 32 characters (e.g. `openssl rand -hex 32`), got {len(token)}"
    )
    assert token not in str(caught.value)


def test_run_requires_the_cloud_settings() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings().require_cloud()
    assert str(caught.value).splitlines() == [
        "SUPABASE_URL: required to run the agent",
        "SUPABASE_KEY: required to run the agent",
        "MACHINE_ID: required to run the agent",
    ]


def test_a_machine_scoped_key_for_another_machine_is_refused_at_start() -> None:
    machine, other = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"
    cloud = {"SUPABASE_URL": "http://127.0.0.1:1", "MACHINE_ID": machine}
    key = make_machine_key(other, secret="a-project-jwt-secret-of-32-bytes-or-more")
    with pytest.raises(ConfigError) as caught:
        load_settings(SUPABASE_KEY=key, **cloud).require_cloud()
    assert str(caught.value) == f"SUPABASE_KEY: the key acts for machine {other}, not MACHINE_ID {machine}"
    assert key not in str(caught.value)
    load_settings(SUPABASE_KEY=make_machine_key(machine, secret="s" * 32), **cloud).require_cloud()
    load_settings(SUPABASE_KEY="sb_secret_opaque", **cloud).require_cloud()  # not a JWT: nothing to check


def test_map_file_must_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "map.csv"
    path.write_text("key\n")
    monkeypatch.setenv("PLC_MAP_FILE", str(path))
    assert path == load_settings().PLC_MAP_FILE


def _segment(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("token", "claims"),
    [
        pytest.param(
            jwt.encode({"role": "ald_agent", "machine_id": "m-1", "exp": 2_000_000_000}, "s" * 32, algorithm="HS256"),
            {"role": "ald_agent", "machine_id": "m-1", "exp": 2_000_000_000},
            id="hs256-jwt",
        ),
        pytest.param(f"{_segment({'alg': 'none'})}.{_segment({'role': 'x'})}.", {"role": "x"}, id="unsigned"),
        pytest.param("sb_secret_abc", None, id="opaque-key"),
        pytest.param("a.b", None, id="two-segments"),
        pytest.param("a.b.c.d", None, id="four-segments"),
        pytest.param("!!.??.sig", None, id="not-base64"),
        pytest.param(f"{_segment({'alg': 'HS256'})}.{_segment([1, 2])}.sig", None, id="payload-not-an-object"),
        pytest.param(f"{_segment('text')}.{_segment({'role': 'x'})}.sig", None, id="header-not-an-object"),
        pytest.param(f"{_segment({'alg': 'HS256'})}.bm90IGpzb24.sig", None, id="payload-not-json"),
    ],
)
def test_unverified_claims_read_a_jwt_payload_without_pyjwt(token: str, claims: dict[str, object] | None) -> None:
    assert unverified_claims(token) == claims
