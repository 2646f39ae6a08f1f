"""Whether Supabase accepts our key: `KeyStatus` as a table of answers, and the client filling it from the real
stack's REST and Realtime refusals (a refused websocket handshake, a refused channel join)."""

from __future__ import annotations

import asyncio

import pytest

from agent.cloud import CloudClient, KeyStatus, Watch
from agent.errors import CloudAuthError
from supalocal.auth import SERVICE_ROLE, make_api_key, make_machine_key
from supalocal.stack import BackgroundStack
from supalocal.testing import SEED_MACHINE_ID
from tests.support.poll import eventually

REST = CloudAuthError("upsert parameter_history: JWT expired", code="PGRST303")
REALTIME = CloudAuthError("realtime machine_commands: InvalidJWTToken: Token has expired 3 seconds ago")

# (id, answers in order: ("refuse", channel) or ("accept", channel), refused afterwards, refusals counted)
ANSWERS: list[tuple[str, list[tuple[str, str]], str | None, int]] = [
    ("nothing-yet", [], None, 0),
    ("rest-refused", [("refuse", "rest")], str(REST), 1),
    ("every-refused-call-counts", [("refuse", "rest")] * 3, str(REST), 3),
    ("rest-accepted-again", [("refuse", "rest"), ("accept", "rest")], None, 1),
    ("realtime-refused", [("refuse", "realtime")], str(REALTIME), 1),
    ("rest-success-does-not-clear-realtime", [("refuse", "realtime"), ("accept", "rest")], str(REALTIME), 1),
    ("realtime-accepted-again", [("refuse", "realtime"), ("accept", "realtime")], None, 1),
    ("both-refused-rest-shown-first", [("refuse", "realtime"), ("refuse", "rest")], str(REST), 2),
    ("both-refused-rest-fixed", [("refuse", "realtime"), ("refuse", "rest"), ("accept", "rest")], str(REALTIME), 2),
    ("accept-without-refusal-is-a-no-op", [("accept", "rest"), ("accept", "realtime")], None, 0),
]


@pytest.mark.parametrize(("answers", "refused", "refusals"), [a[1:] for a in ANSWERS], ids=[a[0] for a in ANSWERS])
def test_key_status_follows_each_channel_answers(
    answers: list[tuple[str, str]], refused: str | None, refusals: int
) -> None:
    status = KeyStatus()
    for verb, channel in answers:
        if verb == "refuse":
            status.refuse(channel, REST if channel == "rest" else REALTIME)  # type: ignore[arg-type]
        else:
            status.accept(channel)  # type: ignore[arg-type]
    assert (status.refused, status.refusals) == (refused, refusals)


async def test_a_refused_rest_call_is_the_key_and_a_good_one_clears_it(clean_db: BackgroundStack) -> None:
    expired = make_machine_key(SEED_MACHINE_ID, secret=clean_db.jwt_secret, lifetime_s=-60)
    async with CloudClient(clean_db.url, expired) as cloud:
        with pytest.raises(CloudAuthError, match="JWT expired"):
            await cloud.select("parameters", limit=1)
        assert cloud.key.refused == "select parameters: JWT expired (PGRST303)" and cloud.key.refusals == 1
        assert cloud.reachable  # Supabase answered: it is the key, not the network
    async with CloudClient(clean_db.url, clean_db.service_key) as cloud:
        cloud.key.refuse("rest", REST)
        await cloud.select("parameters", limit=1)
        assert cloud.key.refused is None


async def test_a_refused_realtime_handshake_is_the_key(clean_db: BackgroundStack) -> None:
    foreign = make_api_key(SERVICE_ROLE, secret="the-jwt-secret-of-another-project-000000")
    async with CloudClient(clean_db.url, foreign) as cloud:
        watch = asyncio.create_task(cloud.watch(Watch("machine_commands", None, lambda _row: None)))
        await eventually(lambda: cloud.key.realtime is not None, within=30)
        assert cloud.key.realtime == "realtime machine_commands: server rejected the WebSocket connection (403)"
        await watch


async def test_a_refused_channel_join_is_the_key(clean_db: BackgroundStack) -> None:
    """Behind a project API key (accepted at the handshake), the expired machine key is Realtime's access token."""
    expired = make_machine_key(SEED_MACHINE_ID, secret=clean_db.jwt_secret, lifetime_s=-60)
    async with CloudClient(clean_db.url, expired, api_key=clean_db.anon_key) as cloud:
        await cloud.watch(Watch("machine_commands", None, lambda _row: None))
        await eventually(lambda: cloud.key.realtime is not None, within=30)
        assert (cloud.key.realtime or "").startswith("realtime machine_commands: InvalidJWTToken: Token has expired")
