"""The operator console in a real browser (headless Chromium) against the real agent, during a recipe.

Everything is asserted from the DOM the operator sees: the machine's name (not its UUID), the recipe's name,
the progress moving, the current step in words, the PLC turning "down" when the simulator is unplugged (with
no stale read time left on screen), and the page saying it is not live while the agent is gone, then
reconnecting by itself when the agent is back. Screenshots at a 1280×800 screen and a tablet width are kept
under test-artifacts/console/ (gitignored; each path is printed).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import asyncpg
import pytest

from agent.app import Agent
from agent.plc.sim import Simulator
from supalocal.stack import BackgroundStack
from supalocal.testing import SEED_MACHINE_ID
from tests.console.console_support import FakeAlarm
from tests.e2e.conftest import StartAgent, stop
from tests.e2e.recipes import insert_command, insert_recipe, loop, purge, valve
from tests.e2e.test_commands import _cli
from tests.support.browser import DESKTOP, TABLET, Browser
from tests.support.poll import eventually

RECIPE = "Al2O3 console check"
MACHINE_NAME = "ALD reference reactor"  # supabase/seed.sql
TEMP = "chamber_heater.temperature"
NOW = datetime.now(UTC)


async def active_agent(start_agent: StartAgent) -> Agent:
    agent = await start_agent(COMMAND_POLL_INTERVAL=1)
    await eventually(lambda: agent.parts is not None and agent.parts.lease.valid(), within=15)
    intake = agent.parts.intake
    await eventually(lambda: intake.watch is not None and intake.watch.ready.is_set(), within=15)
    return agent


async def shows(page: Browser, css: str, expected: str, *, within: float = 15) -> None:
    async def ok() -> bool:
        return (await page.text(css) or "").strip() == expected

    await eventually(ok, within=within, every=0.2)


async def percent(page: Browser) -> float:
    return float(await page.attr("#progress", "aria-valuenow") or 0)


@pytest.mark.timeout(120)
async def test_the_console_follows_a_recipe_and_the_plc_going_down(
    start_agent: StartAgent, db: asyncpg.Connection, simulator: Simulator, browser: Browser
) -> None:
    agent = await active_agent(start_agent)
    await browser.open(f"http://127.0.0.1:{agent.http_port}/")
    await shows(browser, "#machine-name", MACHINE_NAME)
    assert SEED_MACHINE_ID not in (await browser.text("#machine-name"))
    await eventually(lambda: _is(browser, "#plc-state", "data-up", "true"), within=10)
    await shows(browser, "#state", "idle")

    steps = [loop(40, valve(1, 60, "TMA pulse"), purge(150, 20), valve(2, 60, "H2O pulse"), purge(150, 20),
                  name="ALD cycle")]  # fmt: skip
    recipe_id = await insert_recipe(db, RECIPE, steps)
    await insert_command(db, SEED_MACHINE_ID, "start_recipe", {"recipe_id": recipe_id})

    await shows(browser, "#recipe-name", RECIPE)
    await shows(browser, "#state", "running")
    await eventually(lambda: _above(browser, 0.0), within=15, every=0.2)
    first = await percent(browser)
    await eventually(lambda: _above(browser, first), within=15, every=0.2)  # the progress moves, live
    step = await browser.text("#current-step")
    assert "/160 · ALD cycle " in step and "/40 · " in step, step  # "37/160 · ALD cycle 10/40 · H2O pulse 60 ms"
    assert any(word in step for word in ("TMA pulse 60 ms", "H2O pulse 60 ms", "N2 purge")), step
    assert "{" not in step  # words, not a Python dict
    assert await browser.script("return document.querySelectorAll('#timeline tr').length") > 0
    assert await browser.script("return document.querySelectorAll('#charts .uplot').length") == 3
    assert await browser.script("return document.querySelectorAll('#groups .group').length") >= 5
    await browser.screenshot("running-1280x800")
    await browser.resize(*TABLET)
    await browser.screenshot("running-820x1180")
    await browser.resize(*DESKTOP)

    await simulator.unplug()
    await eventually(lambda: _is(browser, "#plc-state", "data-up", "false"), within=15, every=0.2)
    plc = await browser.text("#plc-state")
    assert plc == "PLC DOWN" and " ms" not in plc  # no stale "plc read 0.2 ms" while it is down
    codes = await browser.script("return [...document.querySelectorAll('#problems li')].map(e => e.dataset.code)")
    assert "plc_down" in codes
    await eventually(lambda: _has_class(browser, "#groups .group", "stale"), within=5, every=0.2)
    await browser.screenshot("plc-down-1280x800")

    # the run the PLC's loss ended is the last run, with its outcome, and the recipe card says so
    await eventually(lambda: agent.parts.runs.active is None, within=45)  # it fails into its safe state
    await eventually(lambda: _is(browser, "#runs tr", "data-status", "failed"), within=10, every=0.2)
    assert RECIPE in (await browser.text("#runs tr"))
    await shows(browser, "#last-run-recipe", RECIPE)
    await browser.script("window.scrollTo(0, document.body.scrollHeight)")
    await browser.screenshot("plc-down-bottom-1280x800")
    await simulator.replug()


@pytest.mark.timeout(120)
async def test_the_page_says_it_is_not_live_while_the_agent_is_gone_and_reconnects_by_itself(
    start_agent: StartAgent, browser: Browser, unused_tcp_port: int
) -> None:
    agent = await start_agent(HTTP_PORT=unused_tcp_port)
    await browser.open(f"http://127.0.0.1:{unused_tcp_port}/")
    await shows(browser, "#machine-name", MACHINE_NAME)
    assert await browser.attr("#link-lost", "hidden") is not None
    await stop(agent)
    await eventually(lambda: _hidden(browser, "#link-lost", False), within=15, every=0.2)
    assert await _has_class(browser, "body", "disconnected")
    await browser.screenshot("agent-gone-1280x800")

    again = await start_agent(HTTP_PORT=unused_tcp_port)  # the same agent restarted (same port, same spool)
    assert again is not agent
    await eventually(lambda: _hidden(browser, "#link-lost", True), within=20, every=0.2)  # no reload
    assert not await _has_class(browser, "body", "disconnected")
    await shows(browser, "#machine-name", MACHINE_NAME)


async def _hidden(page: Browser, css: str, hidden: bool) -> bool:
    return (await page.attr(css, "hidden") is not None) is hidden


async def _is(page: Browser, css: str, name: str, value: str) -> bool:
    return await page.attr(css, name) == value


async def _above(page: Browser, value: float) -> bool:
    return await percent(page) > value


async def _has_class(page: Browser, css: str, name: str) -> bool:
    return bool(await page.script("const e = document.querySelector(arguments[0]); return !!e && "
                                  "e.classList.contains(arguments[1]);", css, name))  # fmt: skip


@pytest.mark.timeout(60)
async def test_alarms_from_the_source_show_with_their_state_and_follow_it(
    start_agent: StartAgent, browser: Browser
) -> None:
    """The page's side of alarms, with a fake source in place of agent.alarms: rows, states, the count."""
    agent = await start_agent()
    alarms: list[FakeAlarm] = []
    agent.parts.console.alarms = lambda: tuple(alarms)
    await browser.open(f"http://127.0.0.1:{agent.http_port}/")
    await shows(browser, "#machine-name", MACHINE_NAME)
    assert await browser.attr("#no-alarms", "hidden") is None

    alarms.append(FakeAlarm("a-1", message="Chamber pressure high"))
    await eventually(lambda: _is(browser, "#alarms tr[data-id='a-1']", "data-state", "active_unacked"), within=10)
    assert (await browser.text("#alarm-count")) == "1"
    row = await browser.text("#alarms tr[data-id='a-1']")
    assert "ACTIVEunacknowledged" in row and "Chamber pressure high" in row and "1,250 / limit 1,000" in row
    assert (await browser.text("#alarm-badge")) == "1 ALARM · 1 unacked"  # in the header, on every screen
    await browser.screenshot("alarm-fake-1280x800")

    alarms[0] = dataclasses.replace(alarms[0], state="active_acked", acked_by="operator@fab", acked_at=NOW)
    await eventually(lambda: _is(browser, "#alarms tr[data-id='a-1']", "data-state", "active_acked"), within=10)
    assert "by operator@fab" in (await browser.text("#alarms tr[data-id='a-1']"))
    alarms.clear()
    await eventually(lambda: _hidden(browser, "#no-alarms", False), within=10)
    assert (await browser.text("#alarm-count")) == ""
    assert await browser.attr("#alarm-badge", "hidden") is not None


@pytest.mark.timeout(90)
async def test_a_value_past_its_limit_raises_an_alarm_and_a_cli_ack_changes_the_page(
    start_agent: StartAgent, clean_db: BackgroundStack, simulator: Simulator, browser: Browser
) -> None:
    """The seed's limits for the reference reactor apply (chamber high at 350 °C, 2 s on-delay): the simulator
    pins the chamber temperature above it, the page shows an active unacknowledged alarm, `python -m agent
    command ack-alarm ID` (the dashboard's command path) acknowledges it and the row says so; releasing the
    value clears it and, acknowledged, it leaves the page."""
    agent = await active_agent(start_agent)
    await browser.open(f"http://127.0.0.1:{agent.http_port}/")
    await shows(browser, "#machine-name", MACHINE_NAME)
    assert await browser.script("return document.querySelectorAll('#alarms tr').length") == 0

    simulator.force(TEMP, 360.0)
    row = f"#alarms tr[data-key='{TEMP}']"
    await eventually(lambda: _is(browser, row, "data-state", "active_unacked"), within=20, every=0.2)
    assert (await browser.text("#alarm-count")) == "1"
    assert "350" in (await browser.text(row))  # the limit it crossed
    alarm_id = await browser.attr(row, "data-id")
    assert alarm_id is not None
    await browser.screenshot("alarm-active-1280x800")

    code, out = await _cli(clean_db, "command", "ack-alarm", alarm_id)
    assert code == 0, out
    acked = f"#alarms tr[data-id='{alarm_id}']"
    await eventually(lambda: _is(browser, acked, "data-state", "active_acked"), within=20, every=0.2)
    assert "by cli:" in (await browser.text(acked))  # who acknowledged it
    await browser.screenshot("alarm-acked-1280x800")

    simulator.force(TEMP, None)  # the heater's own model takes it back below the limit less its deadband
    await eventually(lambda: _absent(browser, acked), within=30, every=0.2)


async def _absent(page: Browser, css: str) -> bool:
    return not await page.script("return !!document.querySelector(arguments[0])", css)
