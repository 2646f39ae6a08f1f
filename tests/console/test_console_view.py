"""The console's view model (pure): what the operator sees, decided from plain inputs, as tables of cases."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from typing import Any

import pytest
from console_support import NOW, PLAN, FakeAlarm, current_run, finished, inputs, live_values

from agent.console import build_view


@pytest.mark.parametrize(
    ("changes", "state"),
    [
        ({}, "idle"),
        ({"run": current_run()}, "running"),
        ({"run": current_run(status="paused")}, "paused"),
        ({"runs": (finished("failed", "step 2/3: PLC connection lost"),)}, "error"),
        ({"runs": (finished("succeeded"),)}, "idle"),
        ({"run": current_run(), "runs": (finished("failed"),)}, "running"),  # a new run clears the error
        ({"last_values": live_values(plc__watchdog_tripped=True)}, "tripped"),
        ({"snapshot": {"safe_state_pending": True}}, "tripped"),
        ({"run": current_run(), "last_values": live_values(plc__watchdog_tripped=True)}, "tripped"),  # wins
    ],
    ids=["idle", "running", "paused", "last-run-failed", "last-run-ok", "new-run-after-failure",
         "watchdog-tripped", "safe-state-pending", "tripped-beats-running"],
)  # fmt: skip
def test_state_at_a_glance(changes: dict[str, Any], state: str) -> None:
    assert build_view(inputs(**changes))["state"] == state


@pytest.mark.parametrize(
    ("changes", "codes"),
    [
        ({}, []),
        ({"snapshot": {"plc_connected": False, "plc_last_error": "connect refused"}}, ["plc_down"]),
        ({"values_at": NOW - timedelta(seconds=30)}, ["stale"]),
        ({"last_values": live_values(plc__watchdog_tripped=True)}, ["watchdog_tripped"]),
        ({"snapshot": {"safety_problems": ("interlocks refused: bad row",)}}, ["safety"]),
        ({"snapshot": {"database_connected": False}}, ["cloud_away"]),
        ({"snapshot": {"database_connected": False, "cloud_auth_error": "JWT expired"}}, ["key_refused"]),
        ({"snapshot": {"spool_depth": 40}, "spool_depth_before": 12}, ["spool_growing"]),
        ({"snapshot": {"spool_depth": 40}, "spool_depth_before": 35}, []),
        ({"snapshot": {"telemetry_dropping": True}}, ["spool_dropping"]),
        ({"snapshot": {"quarantined": 2}}, ["quarantine"]),
        ({"snapshot": {"interlock_blocks": 3}}, ["interlock_blocked"]),
        ({"run": current_run(status="paused", error="tripped by chamber pressure > 500 Pa")}, ["run_held"]),
        ({"runs": (finished("stopped", "tripped by chamber pressure > 500 Pa"),)}, ["interlock_trip"]),
        ({"interlocks_failing": (("permit", "interlock 'pump on': vacuum_pump.running is false"),)}, []),
        ({"run": current_run(), "interlocks_failing": (("trip", "interlock 'p': p is 900 (must be < 500)"),)},
         ["interlock_active"]),
    ],
    ids=["healthy", "plc-down", "no-fresh-frame", "watchdog-tripped", "safety-refusal", "cloud-away",
         "key-refused", "spool-growing", "spool-steady", "spool-dropping", "quarantine", "interlock-blocked",
         "run-held-by-interlock", "last-run-tripped", "unmet-permit-while-idle-is-routine",
         "unmet-interlock-during-a-run"],
)  # fmt: skip
def test_degraded_states_are_banners(changes: dict[str, Any], codes: list[str]) -> None:
    assert [p["code"] for p in build_view(inputs(**changes))["problems"]] == codes


def test_plc_down_shows_the_last_readings_as_stale_and_no_read_time() -> None:
    view = build_view(inputs(snapshot={"plc_connected": False, "plc_last_error": "connect refused"}))
    assert view["plc"] == {
        "up": False,
        "error": "connect refused",
        "read_ms": None,  # the last good read's 4.25 ms is not this PLC's state
        "last_frame_at": (NOW - timedelta(seconds=1)).isoformat(timespec="seconds"),
        "frame_age_s": 1.0,
        "stale": True,
    }
    chamber = next(g for g in view["groups"] if g["component"] == "chamber_heater")
    temperature = next(r for r in chamber["rows"] if r["key"] == "chamber_heater.temperature")
    assert (temperature["text"], temperature["stale"], chamber["stale"]) == ("199.5 °C", True, True)
    assert all(v["stale"] for v in view["valves"])
    assert "not live" in view["problems"][0]["text"]


def test_plc_up_shows_its_read_time() -> None:
    assert build_view(inputs())["plc"]["read_ms"] == 4.2  # rounded to 0.1 ms


def test_a_value_the_last_frame_could_not_read_is_stale_on_its_own() -> None:
    from agent.sampling import Frame

    frame = Frame(ts=NOW, tick=9, values=live_values(mfc_1__flow=None), read_s=0.01, lateness_s=0.0)
    view = build_view(inputs(frame=frame))
    mfc = next(g for g in view["groups"] if g["component"] == "mfc_1")
    stale = {r["key"]: r["stale"] for r in mfc["rows"]}
    assert stale == {"mfc_1.flow": True}  # its setpoint is shown beside it, not as a row


def test_values_grouped_by_component_with_units_and_setpoint_beside_its_process_value() -> None:
    view = build_view(inputs(last_values=live_values(mfc_1__flow=19.96, mfc_1__flow_sp=20.0)))
    groups = {g["component"]: g for g in view["groups"]}
    assert [g["component"] for g in view["groups"]][:4] == ["chamber_heater", "pressure_gauge_1",
                                                           "pressure_gauge_2", "mfc_1"]  # fmt: skip
    chamber = {r["key"]: r for r in groups["chamber_heater"]["rows"]}
    assert "chamber_heater.temperature_sp" not in chamber
    assert (chamber["chamber_heater.temperature"]["text"], chamber["chamber_heater.temperature"]["sp"]) == (
        "199.5 °C",
        "200 °C",
    )
    assert chamber["chamber_heater.temperature"]["label"] == "temperature"
    assert chamber["chamber_heater.power_on"]["text"] == "off"
    assert {r["key"]: r["text"] for r in groups["mfc_1"]["rows"]} == {"mfc_1.flow": "19.96 sccm"}
    assert groups["mfc_1"]["title"] == "MFC 1"
    assert not any(g["component"].startswith("valve_") for g in view["groups"])  # valves have their own strip


def test_a_fault_flag_reads_fault_and_is_marked() -> None:
    view = build_view(inputs(last_values=live_values(n2_generator__fault=True)))
    n2 = {r["key"]: r for r in next(g for g in view["groups"] if g["component"] == "n2_generator")["rows"]}
    assert (n2["n2_generator.fault"]["text"], n2["n2_generator.fault"]["fault"]) == ("FAULT", True)
    assert (n2["n2_generator.ready"]["text"], n2["n2_generator.ready"]["fault"]) == ("off", False)


def test_valves_show_open_closed_and_their_cycle_count() -> None:
    view = build_view(inputs(last_values=live_values(valve_2__state=True, valve_2__cycle_count=1234)))
    valves = {v["key"]: v for v in view["valves"]}
    assert set(valves) == {f"valve_{n}.state" for n in range(1, 7)} | {"exhaust_valve.state"}
    assert (valves["valve_2.state"]["text"], valves["valve_2.state"]["open"]) == ("open", True)
    assert valves["valve_2.state"]["cycles"] == 1234
    assert (valves["valve_1.state"]["text"], valves["valve_1.state"]["name"]) == ("closed", "Valve 1")


def test_the_run_in_words_with_progress_elapsed_and_remaining() -> None:
    run = build_view(inputs(run=current_run()))["run"]
    assert run["recipe"] == "Al2O3 TMA/H2O"
    assert run["step"] == "ALD cycle 37/100 · H2O pulse 60 ms"
    assert (run["step_number"], run["completed"], run["total"]) == (148, 147, 401)
    assert run["percent"] == round(100 * 147 / 401, 1)
    assert (run["elapsed_s"], run["elapsed"]) == (600.0, "10 min")
    remaining_ms = PLAN.total_ms - sum(s.planned_ms for s in PLAN.steps[:147])  # the current step just began
    assert run["remaining_s"] == round(remaining_ms / 1000, 1)


@pytest.mark.parametrize(
    ("index", "words"),
    [
        (0, "Chamber to 200 °C → 200 °C, waiting for ±2"),
        (1, "ALD cycle 1/100 · TMA pulse 20 ms"),
        (2, "ALD cycle 1/100 · N2 purge 3 s at 20 sccm"),
        (400, "ALD cycle 100/100 · N2 purge 3 s"),
    ],
    ids=["setpoint-with-wait", "valve-pulse", "purge-with-flow", "last-purge"],
)
def test_each_step_type_in_words(index: int, words: str) -> None:
    run = build_view(inputs(run=current_run(step_index=index)))["run"]
    assert run["step"] == words


def test_alarms_rendered_most_urgent_first_with_their_state_in_words() -> None:
    alarms = (
        FakeAlarm("a-cleared", state="cleared_unacked", severity="critical"),
        FakeAlarm("a-acked", state="active_acked", acked_by="operator@fab", acked_at=NOW),
        FakeAlarm("a-low", severity="low", key="mfc_1.flow", value=None, limit=None),
        FakeAlarm("a-critical", severity="critical", message="Chamber pressure high-high"),
    )
    rows = build_view(inputs(alarms=alarms))["alarms"]
    assert [r["id"] for r in rows] == ["a-critical", "a-low", "a-acked", "a-cleared"]
    first = rows[0]
    assert first | {"raised_at": None} == {
        "id": "a-critical", "key": "pressure_gauge_1.pressure", "kind": "high", "severity": "critical",
        "state": "active_unacked", "state_text": "ACTIVE · unacknowledged", "active": True, "acked": False,
        "message": "Chamber pressure high-high", "value": "1,250", "limit": "1,000", "raised_at": None,
        "acked_at": None, "acked_by": None, "cleared_at": None,
    }  # fmt: skip
    assert (rows[1]["value"], rows[1]["limit"]) == (None, None)
    assert (rows[2]["state_text"], rows[2]["acked_by"]) == ("active · acknowledged", "operator@fab")
    assert (rows[3]["active"], rows[3]["state_text"]) == (False, "cleared · unacknowledged")


def test_the_view_names_the_machine_not_its_uuid() -> None:
    assert build_view(inputs())["machine"] == {
        "name": "ALD reference reactor",
        "id": "00000000-0000-4000-8000-000000000001",
    }
    assert build_view(inputs(machine_name=None))["machine"]["name"].startswith("machine 00000000-")


def test_trends_plot_chamber_temperature_pressures_and_flows() -> None:
    keys = ("chamber_heater.temperature", "chamber_heater.temperature_sp", "pressure_gauge_1.pressure",
            "pressure_gauge_2.pressure", "mfc_1.flow", "mfc_1.flow_sp")  # fmt: skip
    rows = ((1.0, (199.0, 200.0, 50.0, 49.0, 19.9, 20.0)), (2.0, (199.5, 200.0, None, 49.0, 20.0, 20.0)))
    trends = build_view(inputs(trend_keys=keys, trend_rows=rows))["trends"]
    assert [(c["title"], c["unit"], c["series"]) for c in trends["charts"]] == [
        ("Chamber temperature", "°C", [0, 1]),
        ("Pressure", "Pa", [2, 3]),
        ("Flow", "sccm", [4, 5]),
    ]
    assert trends["rows"] == [[1.0, 199.0, 200.0, 50.0, 49.0, 19.9, 20.0], [2.0, 199.5, 200.0, None, 49.0, 20.0, 20.0]]


def test_last_runs_and_links() -> None:
    view = build_view(inputs(runs=(finished("succeeded"),)))
    assert view["runs"] == [
        {"id": "run-0", "recipe": "Al2O3 TMA/H2O", "status": "succeeded", "error": None,
         "started_at": "2026-12-01T11:00:00+00:00", "finished_at": "2026-12-01T11:30:00+00:00",
         "duration": "30 min", "completed": 401, "total": 401},
    ]  # fmt: skip
    assert view["links"] == {"health": "/health", "metrics": "/metrics"}


def test_the_view_is_json_and_leaves_its_inputs_alone() -> None:
    given = inputs(run=current_run(), runs=(finished("failed"),), alarms=(FakeAlarm("a"),))
    values = copy.deepcopy(dict(given.last_values))
    json.dumps(build_view(given))
    assert dict(given.last_values) == values


def test_unmet_interlocks_are_listed_whatever_the_state() -> None:
    failing = (("permit", "interlock 'pump on': vacuum_pump.running is false (must be = true)"),)
    safety = build_view(inputs(interlocks_failing=failing, snapshot={"interlocks": 4}))["safety"]
    assert (safety["interlocks"], safety["failing"]) == (4, [{"kind": "permit", "text": failing[0][1]}])
