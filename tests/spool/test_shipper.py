"""The shipper against the real local stack (official client, real PostgreSQL, our migrations)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from agent.cloud import CloudClient
from agent.errors import CloudAuthError
from agent.spool import Shipper, Spool
from agent.spool.routes import SHIP_ORDER
from agent.spool.shipper import FULL_PASS_S
from supalocal.auth import DEFAULT_SECRET_KEY, SERVICE_ROLE, make_api_key, make_machine_key
from supalocal.stack import BackgroundStack
from supalocal.testing import SEED_MACHINE_ID
from tests.support.poll import eventually
from tests.support.proxy import TcpProxy

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def frame(i: int) -> dict[str, object]:
    return {
        "machine_id": SEED_MACHINE_ID,
        "ts": (T0 + timedelta(seconds=i)).isoformat(),
        "run_id": None,
        "values": {"mfc_1.flow": float(i)},
    }


async def history(db: asyncpg.Connection) -> list[float]:
    rows = await db.fetch(
        'select ts, "values" from parameter_history where machine_id = $1 order by ts', SEED_MACHINE_ID
    )
    import json

    return [json.loads(r["values"])["mfc_1.flow"] for r in rows]


async def test_frames_arrive_with_their_acquisition_time(
    clean_db: BackgroundStack, db: asyncpg.Connection, tmp_path: Path
) -> None:
    async with Spool(tmp_path / "s.sqlite") as spool, CloudClient(clean_db.url, clean_db.service_key) as cloud:
        await spool.append_many([("history", frame(i)) for i in range(3)])
        assert await Shipper(spool, cloud).ship_once() == 3
        assert spool.stats.depth == 0
    rows = await db.fetch("select ts from parameter_history where machine_id = $1 order by ts", SEED_MACHINE_ID)
    assert [r["ts"] for r in rows] == [T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)]


async def test_replay_is_idempotent(clean_db: BackgroundStack, db: asyncpg.Connection, tmp_path: Path) -> None:
    async with Spool(tmp_path / "s.sqlite") as spool, CloudClient(clean_db.url, clean_db.service_key) as cloud:
        shipper = Shipper(spool, cloud)
        await spool.append_many([("history", frame(i)) for i in range(3)])
        await shipper.ship_once()
        await spool.append_many([("history", frame(i)) for i in range(3)])  # as after a crash before remove
        await shipper.ship_once()
    assert await history(db) == [0.0, 1.0, 2.0]


async def test_frames_carry_their_read_duration_and_frames_spooled_by_an_older_agent_still_ship(
    clean_db: BackgroundStack, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """`read_ms` (migration 20261203100000) lands as sent, with the machine's own key; a frame an older agent
    spooled before the column existed (no `read_ms` key) ships in the same batch and reads null."""
    old = frame(0)  # the shape an older agent spooled
    new = [frame(i) | {"read_ms": read_ms} for i, read_ms in ((1, 8.37), (2, 0.0))]
    key = make_machine_key(SEED_MACHINE_ID, secret=clean_db.jwt_secret)
    async with Spool(tmp_path / "s.sqlite") as spool, CloudClient(clean_db.url, key) as cloud:
        await spool.append_many([("history", old), *(("history", f) for f in new)])
        assert await Shipper(spool, cloud).ship_once() == 3
        assert (spool.stats.depth, spool.stats.quarantined) == (0, 0)
    rows = await db.fetch("select read_ms from parameter_history where machine_id = $1 order by ts", SEED_MACHINE_ID)
    assert [r["read_ms"] for r in rows] == [None, 8.37, 0.0]


async def test_a_poison_record_is_quarantined_and_the_rest_flows(
    clean_db: BackgroundStack, db: asyncpg.Connection, tmp_path: Path
) -> None:
    parameter_id = await db.fetchval("select id::text from parameters where key = 'mfc_1.flow'")
    good = {"machine_id": SEED_MACHINE_ID, "parameter_id": parameter_id, "value": 1.5, "ts": T0.isoformat()}
    poison = good | {"parameter_id": "00000000-0000-4000-8000-00000000dead"}  # no such parameter: FK violation
    async with Spool(tmp_path / "s.sqlite") as spool, CloudClient(clean_db.url, clean_db.service_key) as cloud:
        await spool.append_many([("latest", [good]), ("latest", [poison]), ("history", frame(0))])
        shipper = Shipper(spool, cloud)
        assert await shipper.ship_once() == 3
        (q,) = await spool.quarantined()
        assert q["payload"] == [poison] and q["code"] == "23503"
        assert spool.stats.depth == 0 and spool.stats.quarantined == 1
    assert (
        await db.fetchval("select value::text from parameter_latest where parameter_id = $1::uuid", parameter_id)
        == "1.5"
    )
    assert await history(db) == [0.0]


async def test_an_outage_loses_nothing_and_keeps_order(
    clean_db: BackgroundStack, db: asyncpg.Connection, tmp_path: Path
) -> None:
    host, port = clean_db.url.removeprefix("http://").rsplit(":", 1)
    async with (
        TcpProxy(host, int(port)) as proxy,
        Spool(tmp_path / "s.sqlite") as spool,
        CloudClient(proxy.url, clean_db.service_key, timeout_s=2) as cloud,
    ):
        shipper = Shipper(spool, cloud)
        runner = asyncio.create_task(shipper.run())
        await spool.append("history", frame(0))
        await eventually(lambda: spool.stats.depth == 0)
        await proxy.cut()
        for i in range(1, 30):
            await spool.append("history", frame(i))
        await eventually(lambda: not shipper.stats.connected)
        assert spool.stats.depth == 29  # buffered, nothing lost
        await proxy.restore()
        await eventually(lambda: spool.stats.depth == 0, within=30)
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    assert await history(db) == [float(i) for i in range(30)]


async def test_machine_updates_and_heartbeats(
    clean_db: BackgroundStack, db: asyncpg.Connection, tmp_path: Path
) -> None:
    async with Spool(tmp_path / "s.sqlite") as spool, CloudClient(clean_db.url, clean_db.service_key) as cloud:
        await spool.append("machine", {"id": SEED_MACHINE_ID, "values": {"status": "idle"}})
        await spool.append(
            "heartbeat",
            {
                "instance_id": "i-1",
                "machine_id": SEED_MACHINE_ID,
                "color": "blue",
                "version": "t",
                "role": "active",
                "last_seen": T0.isoformat(),
                "plc_connected": True,
                "realtime_connected": False,
                "spool_depth": 3,
            },
        )
        await Shipper(spool, cloud).ship_once()
    assert await db.fetchval("select status from machines where id = $1", SEED_MACHINE_ID) == "idle"
    row = await db.fetchrow("select color, spool_depth, plc_connected from agent_instances where instance_id = 'i-1'")
    assert tuple(row) == ("blue", 3, True)


def run_row(run_id: str, recipe_id: str, **values: object) -> dict[str, object]:
    row = {"id": run_id, "machine_id": SEED_MACHINE_ID, "recipe_id": recipe_id, "status": "running"}
    return row | {"total_steps": 150} | values


def step_row(run_id: str, seq: int) -> dict[str, object]:
    return {
        "run_id": run_id,
        "seq": seq,
        "path": [seq],
        "type": "wait",
        "name": "w",
        "planned_ms": 10,
        "started_at": T0.isoformat(),
        "ended_at": T0.isoformat(),
        "actual_ms": 10.0,
        "status": "succeeded",
        "detail": {},
    }


class AppendAfterRunPeek(Spool):
    """Appends a run and its step just after the shipper looked at the run queue: the race of a short
    recipe that starts and ends while a pass is under way."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.records: list[tuple[str, object]] = []

    async def peek(self, kind: str, limit: int, **kw: object) -> list:  # type: ignore[override]
        found = await super().peek(kind, limit, **kw)  # type: ignore[arg-type]
        if kind == "run" and self.records:
            records, self.records = self.records, []
            await self.append_many(records)
        return found


async def test_a_step_never_overtakes_its_run_row(
    clean_db: BackgroundStack, db: asyncpg.Connection, tmp_path: Path
) -> None:
    recipe_id = await db.fetchval("select id::text from recipes order by name limit 1")
    run_id = "11111111-1111-4111-8111-111111111111"
    async with (
        AppendAfterRunPeek(tmp_path / "s.sqlite") as spool,
        CloudClient(clean_db.url, clean_db.service_key) as cloud,
    ):
        spool.records = [("run", run_row(run_id, recipe_id)), ("step", step_row(run_id, 0))]
        shipper = Shipper(spool, cloud)
        assert await shipper.ship_once() == 0  # the step waits for the run row appended before it
        assert await shipper.ship_once() == 2
        assert await spool.quarantined() == []
    assert await db.fetchval("select count(*) from run_steps where run_id = $1::uuid", run_id) == 1


async def test_a_replay_of_several_runs_lands_every_step_after_its_run(
    clean_db: BackgroundStack, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """Run records are batched by 100, steps by 500: without the append-order barrier, the steps of a second
    run would ship while the first run's progress records still hide its row (a long outage, then replay)."""
    recipe_id = await db.fetchval("select id::text from recipes order by name limit 1")
    first, second = "22222222-2222-4222-8222-222222222222", "33333333-3333-4333-8333-333333333333"
    records: list[tuple[str, object]] = []
    for run_id in (first, second):
        records.append(("run", run_row(run_id, recipe_id, completed_steps=0)))
        for seq in range(150):
            records += [("step", step_row(run_id, seq)), ("run", run_row(run_id, recipe_id, completed_steps=seq))]
        records.append(("run", run_row(run_id, recipe_id, completed_steps=150, status="succeeded")))

    async with Spool(tmp_path / "s.sqlite") as spool, CloudClient(clean_db.url, clean_db.service_key) as cloud:
        await spool.append_many(records)
        shipper = Shipper(spool, cloud)
        while spool.stats.depth:
            assert await shipper.ship_once() > 0
        assert await spool.quarantined() == []
    assert await db.fetchval("select count(*) from run_steps") == 300
    assert await db.fetchval("select completed_steps from process_runs where id = $1::uuid", second) == 150


# --- a refused key holds every record: nothing is the record's fault -------------------------------------------

OTHER_SECRET = "the-jwt-secret-of-another-project-000000"
#: Keys Supabase refuses, each as an operator meets it: (id, key for the stack's secret, the code it gets).
REFUSED_KEYS: list[tuple[str, Callable[[str], str], str]] = [
    ("signed-with-another-secret", lambda _: make_api_key(SERVICE_ROLE, secret=OTHER_SECRET), "PGRST301"),
    ("machine-key-expired", lambda s: make_machine_key(SEED_MACHINE_ID, secret=s, lifetime_s=-60), "PGRST303"),
    ("opaque-key-revoked", lambda _: DEFAULT_SECRET_KEY[:-4] + "XXXX", "PGRST301"),
    ("not-a-jwt", lambda _: "garbage", "PGRST301"),
]  # fmt: skip


@pytest.mark.parametrize(("make_key", "code"), [k[1:] for k in REFUSED_KEYS], ids=[k[0] for k in REFUSED_KEYS])
async def test_a_refused_key_holds_every_record_and_a_valid_key_ships_them(
    clean_db: BackgroundStack, db: asyncpg.Connection, tmp_path: Path, make_key: Callable[[str], str], code: str
) -> None:
    path = tmp_path / "s.sqlite"
    async with Spool(path) as spool, CloudClient(clean_db.url, make_key(clean_db.jwt_secret)) as cloud:
        await spool.append_many([("history", frame(i)) for i in range(5)])
        shipper = Shipper(spool, cloud)
        with pytest.raises(CloudAuthError) as refused:
            await shipper.ship_once()
        assert refused.value.code == code
        assert (spool.stats.depth, spool.stats.quarantined, await spool.quarantined()) == (5, 0, [])
        assert cloud.key.refused == str(refused.value) and cloud.key.refusals == 1
        assert not await shipper.flush(5)  # shutdown on a refused key: gives up at once, keeps everything
        assert (spool.stats.depth, spool.stats.quarantined) == (5, 0)
    # the operator configures a valid key and restarts: the same spool drains, in order
    async with Spool(path) as spool, CloudClient(clean_db.url, clean_db.service_key) as cloud:
        assert await Shipper(spool, cloud).ship_once() == 5
        assert (spool.stats.depth, spool.stats.quarantined, cloud.key.refused) == (0, 0, None)
    assert await history(db) == [0.0, 1.0, 2.0, 3.0, 4.0]


async def test_a_running_shipper_backs_off_on_a_refused_key_and_resumes_when_it_becomes_valid(
    clean_db: BackgroundStack, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """A key the server refuses until it accepts it, without a restart (as when a project's secret is restored):
    here a machine key that is not valid before `nbf`, 3 s from now."""
    valid_from = int(time.time()) + 3
    key = make_api_key(
        "ald_agent", secret=clean_db.jwt_secret, claims={"machine_id": SEED_MACHINE_ID, "nbf": valid_from}
    )
    async with Spool(tmp_path / "s.sqlite") as spool, CloudClient(clean_db.url, key) as cloud:
        shipper = Shipper(spool, cloud)
        runner = asyncio.create_task(shipper.run())
        await spool.append_many([("history", frame(i)) for i in range(20)])
        await eventually(lambda: cloud.key.refused is not None)
        assert "JWS" in (cloud.key.refused or "") or "PGRST301" in (cloud.key.refused or "")
        await asyncio.sleep(max(0.0, valid_from - time.time() - 0.5))
        attempts = shipper.stats.auth_errors
        assert 2 <= attempts <= 6  # backed off (0.5 s doubling), not a busy loop
        assert (spool.stats.depth, spool.stats.quarantined) == (20, 0)
        await eventually(lambda: spool.stats.depth == 0, within=15)
        assert (cloud.key.refused, spool.stats.quarantined, shipper.stats.connected) == (None, 0, True)
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    assert await history(db) == [float(i) for i in range(20)]


async def test_a_batch_waits_for_quiet_before_it_is_built(
    clean_db: BackgroundStack, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """The agent's quiet gate is "no PLC read in flight": nothing is peeked or sent while it is closed."""
    gate = asyncio.Event()
    waits = 0

    async def quiet() -> None:
        nonlocal waits
        waits += 1
        await gate.wait()

    async with Spool(tmp_path / "s.sqlite") as spool, CloudClient(clean_db.url, clean_db.service_key) as cloud:
        await spool.append_many([("history", frame(i)) for i in range(2)])
        shipping = asyncio.create_task(Shipper(spool, cloud, quiet=quiet).ship_once())
        await asyncio.sleep(0.2)
        assert not shipping.done() and waits == 1 and spool.stats.depth == 2
        gate.set()
        assert await shipping == 2
    assert await history(db) == [0.0, 1.0]


class CountingPeeks(Spool):
    """Records which kinds the shipper asked the spool's thread about."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.asked: list[str] = []

    async def peek(self, kind: str, limit: int, **kw: object) -> list:  # type: ignore[override]
        self.asked.append(kind)
        return await super().peek(kind, limit, **kw)  # type: ignore[arg-type]


async def test_a_pass_asks_the_spool_only_about_kinds_with_records(clean_db: BackgroundStack, tmp_path: Path) -> None:
    """At 10 Hz a pass per frame over all eight kinds was eight round trips to the spool's thread for one
    record; a full pass (every kind) still runs every FULL_PASS_S, as a safety net under the counts."""
    async with (
        CountingPeeks(tmp_path / "s.sqlite") as spool,
        CloudClient(clean_db.url, clean_db.service_key) as cloud,
    ):
        shipper = Shipper(spool, cloud)
        await spool.append("history", frame(0))
        assert await shipper.ship_once() == 1
        assert len(spool.asked) == len(SHIP_ORDER)  # the first pass asks about every kind
        spool.asked.clear()
        await spool.append("history", frame(1))
        assert await shipper.ship_once() == 1
        assert spool.asked == ["history"]
        spool.asked.clear()
        assert await shipper.ship_once() == 0  # nothing known pending: one question, for another process's adds
        assert spool.asked == [SHIP_ORDER[0]]
        spool.asked.clear()
        shipper._last_full_pass -= FULL_PASS_S
        await shipper.ship_once()
        assert spool.asked == list(SHIP_ORDER)


async def test_paced_telemetry_waits_for_its_gap_while_the_run_story_ships_at_once(
    clean_db: BackgroundStack, db: asyncpg.Connection, tmp_path: Path
) -> None:
    async with Spool(tmp_path / "s.sqlite") as spool, CloudClient(clean_db.url, clean_db.service_key) as cloud:
        shipper = Shipper(spool, cloud, telemetry_gap_s=3600)
        await spool.append("history", frame(0))
        assert await shipper.ship_once() == 1
        await spool.append_many(
            [("history", frame(1)), ("machine", {"id": SEED_MACHINE_ID, "values": {"status": "idle"}})]
        )
        assert await shipper.ship_once() == 1  # the machine record; the frame waits for the gap
        assert spool.pending("history") == 1 and spool.pending("machine") == 0
        assert await shipper.ship_once(paced=False) == 1  # a shutdown flush never waits
    assert await history(db) == [0.0, 1.0]
    assert await db.fetchval("select status from machines where id = $1", SEED_MACHINE_ID) == "idle"


async def test_a_telemetry_backlog_ships_back_to_back_and_is_paced_once_caught_up(
    clean_db: BackgroundStack, db: asyncpg.Connection, tmp_path: Path
) -> None:
    async with Spool(tmp_path / "s.sqlite") as spool, CloudClient(clean_db.url, clean_db.service_key) as cloud:
        shipper = Shipper(spool, cloud, telemetry_gap_s=3600)
        await spool.append_many([("history", frame(i)) for i in range(503)])  # a batch (500) and 3 more
        assert await shipper.ship_once() == 500
        assert await shipper.ship_once() == 3  # still a backlog after the first batch: no gap
        await spool.append("history", frame(503))
        assert await shipper.ship_once() == 0  # caught up: the next frame waits
    assert len(await history(db)) == 503


async def test_frames_faster_than_the_gap_share_a_request_and_flush_ships_what_waits(
    clean_db: BackgroundStack, db: asyncpg.Connection, tmp_path: Path
) -> None:
    async with Spool(tmp_path / "s.sqlite") as spool, CloudClient(clean_db.url, clean_db.service_key) as cloud:
        shipper = Shipper(spool, cloud, telemetry_gap_s=3600)
        runner = asyncio.create_task(shipper.run())
        await spool.append("history", frame(0))
        await eventually(lambda: spool.stats.depth == 0)
        for i in range(1, 5):
            await spool.append("history", frame(i))
            await asyncio.sleep(0.05)  # a 20 Hz sampler
        assert (shipper.stats.requests, spool.pending("history")) == (1, 4)  # held, not lost
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        assert await shipper.flush(5.0)
        assert shipper.stats.requests == 2  # the four frames in one request
    assert await history(db) == [0.0, 1.0, 2.0, 3.0, 4.0]
