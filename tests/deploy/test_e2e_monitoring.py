"""The Grafana panel queries against a live Prometheus scraping REAL agents (`python -m agent run` on the local
runtime, against the local Supabase stack and the PLC simulator) and the HAProxy the runtime starts — the
stand-in version stays in test_monitoring.py. monitoring/prometheus.yml runs with its targets re-pointed.

While only blue runs, the live rule ALDStandbyMissing goes pending; after a blue-green deploy both colors are
scraped (green active, blue standby), a command and a short recipe run, and every panel query must answer
without error and with data (the alert panels excepted: a healthy stack has no alert by then)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest
from deploy_support import get_json, wait_until
from local_stage import LocalStage
from test_e2e_blue_green import final_rows
from test_monitoring import panel_queries, prometheus_server, query

from supalocal.testing import SEED_MACHINE_ID
from tests.e2e.recipes import insert_command, insert_recipe, loop, valve, wait

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed; scripts/lib/tools.sh installs it")

# A healthy stack fires nothing: the alert panels may be empty once both colors run.
MAY_BE_EMPTY = re.compile(r"ALERTS\{alertstate=")


@contextmanager
def prometheus_for(local: LocalStage, tmp: Path) -> Iterator[str]:
    """`prometheus_server` pointed at the stage's real agents and HAProxy."""
    with prometheus_server(
        tmp, blue_port=local.ports["blue"], green_port=local.ports["green"],
        stats_port=int(local.env["HAPROXY_STATS_PORT"]),
    ) as url:  # fmt: skip
        yield url


def targets_up(url: str) -> set[str]:
    """The scrape pools/colors that are up: {"haproxy", "blue", "green"} when all are."""
    try:
        status, body = get_json(f"{url}/api/v1/targets")
    except OSError:
        return set()
    active = body.get("data", {}).get("activeTargets", []) if status == 200 else []
    return {t["labels"].get("color", t["labels"]["job"]) for t in active if t["health"] == "up"}


async def test_panel_queries_against_real_agents(local: LocalStage, tmp_path: Path) -> None:
    local.release("v1")
    local.release("v2")
    assert (await local.ascript(local.DEPLOY, "-e", "local", "-t", "v1")).returncode == 0
    with prometheus_for(local, tmp_path) as prom:
        await asyncio.to_thread(wait_until, lambda: targets_up(prom) == {"haproxy", "blue"}, timeout=20,
                                interval=0.3, what="blue and haproxy scraped")  # fmt: skip
        pending = await asyncio.to_thread(wait_until, lambda: query(prom, 'ALERTS{alertname="ALDStandbyMissing"}'),
                                          timeout=15, interval=0.3, what="ALDStandbyMissing pending")  # fmt: skip
        assert pending[0]["metric"]["alertstate"] == "pending"  # only blue: no standby (for: 10m)

        deployed = await local.ascript(local.DEPLOY, "-e", "local", "-t", "v2")
        assert deployed.returncode == 0, deployed.output
        db = await asyncpg.connect(local.db_url)
        try:  # a claimed command and recipe steps for the latency and step-timing histograms
            recipe = await insert_recipe(db, "e2e monitoring", [loop(5, valve(1, 20), wait(30))])
            ids = [await insert_command(db, SEED_MACHINE_ID, "set_parameter", {"key": "mfc_1.flow_sp", "value": 4}),
                   await insert_command(db, SEED_MACHINE_ID, "start_recipe", {"recipe_id": recipe})]  # fmt: skip
            assert {r["status"] for r in await final_rows(db, ids)} == {"succeeded"}
        finally:
            await db.close()
        for _ in range(5):  # HAProxy exports per-server HTTP counters once a server has answered requests
            get_json(f"{local.lb_url}/health/basic")
        await asyncio.to_thread(wait_until, lambda: targets_up(prom) == {"haproxy", "blue", "green"}, timeout=20,
                                interval=0.3, what="all three scraped")  # fmt: skip
        rising = ('rate(ald_frames_total{color="green"}[1m]) > 0', "rate(haproxy_server_http_responses_total[1m]) > 0",
                  'rate(ald_command_latency_seconds_count{color="green"}[1m]) > 0')  # fmt: skip
        for expr in rising:
            await asyncio.to_thread(wait_until, lambda e=expr: query(prom, e), timeout=15, interval=0.3, what=expr)

        roles = {r["metric"]["color"]: r["value"][1] for r in query(prom, "ald_agent_role_active")}
        assert roles == {"green": "1", "blue": "0"}
        versions = {(r["metric"]["color"], r["metric"]["version"]) for r in query(prom, "agent_build_info")}
        assert versions == {("blue", "v1"), ("green", "v2")}
        started = time.monotonic()
        empty = [(where, expr) for where, expr in panel_queries()
                 if not query(prom, expr) and not MAY_BE_EMPTY.search(expr)]  # fmt: skip
        assert empty == [], f"panels without data from real agents: {empty}"
        print(f"\n{len(panel_queries())} panel queries answered in {time.monotonic() - started:.2f}s")
