"""The register map: the reference reactor's default map, and bad maps rejected with the key named."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from agent.errors import MapError, UnknownParameter
from agent.plc import DataType, Parameter, RegisterKind, RegisterMap, load_default_map, load_map_csv, parse_map_csv
from agent.plc.registers import MAP_COLUMNS

HEADER = ",".join(MAP_COLUMNS)


def row(
    key: str = "a.b",
    *,
    data_type: str = "float32",
    register: str = "holding",
    address: str = "100",
    write_address: str = "",
    writable: str = "false",
    **extra: str,
) -> str:
    values = {
        "key": key,
        "component": key.split(".")[0],
        "name": key,
        "unit": "",
        "data_type": data_type,
        "register": register,
        "address": address,
        "write_address": write_address,
        "scale": "1",
        "offset": "0",
        "min_value": "",
        "max_value": "",
        "writable": writable,
        "logged": "true",
        "deadband": "0",
    } | extra
    return ",".join(values[c] for c in MAP_COLUMNS)


def csv_of(*rows: str) -> str:
    return "\n".join((HEADER, *rows))


def test_default_map_covers_the_reference_reactor() -> None:
    m = load_default_map()
    assert len(m) >= 100
    components = Counter(p.component for p in m)
    assert sum(1 for c in components if c.startswith("valve_")) == 6
    assert sum(1 for c in components if c.endswith("_heater")) == 9
    for heater in (c for c in components if c.endswith("_heater")):
        for suffix in ("temperature_sp", "temperature", "kp", "ki", "kd", "power", "power_on"):
            assert f"{heater}.{suffix}" in m
    for key in (
        "mfc_1.flow_sp",
        "mfc_1.flow",
        "pressure_gauge_1.pressure",
        "pressure_gauge_2.pressure",
        "vacuum_pump.power_on",
        "exhaust_valve.state",
        "n2_generator.ready",
        "plc.watchdog",
    ):
        assert key in m


def test_default_map_keeps_the_reference_plc_addresses() -> None:
    m = load_default_map()
    assert [m[f"valve_{n}.state"].address for n in range(1, 7)] == [15, 16, 17, 18, 19, 20]
    assert (m["vacuum_pump.power_on"].address, m["exhaust_valve.state"].address) == (10, 11)
    assert m["mfc_1.flow_sp"].register is RegisterKind.HOLDING and m["mfc_1.flow_sp"].address == 2086
    assert m["pressure_gauge_1.pressure"].register is RegisterKind.INPUT


def test_default_map_uses_every_data_type_and_table() -> None:
    m = load_default_map()
    assert {p.data_type for p in m} == set(DataType)
    assert {p.register for p in m} == set(RegisterKind)


def test_lookup_of_unknown_key_is_a_clear_error() -> None:
    with pytest.raises(UnknownParameter, match="unknown parameter 'nope'"):
        load_default_map()["nope"]


@pytest.mark.parametrize(
    ("rows", "key", "fragment"),
    [
        ((row("a.x", address="100"), row("a.y", address="101")), "a.y", "overlaps a.x"),
        ((row("a.x", data_type="int16", address="100"), row("a.y", data_type="int16", address="101")), None, None),
        ((row("a.x", write_address="100"),), "a.x", "write_address set on a read-only parameter"),
        ((row("a.x", writable="true"),), "a.x", "writable parameter has no write_address"),
        ((row("a.x", data_type="float64"),), "a.x", "unknown data type 'float64'"),
        ((row("a.x", register="memory"),), "a.x", "unknown register kind 'memory'"),
        ((row("a.x", register="coil", data_type="float32"),), "a.x", "data type must be bool"),
        ((row("a.x", address="65535"),), "a.x", "address 65535 outside"),
        ((row("a.x", address="-1"),), "a.x", "address -1 outside"),
        ((row("a.x", address="ten"),), "a.x", "address is not an integer"),
        ((row("a.x", scale="0"),), "a.x", "scale must be a finite non-zero number"),
        ((row("a.x", min_value="10", max_value="1"),), "a.x", "min_value 10.0 > max_value 1.0"),
        ((row("a.x", deadband="-1"),), "a.x", "deadband must be >= 0"),
        ((row("a.x", logged="maybe"),), "a.x", "logged must be true or false"),
        ((row("a.x"), row("a.x", address="200")), "a.x", "duplicate"),
        (
            (row("a.x", address="100", write_address="300", writable="true"), row("a.y", address="300")),
            "a.x",
            "write_address 300 overlaps the readings of a.y",
        ),
        (
            (
                row("a.x", address="100", write_address="300", writable="true"),
                row("a.y", address="102", write_address="301", writable="true"),
            ),
            "a.y",
            "write_address 301 (holding) overlaps a.x",
        ),
        (
            (
                row("a.x", register="coil", data_type="bool", address="1"),
                row("a.y", register="discrete_input", data_type="bool", address="1"),
            ),
            None,
            None,
        ),
    ],
    ids=[
        "overlapping-float32",
        "adjacent-int16-ok",
        "write-address-on-read-only",
        "writable-without-address",
        "unknown-type",
        "unknown-register",
        "coil-not-bool",
        "float32-past-65535",
        "negative-address",
        "address-not-integer",
        "zero-scale",
        "min-above-max",
        "negative-deadband",
        "bad-flag",
        "duplicate-key",
        "write-target-overlaps-reading",
        "write-targets-overlap",
        "same-address-other-table-ok",
    ],
)
def test_bad_maps_are_rejected_with_the_key(rows: tuple[str, ...], key: str | None, fragment: str | None) -> None:
    if fragment is None:
        assert len(parse_map_csv(csv_of(*rows))) == len(rows)
        return
    with pytest.raises(MapError) as caught:
        parse_map_csv(csv_of(*rows))
    assert caught.value.key == key
    assert str(caught.value).startswith(f"{key}: ")
    assert fragment in str(caught.value)


def test_missing_columns_are_listed() -> None:
    with pytest.raises(MapError, match=r"missing columns .*write_address"):
        parse_map_csv("key,component,data_type,register,address\na.x,a,float32,holding,1")


def test_empty_map_is_rejected() -> None:
    with pytest.raises(MapError, match="no parameters"):
        parse_map_csv(HEADER)


def test_missing_file_is_a_map_error(tmp_path: Path) -> None:
    with pytest.raises(MapError, match="cannot read map"):
        load_map_csv(tmp_path / "absent.csv")


def test_comment_lines_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_text("# a comment\n" + csv_of(row("a.x")))
    assert load_map_csv(path).keys() == ["a.x"]


def test_width_follows_type_and_table() -> None:
    float_reg = Parameter("f", "c", DataType.FLOAT32, RegisterKind.INPUT, 10)
    bool_reg = Parameter("b", "c", DataType.BOOL, RegisterKind.HOLDING, 10)
    coil = Parameter("k", "c", DataType.BOOL, RegisterKind.COIL, 10)
    assert (float_reg.width, bool_reg.width, coil.width) == (2, 1, 1)


def test_map_is_immutable_and_ordered() -> None:
    m = RegisterMap.build(
        [
            Parameter("b", "c", DataType.INT16, RegisterKind.INPUT, 2),
            Parameter("a", "c", DataType.INT16, RegisterKind.INPUT, 1),
        ]
    )
    assert m.keys() == ["b", "a"]
    with pytest.raises(AttributeError):
        m.parameters[0].address = 5  # type: ignore[misc]
