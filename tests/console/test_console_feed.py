"""The console's live side: frames in, views out; a page's reader gets the trend history once, then what is new."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from console_support import MAP, NOW, SNAPSHOT, live_values

from agent.console import Console
from agent.plc import RegisterMap
from agent.sampling import Frame
from agent.status import AgentSnapshot


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def make(
    clock: Clock, *, register_map: list[RegisterMap] | None = None, snapshot: list[AgentSnapshot] | None = None
) -> Console:
    maps = register_map or [MAP]
    snaps = snapshot or [SNAPSHOT]
    return Console(
        snapshot=lambda: snaps[0],
        health=lambda s: ("healthy", ()),
        register_map=lambda: maps[0],
        active_run=lambda: None,
        machine_name="tool 4",
        clock=clock,
    )


def frame(t: float, **values: object) -> Frame:
    return Frame(ts=NOW + timedelta(seconds=t), tick=int(t), values=live_values(**values), read_s=0.01, lateness_s=0)


def test_a_reader_gets_the_history_once_then_only_new_rows() -> None:
    clock = Clock()
    console = make(clock)
    for t in range(5):
        console.observe(frame(t, chamber_heater__temperature=100.0 + t))
    reader = console.stream()
    first = reader()["trends"]
    assert len(first["rows"]) == 5 and first["keys"][0] == "chamber_heater.temperature"
    assert [row[1] for row in first["rows"]] == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert reader()["trends"]["rows"] == []
    console.observe(frame(5, chamber_heater__temperature=105.0))
    assert [row[1] for row in reader()["trends"]["rows"]] == [105.0]
    assert len(console.stream()()["trends"]["rows"]) == 6  # another page: the whole window
    assert len(console.view()["trends"]["rows"]) == 6


def test_the_last_readings_outlive_a_failed_frame() -> None:
    clock = Clock()
    console = make(clock)
    console.observe(frame(0, chamber_heater__temperature=150.0))
    failed = Frame(ts=NOW + timedelta(seconds=1), tick=1, values=dict.fromkeys(live_values()), read_s=0.5,
                   lateness_s=0, failed_keys=tuple(live_values()))  # fmt: skip
    console.observe(failed)
    clock.now = NOW + timedelta(seconds=10)
    view = console.view()
    chamber = {r["key"]: r for r in next(g for g in view["groups"] if g["component"] == "chamber_heater")["rows"]}
    assert chamber["chamber_heater.temperature"]["text"] == "150 °C"
    assert chamber["chamber_heater.temperature"]["stale"] is True
    assert view["plc"]["last_frame_at"] == NOW.isoformat(timespec="seconds")


def test_a_reloaded_map_that_plots_other_keys_starts_its_trends_anew() -> None:
    clock = Clock()
    maps = [MAP]
    console = make(clock, register_map=maps)
    console.observe(frame(0))
    assert len(console.view()["trends"]["rows"]) == 1
    maps[0] = RegisterMap.build(p for p in MAP if p.key != "pressure_gauge_2.pressure")
    console.observe(frame(1))
    trends = console.view()["trends"]
    assert "pressure_gauge_2.pressure" not in trends["keys"] and len(trends["rows"]) == 1


def test_the_spool_growing_is_seen_across_views() -> None:
    clock = Clock()
    snaps = [SNAPSHOT]
    console = make(clock, snapshot=snaps)
    for s in range(31):
        clock.now = NOW + timedelta(seconds=s)
        snaps[0] = dataclasses.replace(SNAPSHOT, spool_depth=s * 2, database_connected=False)
        codes = [p["code"] for p in console.view()["problems"]]
    assert codes == ["cloud_away", "spool_growing"]
